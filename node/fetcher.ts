import { setMaxListeners } from 'node:events'
import { lookup as dnsLookup } from 'node:dns'
import { BlockList, isIP } from 'node:net'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import { Agent } from 'undici'
import debug from 'debug'
import type { Clock, HttpClient, HttpRequest, HttpResponse } from './types.js'
import { systemClock } from './types.js'
import { BodyTooLargeError, DecompressionError, FetchTimeoutError, NetworkError, PrivateAddressError, ShoalError } from './errors.js'
import * as C from './constants.js'

const log = debug('shoal:fetcher')

// ---------------------------------------------------------------------------------------------
// Private targets. A crawler that follows links must not be turned against the network it runs
// in (SSRF): private, loopback, link-local, CGNAT, multicast and unspecified addresses are refused
// unless allowPrivate is set. Checked on the resolved address at connect time, so a public name
// that resolves to 127.0.0.1 (DNS rebinding) is refused too.
// ---------------------------------------------------------------------------------------------
const privateRanges = new BlockList()
for (const [net, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) {
  privateRanges.addSubnet(net, prefix, 'ipv4')
}
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96]] as const) {
  privateRanges.addSubnet(net, prefix, 'ipv6')
}

export function isPrivateAddress (ip: string): boolean {
  const family = isIP(ip)
  if (family === 0) return false
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
    if (mapped != null) return privateRanges.check(mapped[1], 'ipv4')
    return privateRanges.check(ip, 'ipv6')
  }
  return privateRanges.check(ip, 'ipv4')
}

function guardedLookup (hostname: string, options: any, callback: (...args: any[]) => void): void {
  dnsLookup(hostname, options, (err: any, address: any, family?: number) => {
    if (err != null) { callback(err); return }
    const list: Array<{ address: string }> = Array.isArray(address) ? address : [{ address }]
    for (const a of list) {
      if (isPrivateAddress(a.address)) {
        callback(new PrivateAddressError(`${hostname} resolves to ${a.address}, a private address; set allowPrivate to crawl it`))
        return
      }
    }
    callback(null, address, family)
  })
}

// ---------------------------------------------------------------------------------------------
// The real network: undici 7.
// ---------------------------------------------------------------------------------------------
export interface UndiciClientInit {
  /** Connections per origin. */
  connections?: number
  connectTimeout?: number
  headersTimeout?: number
  bodyTimeout?: number
  allowPrivate?: boolean
}

export class UndiciClient implements HttpClient {
  private readonly agent: Agent

  constructor (init: UndiciClientInit = {}) {
    this.agent = new Agent({
      connections: init.connections ?? C.DEFAULT_HOST_CONCURRENCY,
      pipelining: 1,
      headersTimeout: init.headersTimeout ?? C.DEFAULT_HEADERS_TIMEOUT,
      bodyTimeout: init.bodyTimeout ?? C.DEFAULT_BODY_TIMEOUT,
      keepAliveTimeout: 10 * C.second,
      connect: {
        timeout: init.connectTimeout ?? C.DEFAULT_CONNECT_TIMEOUT,
        ...(init.allowPrivate === true ? {} : { lookup: guardedLookup })
      }
    })
  }

  async request (req: HttpRequest): Promise<HttpResponse> {
    const res = await this.agent.request({
      origin: originOf(req.url),
      path: pathOf(req.url),
      method: 'GET',
      headers: req.headers,
      signal: req.signal
    })
    return {
      status: res.statusCode,
      headers: res.headers as Record<string, string | string[] | undefined>,
      body: res.body,
      dump: async () => { await res.body.dump().catch(() => {}) }
    }
  }

  async close (): Promise<void> {
    await this.agent.close()
  }
}

function originOf (url: string): string {
  const i = url.indexOf('/', url.indexOf('//') + 2)
  return i === -1 ? url : url.slice(0, i)
}

function pathOf (url: string): string {
  const i = url.indexOf('/', url.indexOf('//') + 2)
  return i === -1 ? '/' : url.slice(i)
}

// ---------------------------------------------------------------------------------------------
// The fetcher: one GET, with limits, decoding and the verdict (done, redirect, retry later, failed).
// ---------------------------------------------------------------------------------------------
export interface FetchRequest {
  url: string
  /** Attempts already made (0 on the first). */
  attempts?: number
  etag?: string
  lastModified?: string
  signal?: AbortSignal
}

export type FetchOutcome = 'ok' | 'not-modified' | 'redirect' | 'http-error' | 'failed' | 'retry'

export interface FetchResult {
  url: string
  outcome: FetchOutcome
  fetchedAt: number
  httpStatus?: number
  contentType?: string
  /** Body with Content-Encoding undone. */
  body?: Uint8Array
  etag?: string
  lastModified?: string
  /** Raw Location header of a redirect (resolve it against `url`). */
  location?: string
  error?: string
  /** For `retry`: when to try again. */
  retryAt?: number
  /** Bytes received on the wire. */
  wireBytes: number
}

export interface FetcherInit {
  clock?: Clock
  userAgent: string
  allowPrivate?: boolean
  requestTimeout?: number
  maxBodySize?: number
  maxDecompressedSize?: number
  maxRetries?: number
  retryBaseDelay?: number
  maxRetryAfter?: number
}

export interface FetcherComponents {
  http: HttpClient
}

const gunzip = promisify(zlib.gunzip)
const inflate = promisify(zlib.inflate)
const inflateRaw = promisify(zlib.inflateRaw)
const brotli = promisify(zlib.brotliDecompress)

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504])

export class Fetcher {
  readonly userAgent: string
  private readonly http: HttpClient
  private readonly clock: Clock
  private readonly allowPrivate: boolean
  private readonly requestTimeout: number
  private readonly maxBodySize: number
  private readonly maxDecompressedSize: number
  private readonly maxRetries: number
  private readonly retryBaseDelay: number
  private readonly maxRetryAfter: number
  requests = 0
  wireBytes = 0

  constructor (components: FetcherComponents, init: FetcherInit) {
    this.http = components.http
    this.clock = init.clock ?? systemClock
    this.userAgent = init.userAgent
    this.allowPrivate = init.allowPrivate ?? false
    this.requestTimeout = init.requestTimeout ?? C.DEFAULT_REQUEST_TIMEOUT
    this.maxBodySize = init.maxBodySize ?? C.DEFAULT_MAX_BODY_SIZE
    this.maxDecompressedSize = init.maxDecompressedSize ?? C.DEFAULT_MAX_DECOMPRESSED_SIZE
    this.maxRetries = init.maxRetries ?? C.DEFAULT_MAX_RETRIES
    this.retryBaseDelay = init.retryBaseDelay ?? C.DEFAULT_RETRY_BASE_DELAY
    this.maxRetryAfter = init.maxRetryAfter ?? C.DEFAULT_MAX_RETRY_AFTER
  }

  async fetch (req: FetchRequest): Promise<FetchResult> {
    const attempts = req.attempts ?? 0
    const started = this.clock.now()
    const result: FetchResult = { url: req.url, outcome: 'failed', fetchedAt: started, wireBytes: 0 }
    if (!this.allowPrivate) {
      const host = hostnameOf(req.url)
      if (isPrivateAddress(host)) {
        result.error = new PrivateAddressError(`${host} is a private address; set allowPrivate to crawl it`).message
        return result
      }
    }
    const headers: Record<string, string> = {
      'user-agent': this.userAgent,
      accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
      'accept-encoding': 'gzip, deflate, br'
    }
    if (req.etag != null) headers['if-none-match'] = req.etag
    if (req.lastModified != null) headers['if-modified-since'] = req.lastModified

    // One controller, one timer and (with a caller's signal) one listener a request: cheaper than
    // AbortSignal.timeout + AbortSignal.any, which register every signal for garbage collection.
    const deadline = new RequestDeadline(this.requestTimeout, req.signal)
    const signal = deadline.signal
    let res: HttpResponse | undefined
    this.requests++
    try {
      res = await this.http.request({ url: req.url, headers, signal })
      result.httpStatus = res.status
      result.fetchedAt = this.clock.now()
      const h = res.headers
      result.contentType = header(h, 'content-type')
      result.etag = header(h, 'etag')
      result.lastModified = header(h, 'last-modified')
      const status = res.status
      if (status >= 300 && status < 400 && status !== 304) {
        await res.dump()
        result.location = header(h, 'location')
        if (result.location == null || result.location === '') {
          result.outcome = 'http-error'
          result.error = `HTTP ${status} without a Location header`
        } else {
          result.outcome = 'redirect'
        }
        return result
      }
      if (status === 304) {
        await res.dump()
        result.outcome = 'not-modified'
        return result
      }
      if (RETRY_STATUS.has(status)) {
        await res.dump()
        const retryAfter = parseRetryAfter(header(h, 'retry-after'), this.clock.now())
        return this.retryOrFail(result, attempts, `HTTP ${status}`, retryAfter, 'http-error')
      }
      const raw = await this.readBody(res, result)
      result.body = await this.decode(raw, header(h, 'content-encoding'))
      if (status >= 200 && status < 300) {
        result.outcome = 'ok'
      } else {
        result.outcome = 'http-error'
        result.error = `HTTP ${status}`
      }
      return result
    } catch (err: any) {
      if (res != null) await res.dump()
      const e = classify(err, deadline.timedOut)
      result.fetchedAt = this.clock.now()
      if (e.retryable) return this.retryOrFail(result, attempts, e.message, undefined, 'failed')
      result.outcome = 'failed'
      result.error = e.message
      return result
    } finally {
      deadline.clear()
      this.wireBytes += result.wireBytes
    }
  }

  /**
   * The result of a fetch of `url` that failed for a reason of shoal's own, not the server's (a bug,
   * a storage error): retried like a network failure, then failed with `error`.
   */
  failure (url: string, attempts: number, error: string): FetchResult {
    return this.retryOrFail({ url, outcome: 'failed', fetchedAt: this.clock.now(), wireBytes: 0 }, attempts, error, undefined, 'failed')
  }

  private retryOrFail (result: FetchResult, attempts: number, error: string, retryAfter: number | undefined, final: FetchOutcome): FetchResult {
    result.error = error
    if (attempts >= this.maxRetries) {
      result.outcome = final
      result.error = `${error} (after ${attempts + 1} attempts)`
      return result
    }
    const backoff = this.retryBaseDelay * 2 ** attempts
    const wait = Math.min(retryAfter ?? backoff, this.maxRetryAfter)
    result.outcome = 'retry'
    result.retryAt = this.clock.now() + wait
    return result
  }

  private async readBody (res: HttpResponse, result: FetchResult): Promise<Uint8Array> {
    const length = Number(header(res.headers, 'content-length'))
    if (Number.isFinite(length) && length > this.maxBodySize) {
      throw new BodyTooLargeError(`body of ${length} bytes (Content-Length) is over the ${this.maxBodySize}-byte cap`)
    }
    const chunks: Uint8Array[] = []
    let total = 0
    for await (const chunk of res.body) {
      total += chunk.byteLength
      result.wireBytes = total
      if (total > this.maxBodySize) {
        throw new BodyTooLargeError(`body over the ${this.maxBodySize}-byte cap`)
      }
      chunks.push(chunk)
    }
    if (chunks.length === 1) return chunks[0]
    return Buffer.concat(chunks, total)
  }

  private async decode (raw: Uint8Array, encoding: string | undefined): Promise<Uint8Array> {
    if (encoding == null || raw.byteLength === 0) return raw
    const enc = encoding.trim().toLowerCase()
    if (enc === '' || enc === 'identity') return raw
    const opts = { maxOutputLength: this.maxDecompressedSize }
    try {
      if (enc === 'gzip' || enc === 'x-gzip') return await gunzip(raw, opts)
      if (enc === 'br') return await brotli(raw, opts)
      if (enc === 'deflate') {
        // Servers send both zlib-wrapped (RFC 9110) and raw deflate: try the first, then the second.
        try {
          return await inflate(raw, opts)
        } catch (err: any) {
          if (err.code === 'ERR_BUFFER_TOO_LARGE') throw err
          return await inflateRaw(raw, opts)
        }
      }
    } catch (err: any) {
      if (err.code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
        throw new DecompressionError(`decompressed body over the ${this.maxDecompressedSize}-byte cap (${enc})`)
      }
      throw new DecompressionError(`cannot decode ${enc} body: ${err.message}`, { cause: err })
    }
    throw new DecompressionError(`unsupported Content-Encoding "${encoding}"`)
  }
}

function header (h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name]
  if (v == null) return undefined
  return Array.isArray(v) ? v[0] : v
}

function hostnameOf (url: string): string {
  try {
    const h = new URL(url).hostname
    return h.startsWith('[') ? h.slice(1, -1) : h
  } catch {
    return ''
  }
}

/** Retry-After: delta-seconds or an HTTP-date (RFC 9110 §10.2.3). Returns ms from now. */
export function parseRetryAfter (value: string | undefined, now: number): number | undefined {
  if (value == null) return undefined
  const v = value.trim()
  if (/^\d+$/.test(v)) return Number(v) * C.second
  const t = Date.parse(v)
  if (Number.isNaN(t)) return undefined
  return Math.max(0, t - now)
}

/** Parent signals whose listener limit is lifted. */
const unlimited = new WeakSet<AbortSignal>()

/** A request's abort signal: aborted after `ms`, or when `parent` is. `clear` when the request ends. */
class RequestDeadline {
  private readonly controller = new AbortController()
  private readonly timer: ReturnType<typeof setTimeout>
  private readonly onParentAbort: (() => void) | undefined
  timedOut = false

  constructor (ms: number, private readonly parent?: AbortSignal) {
    this.timer = setTimeout(() => {
      this.timedOut = true
      this.controller.abort(new DOMException('request timed out', 'TimeoutError'))
    }, ms)
    // As AbortSignal.timeout's: a pending request keeps the process alive, not its deadline.
    this.timer.unref()
    if (parent != null) {
      if (parent.aborted) {
        this.controller.abort(parent.reason)
      } else {
        this.onParentAbort = () => { this.controller.abort(parent.reason) }
        // Every request in flight listens on the crawl's signal: dozens at once is not a leak.
        if (!unlimited.has(parent)) {
          setMaxListeners(0, parent)
          unlimited.add(parent)
        }
        parent.addEventListener('abort', this.onParentAbort, { once: true })
      }
    }
  }

  get signal (): AbortSignal {
    return this.controller.signal
  }

  clear (): void {
    clearTimeout(this.timer)
    if (this.onParentAbort !== undefined) this.parent?.removeEventListener('abort', this.onParentAbort)
  }
}

/** Turn whatever the HTTP stack threw into a named error that says whether to retry. */
function classify (err: any, timedOut: boolean): ShoalError {
  if (err?.name === 'ShoalError' || err instanceof ShoalError) return err
  if (typeof err?.retryable === 'boolean' && typeof err?.name === 'string' && err.name.endsWith('Error') && err.name !== 'Error' && err.constructor?.name !== 'Error' && 'retryable' in err) return err
  const code: string | undefined = err?.code ?? err?.cause?.code
  if (timedOut) return new FetchTimeoutError('request timed out (whole-request timeout)', { cause: err })
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT': return new FetchTimeoutError('no response headers in time', { cause: err })
    case 'UND_ERR_BODY_TIMEOUT': return new FetchTimeoutError('body stalled (body timeout)', { cause: err })
    case 'UND_ERR_CONNECT_TIMEOUT': return new FetchTimeoutError('connect timed out', { cause: err })
    case 'ECONNRESET': case 'UND_ERR_SOCKET': return new NetworkError(`connection reset (${code})`, { cause: err })
    case 'ECONNREFUSED': return new NetworkError('connection refused', { cause: err })
    case 'ENOTFOUND': case 'EAI_AGAIN': return new NetworkError(`DNS lookup failed (${code})`, { cause: err })
  }
  if (err?.name === 'PrivateAddressError') return new PrivateAddressError(err.message)
  if (err?.name === 'AbortError') return new ShoalError('aborted', { cause: err })
  log('unexpected fetch error: %o', err)
  return new NetworkError(`${err?.name ?? 'Error'}: ${err?.message ?? String(err)}${code != null ? ` (${code})` : ''}`, { cause: err })
}

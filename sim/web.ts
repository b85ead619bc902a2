/**
 * The synthetic web: a deterministic site generated from a seed, served by real HTTP servers on
 * loopback, one server (port) per host, that knows its own ground truth (every URL a crawler should
 * request, and how often) and counts every request it gets, so tests and benchmarks can check a
 * crawl from the outside: coverage, duplicate fetches, robots.txt obedience, who fetched what and when.
 *
 *   const web = await startSyntheticWeb({ seed: 7, hosts: 2, pages: 500 })
 *   // crawl web.rootUrls …
 *   web.summary()   // { pagesExpected, pagesFetched, coverage, duplicateFetches, … }
 *   await web.close()
 *
 * The site itself (pages, links, bodies) is `SiteModel` in ./web/site.ts, its URL space is
 * ./web/resources.ts and its ground truth ./web/truth.ts; this file is the HTTP side. A request is
 * resolved to a resource and answered by `respond`. With `realistic: true` (or `features`, see
 * ./web/features.ts) it also redirects, fails now and then, answers slowly or never, sends bodies
 * over the caps, compressed bodies and legacy charsets, and links to traps and to offsite hosts —
 * servers of their own that are not part of the site and must get no request at all.
 */
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { brotliCompressSync, constants as zlibConstants, deflateSync, crc32, gzipSync } from 'node:zlib'
import { ConfigError } from '../node/errors.js'
import { RequestCounters } from './web/counters.js'
import type { RequestLogEntry, UrlCounter } from './web/counters.js'
import { DEFAULT_ROBOTS_TXT, SiteModel, pagePath } from './web/site.js'
import type { Resource, SiteInit, SiteOptions, Wire } from './web/site.js'
import { groundTruth } from './web/truth.js'
import type { ExpectedKind, ExpectedUrl, GroundTruth } from './web/truth.js'

export { SiteModel, PROFILES, pagePath, DEFAULT_ROBOTS_TXT } from './web/site.js'
export type { LocationForm, Outlink, PageRef, PageStyle, RedirectChain, Resource, ResourceKind, SiteInit, SiteOptions, SiteProfile, Wire } from './web/site.js'
export type { RequestLogEntry, UrlCounter } from './web/counters.js'
export { REALISTIC, resolveFeatures, resolvePolicy } from './web/features.js'
export type { CrawlPolicy, ResolvedFeatures, SiteFeatures } from './web/features.js'
export { groundTruth } from './web/truth.js'
export type { ExpectedKind, ExpectedUrl, GroundTruth } from './web/truth.js'

export interface SyntheticWebInit extends SiteInit {
  /** Address every host's server binds. Loopback only: the simulator never listens elsewhere. @default '127.0.0.1' */
  bindAddress?: string
  /** Port of each host, by host index; 0 or missing picks an ephemeral port. @default all ephemeral */
  ports?: number[]
  /**
   * robots.txt of every host: its text, `false` to answer 404, or a function of the host index.
   * The ground truth keeps assuming the model's rules (see truth.ts).
   * @default the model's: DEFAULT_ROBOTS_TXT (`User-agent: *` / `Disallow: /private/`) unless features say otherwise
   */
  robots?: string | false | ((host: number) => string | false)
  /** Keep every request in `stats().log` (costly on big crawls: counters are kept anyway). @default false */
  log?: boolean
  /** Width of one bucket of `stats().timeline`. @default 1000 (ms) */
  timelineBucketMs?: number
  /**
   * Keep rendered page bodies, least recently used first out, up to this many bytes; 0 renders each
   * request anew (about 20 µs for a small page and 80 µs for a large one). @default 0
   */
  cacheBytes?: number
  /** Answer a matching If-None-Match with 304 Not Modified. @default true */
  conditional?: boolean
}

/** Expected and requested URLs of one kind. */
export interface KindSummary {
  expected: number
  /** Expected URLs requested at least once. */
  fetched: number
  /** Requests for expected URLs of this kind, repeats included. */
  requests: number
}

/** What a crawl did to the site, from the server's point of view. */
export interface CrawlSummary {
  /** Expected URLs (ground truth, images not counted): pages, and with features redirects, errors, traps… */
  pagesExpected: number
  /** Expected URLs requested at least once. */
  pagesFetched: number
  /** pagesFetched / pagesExpected. */
  coverage: number
  /** Every request to the site's hosts, whatever it asked for (offsite hosts not counted). */
  requests: number
  /** Requests for expected URLs (images not counted), repeats included. */
  pageRequests: number
  /**
   * Requests of a URL after it was once answered without a deliberate failure, summed over every
   * URL of the site: re-fetches. Retries of transient failures (`retries`) are not duplicates.
   */
  duplicateFetches: number
  /** Requests that followed a deliberate, retryable failure of the same URL (500/503/429, stall). */
  retries: number
  /**
   * Answers (no deliberate failure) the client gave up on before their end: its timeout fired
   * first, on a loaded machine or because it is too short for `slowMs`. The request after one is
   * neither a duplicate nor an extra request.
   */
  abortedAnswers: number
  /** Responses that were deliberate, retryable failures. */
  transientErrors: number
  /** Requests for expected URLs beyond the number a correct crawl makes (`ExpectedUrl.requests`). */
  extraRequests: number
  /** Requests for URLs outside the ground truth (robots.txt excepted): disallowed, commented-out, stripped aliases… */
  unexpectedRequests: number
  robotsRequests: number
  /** Requests robots.txt disallows (the model's rules: /private/ by default). */
  disallowedRequests: number
  /** Requests to offsite hosts (not seeded, out of scope): each one is a violation. */
  offsiteRequests: number
  imageRequests: number
  imagesExpected: number
  imagesFetched: number
  /** Trap URLs (calendar, session ids, repeated segments) expected within the policy's limits, and requested. */
  trapPagesExpected: number
  trapPagesFetched: number
  byKind: Record<ExpectedKind, KindSummary>
  /** Requests answered 404 (URLs the site does not have). */
  notFound: number
  /** Body bytes sent. */
  bytes: number
  /** TCP connections accepted. */
  connections: number
  /** First and last request arrival (ms since the epoch), 0 when none. */
  firstRequestAt: number
  lastRequestAt: number
  /** lastRequestAt − firstRequestAt, in seconds. */
  activeSeconds: number
  byUserAgent: Record<string, number>
  /** Status 0: no answer was sent (a stall). */
  byStatus: Record<string, number>
}

/** The raw counters (live objects: copy what you keep across a `reset`). */
export interface WebStats {
  requests: number
  connections: number
  bytes: number
  firstAt: number
  lastAt: number
  /** Per host index (then offsite hosts, from index `hosts` on): request-target (path and query) → counter. */
  urls: ReadonlyArray<ReadonlyMap<string, UrlCounter>>
  byUserAgent: ReadonlyMap<string, number>
  byStatus: ReadonlyMap<number, number>
  byMethod: ReadonlyMap<string, number>
  /** Requests per `timelineBucketMs`, from the first request. */
  timeline: readonly number[]
  timelineBucketMs: number
  /** Every request, when started with `log: true` (offsite hosts have host index ≥ `hosts`). */
  log?: readonly RequestLogEntry[]
}

export interface SyntheticWeb {
  readonly site: SiteModel
  readonly options: SiteOptions
  /** `http://127.0.0.1:PORT` of each host, by host index. */
  readonly origins: readonly string[]
  /** `http://127.0.0.1:PORT` of each offsite host: not part of the site, never to be requested. */
  readonly offsiteOrigins: readonly string[]
  /** `/` of every host: the seeds of a crawl of the whole site. */
  readonly rootUrls: readonly string[]
  /** The absolute URL of page `page` of host `host`. */
  url: (host: number, page: number) => string
  /**
   * Every URL a correct crawl seeded with `rootUrls` requests (robots.txt and images not counted):
   * the pages reachable by links, and with features the redirects, errors, traps… (see truth.ts).
   */
  expectedUrls: () => string[]
  /** Every image URL shown by an expected page (empty unless `imagesPerPage` > 0). */
  expectedImageUrls: () => string[]
  /** The whole ground truth: every expected URL (images included) with its kind, depth and request count. */
  truth: () => GroundTruth
  /** Absolute URL of a host's request-target. */
  absolute: (host: number, target: string) => string
  /** Ground truth: the body served (before any Content-Encoding) for an absolute URL of this site answered 200, or undefined. */
  body: (url: string) => Buffer | undefined
  stats: () => WebStats
  summary: () => CrawlSummary
  /** Forget every count (between two crawls of the same site): flaky URLs fail again. */
  reset: () => void
  /** Render every page into the cache (needs `cacheBytes` large enough), so no crawl pays for rendering. */
  warm: () => void
  close: () => Promise<void>
}

/** A valid 1×1 grey PNG (RFC 2083): signature, IHDR, IDAT, IEND. */
function onePixelPng (): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(data.length)
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(crc32(body))
    return Buffer.concat([len, body, crc])
  }
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]) // 1×1, 8-bit greyscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.from([0, 0x80]))),
    chunk('IEND', Buffer.alloc(0))
  ])
}

const PNG = onePixelPng()
const NOT_FOUND = Buffer.from('<!DOCTYPE html>\n<html><head><title>Not found</title></head><body><p>Not found.</p></body></html>\n', 'latin1')
const HTML = 'text/html; charset=utf-8'

/** Insertion-ordered map as an LRU cache of rendered bodies, bounded in bytes. */
class BodyCache {
  private readonly map = new Map<string, Buffer>()
  private bytes = 0
  constructor (private readonly maxBytes: number) {}

  get (key: string): Buffer | undefined {
    const b = this.map.get(key)
    if (b !== undefined) { this.map.delete(key); this.map.set(key, b) }
    return b
  }

  set (key: string, body: Buffer): void {
    if (body.length > this.maxBytes) return
    this.map.set(key, body)
    this.bytes += body.length
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes) break
      this.map.delete(k)
      this.bytes -= v.length
    }
  }
}

const GONE = Buffer.from('<!DOCTYPE html>\n<html><head><title>Gone</title></head><body><p>This page was removed.</p></body></html>\n', 'latin1')
const OFFSITE = Buffer.from('<!DOCTYPE html>\n<html><head><title>Elsewhere</title></head><body><p>Not part of the crawl.</p></body></html>\n', 'latin1')
const FAILURE = (status: number): Buffer => Buffer.from(`<!DOCTYPE html>\n<html><head><title>${status}</title></head><body><p>Try again later.</p></body></html>\n`, 'latin1')
const NO_WIRE: Wire = Object.freeze({ failures: 0, failStatus: 200, slow: 'no', encoding: 'identity' })
/** Oversized bodies are streamed in chunks of this many bytes. */
const STREAM_CHUNK = 64 * 1024

/** Resources whose answers may fail first, come late or come compressed (see `Wire`). */
const WIRED: ReadonlySet<Resource['kind']> = new Set(['page', 'alias', 'open', 'word', 'calendar', 'cart', 'files', 'redirect'])

interface Reply {
  status: number
  headers: Record<string, string | number>
  body: Buffer
  /** A deliberate failure the crawler should retry. */
  transient?: boolean
  /**
   * `late`: answer after `ms`; `drip`: headers and half the body, the rest after `ms`; `stall`:
   * nothing, and `stall-body`: headers and half the body, then the connection is dropped after `ms`.
   */
  timing?: { mode: 'late' | 'drip' | 'stall' | 'stall-body', ms: number }
  /** Stream `bytes` of `body` repeated instead of `body` (bodies over the cap); `declared`: with a Content-Length. */
  stream?: { bytes: number, declared: boolean }
}

function accepts (req: IncomingMessage, encoding: string): boolean {
  const header = req.headers['accept-encoding']
  if (typeof header !== 'string') return false
  return header.split(',').some(part => {
    const [name, ...params] = part.trim().toLowerCase().split(';')
    return name.trim() === encoding && !params.some(p => /^\s*q\s*=\s*0(\.0*)?\s*$/.test(p))
  })
}

export async function startSyntheticWeb (init: SyntheticWebInit = {}): Promise<SyntheticWeb> {
  const site = new SiteModel(init)
  const { hosts, features, policy } = site.options
  const offsiteHosts = features.offsiteHosts
  const wired = features.transient > 0 || features.slow > 0 || features.compression > 0
  const bindAddress = init.bindAddress ?? '127.0.0.1'
  const robotsOf = (h: number): string | false => {
    const r = init.robots
    if (r === undefined) return site.robotsTxt(h)
    return typeof r === 'function' ? r(h) : r
  }
  const conditional = init.conditional ?? true
  const bucketMs = init.timelineBucketMs ?? 1000
  const cacheBytes = init.cacheBytes ?? 0
  const ports = init.ports ?? []
  if (!(bucketMs > 0)) throw new ConfigError(`timelineBucketMs must be a positive number, got ${bucketMs}`)
  if (!(cacheBytes >= 0)) throw new ConfigError(`cacheBytes must be a number ≥ 0, got ${cacheBytes}`)
  if (ports.length > hosts) throw new ConfigError(`ports has ${ports.length} entries for ${hosts} hosts`)
  const cache = cacheBytes > 0 ? new BodyCache(cacheBytes) : undefined
  const newCounters = (): RequestCounters => new RequestCounters(hosts + offsiteHosts, bucketMs, init.log ?? false)
  let counters = newCounters()
  const origins: string[] = []
  const offsiteOrigins: string[] = []
  /** Undo what a pending answer holds (timers), run on close. */
  const pending = new Set<() => void>()

  const pageBody = (host: number, page: number, alias = false): Buffer => {
    if (cache === undefined || alias) return site.body(host, page, origins, offsiteOrigins, alias)
    const key = `${host}/${page}`
    let b = cache.get(key)
    if (b === undefined) { b = site.body(host, page, origins, offsiteOrigins); cache.set(key, b) }
    return b
  }

  let bomb: Buffer | undefined
  /**
   * A small gzip body that inflates past the decompressed-size cap, made once on first use. A gzip
   * body may hold several members, each inflated in turn (RFC 1952 §2.2), so it is one compressed
   * MiB of spaces repeated: compressing the whole would stall the event loop for tens of ms.
   */
  const bombBody = (): Buffer => {
    if (bomb === undefined) {
      const mib = gzipSync(Buffer.alloc(1024 * 1024, 0x20))
      const members = [gzipSync(Buffer.from('<!DOCTYPE html>\n<html><body>\n<a href="/commented/bomb.html">never</a>\n', 'latin1'))]
      for (let i = 0; i <= Math.ceil(policy.maxDecompressedSize / (1024 * 1024)); i++) members.push(mib)
      bomb = Buffer.concat(members)
    }
    return bomb
  }
  const hugeChunk = Buffer.from(('<!DOCTYPE html>\n<html><body>\n<a href="/commented/huge.html">never</a>\n' +
    '<p>' + 'All the records, ever. '.repeat(2900) + '</p>\n').slice(0, STREAM_CHUNK), 'latin1')

  /** The body (and type) of a resource answered 200 with HTML, or undefined. */
  const htmlOf = (host: number, r: Resource): { body: Buffer, contentType: string, etag?: string, lastModified?: string } | undefined => {
    switch (r.kind) {
      case 'page': case 'alias': {
        const alias = r.kind === 'alias'
        return {
          body: pageBody(host, r.page, alias),
          contentType: site.pageStyle(host, r.page).contentType,
          etag: site.etag(host, r.page, alias),
          lastModified: site.lastModified(host, r.page)
        }
      }
      case 'private':
        return { body: Buffer.from(site.privateHtml(host, r.page), 'latin1'), contentType: HTML }
      case 'open': case 'word': case 'search': case 'calendar': case 'cart': case 'files':
        return { body: Buffer.from(site.smallHtml(host, r), 'utf8'), contentType: HTML }
      default:
        return undefined
    }
  }

  const respond = (host: number, req: IncomingMessage, target: string): Reply => {
    const r = site.resolveTarget(host, target)
    const wire = wired && WIRED.has(r.kind) ? site.wire(host, target) : NO_WIRE
    if (wire.failures > 0 && counters.count(host, target) < wire.failures) {
      // A flaky URL: its first requests fail, whoever asks (counters are per URL).
      const headers: Record<string, string | number> = { 'content-type': HTML }
      // RFC 9110 §10.2.3: delta-seconds on a 429, an HTTP-date (rounded up to the second) on a 503.
      if (wire.failStatus === 429 || features.retryAfter === 0) headers['retry-after'] = String(features.retryAfter)
      else if (wire.failStatus === 503) headers['retry-after'] = new Date(Math.ceil(Date.now() / 1000 + features.retryAfter) * 1000).toUTCString()
      return { status: wire.failStatus, headers, body: FAILURE(wire.failStatus), transient: true }
    }
    const timing = wire.slow === 'no' ? undefined : { mode: wire.slow === 'headers' ? 'late' as const : 'drip' as const, ms: features.slowMs }
    switch (r.kind) {
      case 'robots': {
        const text = robotsOf(host)
        if (text === false) return { status: 404, headers: { 'content-type': HTML }, body: NOT_FOUND }
        return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: Buffer.from(text, 'utf8') }
      }
      case 'image':
        return { status: 200, headers: { 'content-type': 'image/png' }, body: PNG }
      case 'redirect': {
        const t = site.redirectTarget(r.origin, r.page, r.step)
        const origin = t.host < 0 ? offsiteOrigins[-1 - t.host] : origins[t.host]
        const location = t.form === 'path' ? t.target : t.form === 'absolute' ? origin + t.target : origin.slice(origin.indexOf('//')) + t.target
        return { status: t.status, headers: { location, 'content-type': HTML }, body: Buffer.from(`<!DOCTYPE html>\n<p>Moved to <a href="${location}">${location}</a>.</p>\n`, 'latin1'), timing }
      }
      case 'gone':
        return { status: 410, headers: { 'content-type': HTML }, body: GONE }
      case 'stall': {
        // Headers and half a body, or nothing at all; then silence until the crawler gives up (or stallMs).
        const body = Buffer.from(site.smallHtml(host, { kind: 'open', n: r.n }), 'utf8')
        return { status: r.n % 2 === 0 ? 0 : 200, headers: { 'content-type': HTML }, body, transient: true, timing: { mode: r.n % 2 === 0 ? 'stall' : 'stall-body', ms: features.stallMs } }
      }
      case 'huge': {
        const declared = r.n % 2 === 0
        return { status: 200, headers: { 'content-type': HTML }, body: hugeChunk, stream: { bytes: policy.maxBodySize + (declared ? 1 : STREAM_CHUNK), declared } }
      }
      case 'bomb':
        return { status: 200, headers: { 'content-type': HTML, 'content-encoding': 'gzip' }, body: bombBody() }
      case 'missing': case 'none':
        return { status: 404, headers: { 'content-type': HTML }, body: NOT_FOUND }
    }
    const html = htmlOf(host, r)
    if (html === undefined) return { status: 404, headers: { 'content-type': HTML }, body: NOT_FOUND }
    const headers: Record<string, string | number> = html.contentType === '' ? {} : { 'content-type': html.contentType }
    if (html.etag !== undefined) {
      headers.etag = html.etag
      if (html.lastModified !== undefined) headers['last-modified'] = html.lastModified
      if (conditional && req.headers['if-none-match'] === html.etag) return { status: 304, headers, body: Buffer.alloc(0) }
    }
    let body = html.body
    if (wire.encoding !== 'identity') {
      headers.vary = 'Accept-Encoding'
      if (accepts(req, wire.encoding)) {
        headers['content-encoding'] = wire.encoding
        body = wire.encoding === 'gzip' ? gzipSync(body) : brotliCompressSync(body, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5 } })
      }
    }
    return { status: 200, headers, body, timing }
  }

  /** Send a reply as its timing and stream say. */
  const send = (req: IncomingMessage, res: ServerResponse, reply: Reply, head: boolean): void => {
    const { status, headers, body, timing, stream } = reply
    if (timing === undefined && stream === undefined) {
      headers['content-length'] = status === 304 ? 0 : body.length
      res.writeHead(status, headers)
      if (head || status === 304) res.end()
      else res.end(body)
      return
    }
    let timer: NodeJS.Timeout | undefined
    const cleanup = (): void => { clearTimeout(timer); pending.delete(cleanup) }
    const later = (ms: number, fn: () => void): void => {
      timer = setTimeout(() => { if (!res.destroyed) fn() }, ms)
    }
    pending.add(cleanup)
    res.once('close', cleanup)
    if (stream !== undefined) {
      if (stream.declared) headers['content-length'] = stream.bytes
      res.writeHead(status, headers)
      if (head) { res.end(); return }
      let left = stream.bytes
      const pump = (): void => {
        while (left > 0 && !res.destroyed) {
          const chunk = left >= body.length ? body : body.subarray(0, left)
          left -= chunk.length
          counters.bytes += chunk.length
          if (!res.write(chunk)) { res.once('drain', pump); return }
        }
        if (!res.destroyed) res.end()
      }
      pump()
      return
    }
    const sent = head || status === 304 ? 0 : body.length
    headers['content-length'] = status === 304 ? 0 : body.length
    switch (timing?.mode) {
      case 'late':
        later(timing.ms, () => { res.writeHead(status, headers); res.end(sent === 0 ? undefined : body) })
        return
      case 'drip':
        res.writeHead(status, headers)
        if (sent === 0) { res.end(); return }
        res.write(body.subarray(0, body.length >> 1))
        later(timing.ms, () => { res.end(body.subarray(body.length >> 1)) })
        return
      case 'stall': case 'stall-body':
        if (timing.mode === 'stall-body') {
          res.writeHead(status, headers)
          if (!head) res.write(body.subarray(0, body.length >> 1))
        }
        later(timing.ms, () => { req.socket.destroy() })
    }
  }

  const handler = (host: number) => (req: IncomingMessage, res: ServerResponse): void => {
    const at = Date.now()
    const target = req.url ?? '/'
    const method = req.method ?? 'GET'
    let reply: Reply
    if (method !== 'GET' && method !== 'HEAD') {
      reply = { status: 405, headers: { allow: 'GET, HEAD', 'content-type': HTML }, body: NOT_FOUND }
    } else if (host >= hosts) {
      reply = { status: 200, headers: { 'content-type': HTML }, body: OFFSITE }
    } else {
      reply = respond(host, req, target)
    }
    const head = method === 'HEAD'
    const sent = head || reply.status === 304 || reply.stream !== undefined || reply.timing?.mode === 'stall' ? 0 : reply.body.length
    const transient = reply.transient === true
    counters.record(host, method, target, req.headers['user-agent'] ?? '', reply.status, sent, at, transient)
    if (!transient) {
      // Counters are replaced by reset(): these update the ones that saw the request.
      const c = counters
      const ordinal = c.count(host, target)
      res.once('finish', () => { c.served(host, target, ordinal) })
      // A body over the cap is meant to be given up on.
      if (reply.stream === undefined) res.once('close', () => { if (!res.writableFinished) c.aborted(host, target) })
    }
    send(req, res, reply, head)
  }

  const servers: Server[] = []
  const listen = async (index: number, port: number): Promise<string> => {
    const server = createServer({ keepAlive: true }, handler(index))
    server.on('connection', () => { counters.connections++ })
    servers.push(server)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, bindAddress, () => { server.off('error', reject); resolve() })
    })
    const address = server.address() as AddressInfo
    return `http://${bindAddress.includes(':') ? `[${bindAddress}]` : bindAddress}:${address.port}`
  }
  try {
    for (let h = 0; h < hosts; h++) origins.push(await listen(h, ports[h] ?? 0))
    for (let i = 0; i < offsiteHosts; i++) offsiteOrigins.push(await listen(hosts + i, 0))
  } catch (err) {
    await closeServers(servers, pending)
    throw err
  }

  const url = (host: number, page: number): string => origins[host] + pagePath(page)
  const absolute = (host: number, target: string): string => origins[host] + target
  let truth: GroundTruth | undefined
  const getTruth = (): GroundTruth => (truth ??= groundTruth(site, origins))

  return {
    site,
    options: site.options,
    origins,
    offsiteOrigins,
    rootUrls: origins.map(o => o + '/'),
    url,
    absolute,
    truth: getTruth,
    expectedUrls: () => getTruth().urls.filter(e => e.kind !== 'image').map(e => absolute(e.host, e.target)),
    expectedImageUrls: () => getTruth().urls.filter(e => e.kind === 'image').map(e => absolute(e.host, e.target)),
    body: (u: string) => {
      let parsed: URL
      try { parsed = new URL(u) } catch { return undefined }
      const host = origins.indexOf(parsed.origin)
      if (host < 0) return undefined
      return htmlOf(host, site.resolveTarget(host, parsed.pathname + parsed.search))?.body
    },
    stats: () => ({
      requests: counters.requests,
      connections: counters.connections,
      bytes: counters.bytes,
      firstAt: counters.firstAt,
      lastAt: counters.lastAt,
      urls: counters.urls,
      byUserAgent: counters.byUserAgent,
      byStatus: counters.byStatus,
      byMethod: counters.byMethod,
      timeline: counters.timeline,
      timelineBucketMs: bucketMs,
      log: counters.log
    }),
    summary: () => summarize(site, getTruth(), counters),
    reset: () => { counters = newCounters() },
    warm: () => {
      for (let h = 0; h < hosts; h++) for (let p = 0; p < site.hostPages(h); p++) pageBody(h, p)
    },
    close: async () => { await closeServers(servers, pending) }
  }
}

const KINDS: readonly ExpectedKind[] = ['page', 'alias', 'redirect', 'error', 'timeout', 'oversize', 'trap', 'image']

function summarize (site: SiteModel, truth: GroundTruth, counters: RequestCounters): CrawlSummary {
  const { hosts } = site.options
  const byKind = Object.fromEntries(KINDS.map(k => [k, { expected: 0, fetched: 0, requests: 0 }])) as Record<ExpectedKind, KindSummary>
  for (const e of truth.urls) byKind[e.kind].expected++
  let requests = 0
  let robotsRequests = 0
  let disallowedRequests = 0
  let imageRequests = 0
  let unexpectedRequests = 0
  let extraRequests = 0
  let transientErrors = 0
  let abortedAnswers = 0
  for (let h = 0; h < hosts; h++) {
    const expected = truth.byHost[h]
    for (const [target, c] of counters.urls[h]) {
      requests += c.count
      transientErrors += c.transient
      abortedAnswers += c.aborted
      const e: ExpectedUrl | undefined = expected.get(target)
      if (target.startsWith('/img/')) imageRequests += c.count
      if (e !== undefined) {
        const k = byKind[e.kind]
        k.fetched++
        k.requests += c.count
        extraRequests += Math.max(0, c.count - c.aborted - e.requests)
      } else if (target === '/robots.txt') {
        robotsRequests += c.count
      } else {
        unexpectedRequests += c.count
        if (!site.allowed(target)) disallowedRequests += c.count
      }
    }
  }
  let offsiteRequests = 0
  for (let i = hosts; i < counters.urls.length; i++) for (const c of counters.urls[i].values()) offsiteRequests += c.count
  let pagesExpected = 0
  let pagesFetched = 0
  let pageRequests = 0
  for (const k of KINDS) {
    if (k === 'image') continue
    pagesExpected += byKind[k].expected
    pagesFetched += byKind[k].fetched
    pageRequests += byKind[k].requests
  }
  return {
    pagesExpected,
    pagesFetched,
    coverage: pagesExpected === 0 ? 1 : pagesFetched / pagesExpected,
    requests,
    pageRequests,
    duplicateFetches: counters.duplicates(hosts),
    retries: counters.retries(hosts),
    abortedAnswers,
    transientErrors,
    extraRequests,
    unexpectedRequests,
    robotsRequests,
    disallowedRequests,
    offsiteRequests,
    imageRequests,
    imagesExpected: byKind.image.expected,
    imagesFetched: byKind.image.fetched,
    trapPagesExpected: byKind.trap.expected,
    trapPagesFetched: byKind.trap.fetched,
    byKind,
    notFound: counters.byStatus.get(404) ?? 0,
    bytes: counters.bytes,
    connections: counters.connections,
    firstRequestAt: counters.firstAt,
    lastRequestAt: counters.lastAt,
    activeSeconds: (counters.lastAt - counters.firstAt) / 1000,
    byUserAgent: Object.fromEntries(counters.byUserAgent),
    byStatus: Object.fromEntries([...counters.byStatus].map(([k, v]) => [String(k), v]))
  }
}

async function closeServers (servers: Server[], pending: Set<() => void>): Promise<void> {
  for (const cleanup of [...pending]) cleanup()
  await Promise.all(servers.map(async s => {
    if (!s.listening) return
    await new Promise<void>(resolve => {
      s.close(() => { resolve() })
      // Keep-alive connections (and stalled answers) would hold close() open until their timeout.
      s.closeAllConnections()
    })
  }))
}

/**
 * The server side of `/shoal/query/1.0.0`: answers other peers' questions about the URLs this peer
 * holds (owns, or replicates).
 *
 * One request per stream: read the `get` under `timeout`, look the URL up, send the record (or
 * `null` and a verdict), then, when the body was asked for and the record has a CID, the body in
 * chunks and an `end`; then close our end. Every step — the request, the lookup, the body read,
 * each frame's drain — has `timeout`, reset after each, so one silent or slow peer holds nothing
 * for long. A malformed request closes that stream with a log line; the peer goes on.
 */
import '../../node/polyfills.js'
import { lpStream } from '@libp2p/utils'
import debug from 'debug'
import { ConfigError } from '../../node/errors.js'
import { second } from '../../node/constants.js'
import { decodeMessage, encodeFrame, varintLength } from './codec.js'
import {
  CLOSE_TIMEOUT, DEFAULT_CHUNK_BYTES, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONCURRENT, DEFAULT_MAX_INBOUND_STREAMS,
  DEFAULT_MAX_URL_LENGTH, DEFAULT_TIMEOUT, MAX_BODY_BYTES, MAX_CHUNK_BYTES, MAX_CONCURRENT, MAX_ERROR_LENGTH,
  MAX_RECORD_ERROR_LENGTH, MAX_RESPONSE_BYTES, MAX_URL_LENGTH, MAX_VERDICT_LENGTH, PROTOCOL
} from './constants.js'
import { InvalidMessageError } from './errors.js'
import { clip, validateRecord } from './messages.js'
import { MALFORMED, asError, closeStream, messageOf, untilAborted } from './streams.js'
import type { GetMessage, Message, MessageLimits } from './messages.js'
import type { UrlRecord } from '../../node/types.js'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'

const log = debug('shoal:query')
const trace = debug('shoal:query:trace')

export interface QueryServiceComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle'>
}

/** What this peer knows of a URL: its record, or a verdict saying why there is none. */
export interface Found {
  record?: UrlRecord
  /** Why there is no record ('never seen', 'queued', 'in flight', 'failed: …'), or a note on the record. */
  verdict: string
}

export interface QueryServiceInit {
  /**
   * The record of `url` as this peer holds it. A rejection is answered with a retryable error.
   * `signal` aborts when the step times out or the service stops.
   */
  lookup: (url: string, options: { signal: AbortSignal }) => Promise<Found>
  /** The stored body of `record` (whose `cid` is set), or `undefined` when it is not stored here. */
  body: (record: UrlRecord, options: { signal: AbortSignal }) => Promise<Uint8Array | undefined>
  /** Milliseconds for each step: the request to arrive, the lookup, the body read, each frame's drain. @default 10000 */
  timeout?: number
  /** Characters of the URL asked for. @default 2048 */
  maxUrlLength?: number
  /** Bytes of a body this peer sends; a larger one is answered with an error. @default 21 MiB */
  maxBodyBytes?: number
  /** Bytes of body per chunk frame, 1 to 64 KiB. @default 65536 */
  chunkBytes?: number
  /** Inbound query streams per connection; libp2p resets streams past it. @default 32 */
  maxInboundStreams?: number
  /** Queries answered at once, over all peers; more are refused with a retryable "busy" error. @default 32 */
  maxConcurrent?: number
}

export interface QueryServiceStats {
  streamsInbound: number
  /** Requests read and valid. */
  requests: number
  recordsFound: number
  recordsMissing: number
  bodiesSent: number
  chunksSent: number
  /** Bytes of every frame written, length prefixes included. */
  bytesSent: number
  bytesReceived: number
  errorsSent: number
  /** Requests refused because `maxConcurrent` were running. */
  busy: number
  /** Streams closed because a peer sent something that breaks the protocol. */
  malformedRequests: number
  /** Streams closed because a step took longer than `timeout`. */
  timeouts: number
}

interface Options {
  timeout: number
  maxUrlLength: number
  maxBodyBytes: number
  chunkBytes: number
  maxInboundStreams: number
  maxConcurrent: number
}

function integer (name: string, value: number | undefined, def: number, min: number, max: number, unit = ''): number {
  const v = value ?? def
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}${unit}, got ${String(value)}`)
  }
  return v
}

function resolveOptions (init: QueryServiceInit): Options {
  if (typeof init?.lookup !== 'function') throw new ConfigError('lookup must be a function (url) => Promise<{ record?, verdict }>')
  if (typeof init.body !== 'function') throw new ConfigError('body must be a function (record) => Promise<Uint8Array | undefined>')
  return {
    timeout: integer('timeout', init.timeout, DEFAULT_TIMEOUT, 1, 3600 * second, ' ms'),
    maxUrlLength: integer('maxUrlLength', init.maxUrlLength, DEFAULT_MAX_URL_LENGTH, 16, MAX_URL_LENGTH, ' characters'),
    maxBodyBytes: integer('maxBodyBytes', init.maxBodyBytes, DEFAULT_MAX_BODY_BYTES, 1, MAX_BODY_BYTES, ' bytes'),
    chunkBytes: integer('chunkBytes', init.chunkBytes, DEFAULT_CHUNK_BYTES, 1, MAX_CHUNK_BYTES, ' bytes'),
    maxInboundStreams: integer('maxInboundStreams', init.maxInboundStreams, DEFAULT_MAX_INBOUND_STREAMS, 1, 1024, ' streams'),
    maxConcurrent: integer('maxConcurrent', init.maxConcurrent, DEFAULT_MAX_CONCURRENT, 1, MAX_CONCURRENT, ' queries')
  }
}

/** One inbound stream being served. */
interface Inbound {
  readonly stream: Stream
  readonly from: string
  /** Aborted by the step timer or by stop(). */
  readonly controller: AbortController
  readonly timer: ReturnType<typeof setTimeout>
  /** The step timer fired (as opposed to a stop). */
  timedOut: boolean
}

/** `record` without its `undefined` fields (msgpack would send them), its free-text `error` clipped to the cap. */
function compact (record: UrlRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(record)) if (v !== undefined) out[k] = v
  if (typeof out.error === 'string') out.error = clip(out.error, MAX_RECORD_ERROR_LENGTH)
  return out
}

export class QueryService {
  readonly stats: QueryServiceStats = {
    streamsInbound: 0,
    requests: 0,
    recordsFound: 0,
    recordsMissing: 0,
    bodiesSent: 0,
    chunksSent: 0,
    bytesSent: 0,
    bytesReceived: 0,
    errorsSent: 0,
    busy: 0,
    malformedRequests: 0,
    timeouts: 0
  }

  private readonly opts: Options
  private readonly lookup: QueryServiceInit['lookup']
  private readonly body: QueryServiceInit['body']
  private readonly limits: MessageLimits
  /** Bytes of a request frame: a URL of `maxUrlLength` characters of up to 3 UTF-8 bytes, and the map around it. */
  private readonly maxRequestBytes: number
  private readonly inbound = new Set<Inbound>()
  private running = false
  /** Queries between their request and their last frame. */
  private active = 0

  /** Handlers of what arrives on an inbound stream, by message type. */
  private readonly handlers: { [T in Message['t']]?: (s: Inbound, msg: Extract<Message, { t: T }>) => Promise<void> } = {
    get: async (s, msg) => { await this.handleGet(s, msg) }
  }

  constructor (private readonly components: QueryServiceComponents, init: QueryServiceInit) {
    this.opts = resolveOptions(init)
    this.lookup = init.lookup
    this.body = init.body
    this.limits = { maxUrlLength: this.opts.maxUrlLength, maxChunkBytes: this.opts.chunkBytes, maxBodyBytes: this.opts.maxBodyBytes }
    this.maxRequestBytes = 3 * this.opts.maxUrlLength + 64
  }

  async start (): Promise<void> {
    if (this.running) return
    await this.components.libp2p.handle(PROTOCOL, (stream, connection) => { this.onStream(stream, connection) }, {
      maxInboundStreams: this.opts.maxInboundStreams,
      maxOutboundStreams: this.opts.maxInboundStreams
    })
    this.running = true
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    for (const s of this.inbound) {
      s.controller.abort(new Error('the query service stopped'))
      s.stream.abort(new Error('the query service stopped'))
    }
    try {
      await this.components.libp2p.unhandle(PROTOCOL)
    } catch (err) {
      log('unhandle failed: %s', messageOf(err))
    }
  }

  private onStream (stream: Stream, connection: Connection): void {
    if (!this.running) {
      stream.abort(new Error('the query service is not running'))
      return
    }
    void this.serve(stream, connection.remotePeer.toString())
  }

  private async serve (stream: Stream, from: string): Promise<void> {
    const controller = new AbortController()
    const s: Inbound = {
      stream,
      from,
      controller,
      timedOut: false,
      timer: setTimeout(() => {
        s.timedOut = true
        controller.abort(new Error(`a step of the query from ${from} took more than ${this.opts.timeout} ms`))
      }, this.opts.timeout)
    }
    this.inbound.add(s)
    this.stats.streamsInbound++
    // One request per stream: the reader holds that one frame and nothing much beyond it.
    const lp = lpStream(stream, { maxDataLength: this.maxRequestBytes, maxBufferSize: 2 * this.maxRequestBytes + 16 })
    try {
      let buf
      try {
        buf = await lp.read({ signal: controller.signal })
      } catch (err: any) {
        // The peer closed its end without asking anything (a clean end surfaces as an unexpected EOF of the length prefix).
        if (err?.name === 'UnexpectedEOFError' && !controller.signal.aborted) {
          trace('query stream from %s closed without a request', from)
          await closeStream(stream, CLOSE_TIMEOUT)
          return
        }
        throw err
      }
      s.timer.refresh()
      this.stats.bytesReceived += buf.byteLength + varintLength(buf.byteLength)
      const msg = decodeMessage(buf, this.limits)
      const handler = this.handlers[msg.t] as ((s: Inbound, msg: Message) => Promise<void>) | undefined
      if (handler == null) throw new InvalidMessageError(`a ${msg.t} message is not a request`)
      await handler(s, msg)
      clearTimeout(s.timer)
      await closeStream(stream, CLOSE_TIMEOUT)
    } catch (err: any) {
      const reason = controller.signal.aborted ? controller.signal.reason : err
      if (MALFORMED.has(err?.name)) {
        this.stats.malformedRequests++
        log('closing query stream from %s: %s', from, messageOf(err))
      } else {
        if (s.timedOut) this.stats.timeouts++
        log('query stream from %s failed: %s', from, messageOf(reason))
      }
      stream.abort(asError(reason))
    } finally {
      clearTimeout(s.timer)
      this.inbound.delete(s)
    }
  }

  private async handleGet (s: Inbound, msg: GetMessage): Promise<void> {
    this.stats.requests++
    trace('get %s (body: %s) from %s', msg.url, msg.body, s.from)
    if (this.active >= this.opts.maxConcurrent) {
      this.stats.busy++
      await this.sendError(s, msg.id, `busy: ${this.active} queries running`, true)
      return
    }
    this.active++
    try {
      await this.answer(s, msg)
    } finally {
      this.active--
    }
  }

  private async answer (s: Inbound, { id, url, body }: GetMessage): Promise<void> {
    const { signal } = s.controller
    let found: Found
    try {
      found = await untilAborted(Promise.resolve().then(async () => await this.lookup(url, { signal })), signal)
    } catch (err) {
      if (this.failedStep(s, id, 'the lookup', err)) return
      log('lookup of %s failed: %s', url, messageOf(err))
      await this.sendError(s, id, `lookup failed: ${messageOf(err)}`, true)
      return
    }
    s.timer.refresh()
    const verdict = clip(typeof found?.verdict === 'string' ? found.verdict : '', MAX_VERDICT_LENGTH)
    let record: UrlRecord | null = null
    if (found?.record != null) {
      try {
        record = validateRecord(compact(found.record), this.limits)
      } catch (err) {
        // Our own record breaks the caps the client holds us to: say so, rather than get the stream torn down.
        log('the record of %s cannot be sent: %s', url, messageOf(err))
        await this.sendError(s, id, `the record cannot be sent: ${messageOf(err)}`, false)
        return
      }
    }
    const frame = encodeFrame({ t: 'record', id, record, verdict })
    if (frame.byteLength > MAX_RESPONSE_BYTES + varintLength(MAX_RESPONSE_BYTES)) {
      log('the record of %s encodes to %d bytes', url, frame.byteLength)
      await this.sendError(s, id, `the record encodes to ${frame.byteLength} bytes, more than ${MAX_RESPONSE_BYTES}`, false)
      return
    }
    await this.sendFrame(s, frame)
    if (record == null) this.stats.recordsMissing++
    else this.stats.recordsFound++
    if (!body || record?.cid == null) return

    let bytes: Uint8Array | undefined
    try {
      const r = record
      bytes = await untilAborted(Promise.resolve().then(async () => await this.body(r, { signal })), signal)
    } catch (err) {
      if (this.failedStep(s, id, 'reading the body', err)) return
      log('cannot read body %s of %s: %s', record.cid, url, messageOf(err))
      await this.sendError(s, id, `cannot read the body: ${messageOf(err)}`, true)
      return
    }
    s.timer.refresh()
    if (bytes == null) {
      // Another holder (the owner, a replica) may have it.
      await this.sendError(s, id, `body ${record.cid} is not stored here`, true)
      return
    }
    if (!(bytes instanceof Uint8Array)) {
      log('body() resolved with %s, not bytes', typeof bytes)
      await this.sendError(s, id, 'the body cannot be read here', false)
      return
    }
    if (bytes.byteLength > this.opts.maxBodyBytes) {
      await this.sendError(s, id, `the body has ${bytes.byteLength} bytes, more than this peer sends (${this.opts.maxBodyBytes})`, false)
      return
    }
    const step = this.opts.chunkBytes
    for (let off = 0; off < bytes.byteLength; off += step) {
      await this.sendFrame(s, encodeFrame({ t: 'chunk', id, data: bytes.subarray(off, off + step) }))
      this.stats.chunksSent++
    }
    await this.sendFrame(s, encodeFrame({ t: 'end', id, bytes: bytes.byteLength }))
    this.stats.bodiesSent++
  }

  /**
   * A step failed: when its timer fired, tell the client (a retryable error, so it need not wait
   * for its own timer) and return true; when the service stops, rethrow; else return false.
   */
  private failedStep (s: Inbound, id: number, what: string, err: unknown): boolean {
    if (!s.controller.signal.aborted) return false
    if (!s.timedOut) throw err
    this.stats.timeouts++
    log('%s for %s took more than %d ms', what, s.from, this.opts.timeout)
    // The step's signal is spent: no drain wait for this one small frame, closing the stream flushes it.
    this.stats.errorsSent++
    this.write(s, encodeFrame({ t: 'error', id, error: `${what} took more than ${this.opts.timeout} ms`, retry: true }))
    return true
  }

  private async sendError (s: Inbound, id: number, error: string, retry: boolean): Promise<void> {
    this.stats.errorsSent++
    await this.sendFrame(s, encodeFrame({ t: 'error', id, error: clip(error, MAX_ERROR_LENGTH), retry }))
  }

  /** Write a frame, then wait for 'drain' when the stream asks for it, under the step timer. */
  private async sendFrame (s: Inbound, frame: Uint8Array): Promise<void> {
    s.timer.refresh()
    if (!this.write(s, frame)) await s.stream.onDrain({ signal: s.controller.signal })
  }

  private write (s: Inbound, frame: Uint8Array): boolean {
    this.stats.bytesSent += frame.byteLength
    return s.stream.send(frame)
  }
}

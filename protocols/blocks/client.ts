/**
 * `/shoal/blocks/1.0.0`, the asking end: put, has and get blocks on other peers, for replicating
 * stored bodies on r peers and repairing the under-replicated ones.
 *
 * Each peer gets one long-lived outbound stream, opened on first use, on which up to `window`
 * requests are in flight, answered in any order and matched by id. Puts also stay within
 * `maxPendingBytes` of unacked block bytes (a larger block goes alone). Requests beyond either
 * limit wait here, in order (a has or get does not wait behind a put held by the byte budget), so
 * a slow peer slows its callers. A block larger than `maxChunkBytes`
 * goes as a head and chunk frames, written back to back.
 *
 * `put` resolves with the CID once the peer has the block durably; `get` checks the bytes against
 * the CID before it resolves. A request rejects with a `BlocksRequestError` on an error reply, a
 * dead stream, no answer within `timeout`, or stop; a dead stream (or a timeout) fails everything
 * waiting on that peer, and the next request opens a new stream.
 */
import '../../node/polyfills.js'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import debug from 'debug'
import { second } from '../../node/constants.js'
import { AbortError } from '../../node/errors.js'
import { cidOf } from '../../node/blocks.js'
import { blockFrames, decodeMessage, encodeFrame, maxFrameBytes, varintLength } from './codec.js'
import { DEFAULT_IDLE_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, MAX_CID_LENGTH, MUXER_MESSAGE_BYTES, PROTOCOL } from './constants.js'
import { BlockMismatchError, BlocksRequestError, InvalidBlockRequestError, InvalidMessageError } from './errors.js'
import { Assembly, isCidString } from './messages.js'
import { CLOSE_TIMEOUT, MALFORMED, integer, messageOf, resolveLimits, timeoutSignal } from './options.js'
import type { BlockMessage, ErrorMessage, HaveMessage, Message, MissingMessage, OkMessage } from './messages.js'
import type { BlocksLimitsInit, Limits } from './options.js'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'

const log = debug('shoal:blocks')
const trace = debug('shoal:blocks:trace')

export interface BlockClientComponents {
  libp2p: Pick<Libp2p, 'dialProtocol'>
}

export interface BlockClientInit extends BlocksLimitsInit {
  /** Milliseconds to wait for an answer, from the request's first frame (also bounds opening a stream). @default 30000 */
  timeout?: number
  /** Milliseconds an outbound stream with nothing in flight stays open. Keep it below the peers' `readTimeout`. @default 30000 */
  idleTimeout?: number
}

export interface RequestOptions {
  /** Gives up on the request (rejecting with an `AbortError`); frames already written stay written. */
  signal?: AbortSignal
}

export interface BlockClientStats {
  /** Bytes of every frame written and read, length prefixes included. */
  bytesSent: number
  bytesReceived: number
  messagesSent: number
  messagesReceived: number
  /** Puts written in full. */
  blocksSent: number
  /** Block bytes of the puts written. */
  blockBytesSent: number
  /** Puts the peers acked (durable there). */
  blocksAcked: number
  /** Gets answered with bytes that matched their CID. */
  blocksReceived: number
  blockBytesReceived: number
  /** Gets answered `missing`. */
  blocksMissing: number
  /** Gets answered with bytes that did not match their CID. */
  mismatches: number
  hasRequests: number
  /** Requests the peer answered with an error. */
  errorReplies: number
  /** Requests rejected for a stream error, a timeout, a failed dial or stop. */
  requestsFailed: number
  streamsOpened: number
  /** Streams closed because a peer sent something that breaks the protocol. */
  malformedMessages: number
}

interface Options extends Limits {
  timeout: number
  idleTimeout: number
}

type Kind = 'put' | 'has' | 'get'

/** One request, from the caller's call to its answer. */
interface Request {
  readonly kind: Kind
  /** The block's CID (put, get). */
  readonly cid: string
  /** The block (put). */
  readonly data?: Uint8Array
  /** The CIDs asked about (has). */
  readonly cids?: string[]
  /** Block bytes it puts in flight (the put's size, else 0). */
  readonly bytes: number
  /** Order of the call, kept between the two queues. */
  seq: number
  settled: boolean
  timer: ReturnType<typeof setTimeout> | undefined
  resolve: (value: any) => void
  reject: (err: Error) => void
  /** Drops the caller's abort listener. */
  cleanup: () => void
}

/** Everything on its way to one peer. */
class Channel {
  stream: Stream | undefined
  writing = false
  nextId = 0
  /** Written (at least its first frame), waiting for the answer, by id: at most `window`. */
  readonly inFlight = new Map<number, Request>()
  /** Puts waiting for room in the window or the byte budget, in order. */
  readonly puts: Request[] = []
  /** Has and get requests waiting for room in the window, in order: a put held by the byte budget doesn't hold them. */
  readonly others: Request[] = []
  nextSeq = 0
  /** Block bytes of the puts in flight. */
  putBytes = 0
  /** The get reply whose chunks are arriving. */
  partial: Assembly<BlockMessage> | undefined
  idleTimer: ReturnType<typeof setTimeout> | undefined

  constructor (readonly peer: string, readonly peerId: PeerId) {}

  busy (): boolean {
    return this.inFlight.size > 0 || this.puts.length > 0 || this.others.length > 0
  }

  queueOf (req: Request): Request[] {
    return req.kind === 'put' ? this.puts : this.others
  }
}

export class BlockClient {
  readonly stats: BlockClientStats = {
    bytesSent: 0,
    bytesReceived: 0,
    messagesSent: 0,
    messagesReceived: 0,
    blocksSent: 0,
    blockBytesSent: 0,
    blocksAcked: 0,
    blocksReceived: 0,
    blockBytesReceived: 0,
    blocksMissing: 0,
    mismatches: 0,
    hasRequests: 0,
    errorReplies: 0,
    requestsFailed: 0,
    streamsOpened: 0,
    malformedMessages: 0
  }

  private readonly opts: Options
  private readonly channels = new Map<string, Channel>()
  private shutdown = new AbortController()
  private running = false

  /** Handlers of the replies, by message type. */
  private readonly handlers: { [T in Message['t']]?: (ch: Channel, msg: Extract<Message, { t: T }>) => void } = {
    ok: (ch, msg) => { this.handleOk(ch, msg) },
    error: (ch, msg) => { this.handleError(ch, msg) },
    have: (ch, msg) => { this.handleHave(ch, msg) },
    block: (ch, msg) => { this.handleBlock(ch, msg) },
    missing: (ch, msg) => { this.handleMissing(ch, msg) }
  }

  constructor (private readonly components: BlockClientComponents, init: BlockClientInit = {}) {
    this.opts = {
      ...resolveLimits(init),
      timeout: integer('timeout', init.timeout, DEFAULT_REQUEST_TIMEOUT, 1, 3600 * second, ' ms'),
      idleTimeout: integer('idleTimeout', init.idleTimeout, DEFAULT_IDLE_TIMEOUT, 1, 3600 * second, ' ms')
    }
  }

  async start (): Promise<void> {
    if (this.running) return
    this.shutdown = new AbortController()
    this.running = true
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    // Reject first, synchronously, so every pending request gets this error and not the echo of
    // an aborted stream.
    for (const ch of [...this.channels.values()]) {
      this.fail(ch, new BlocksRequestError(`the block client stopped before ${ch.peer} answered`, { peer: ch.peer, retryable: false }))
    }
    this.channels.clear()
    this.shutdown.abort(new Error('the block client stopped'))
  }

  /** Requests to `peer` written and not yet answered (never more than `window`). */
  inFlight (peer: string): number {
    return this.channels.get(peer)?.inFlight.size ?? 0
  }

  /** Requests to `peer` waiting for room in the window. */
  queued (peer: string): number {
    const ch = this.channels.get(peer)
    return ch == null ? 0 : ch.puts.length + ch.others.length
  }

  /**
   * Store `bytes` on `peer`. Resolves with the block's CID once the peer has it durably; rejects
   * with `BlocksRequestError` (refused, stream failure, timeout, stop) or `InvalidBlockRequestError`
   * (not bytes, or more than `maxBlockBytes`).
   */
  async put (peer: string, bytes: Uint8Array, options: RequestOptions = {}): Promise<string> {
    if (!(bytes instanceof Uint8Array)) throw new InvalidBlockRequestError('a block must be a Uint8Array')
    if (bytes.byteLength > this.opts.maxBlockBytes) {
      throw new InvalidBlockRequestError(`a block of ${bytes.byteLength} bytes is larger than maxBlockBytes (${this.opts.maxBlockBytes})`)
    }
    return await this.request<string>(peer, { kind: 'put', cid: cidOf(bytes), data: bytes, bytes: bytes.byteLength }, options)
  }

  /**
   * Which of `cids` does `peer` hold: one boolean per CID, in order. A list longer than
   * `maxHasCids` goes as several requests.
   */
  async has (peer: string, cids: string[], options: RequestOptions = {}): Promise<boolean[]> {
    if (!Array.isArray(cids)) throw new InvalidBlockRequestError('cids must be an array')
    cids.forEach((cid, i) => { checkCid(cid, `cids[${i}]`) })
    if (cids.length === 0) return []
    const max = this.opts.maxHasCids
    const parts: Array<Promise<boolean[]>> = []
    for (let i = 0; i < cids.length; i += max) {
      const part = cids.slice(i, i + max)
      parts.push(this.request<boolean[]>(peer, { kind: 'has', cid: part[0], cids: part, bytes: 0 }, options))
    }
    return (await Promise.all(parts)).flat()
  }

  /**
   * The bytes of block `cid` from `peer`, checked against the CID; undefined when the peer does
   * not hold it. Rejects with `BlockMismatchError` when the bytes don't match, `BlocksRequestError`
   * as `put` does.
   */
  async get (peer: string, cid: string, options: RequestOptions = {}): Promise<Uint8Array | undefined> {
    checkCid(cid, 'cid')
    return await this.request<Uint8Array | undefined>(peer, { kind: 'get', cid, bytes: 0 }, options)
  }

  private async request<T> (peer: string, r: Pick<Request, 'kind' | 'cid' | 'data' | 'cids' | 'bytes'>, options: RequestOptions): Promise<T> {
    if (!this.running) throw new BlocksRequestError(`the block client is not running; cannot ask ${peer}`, { peer, retryable: false })
    const { signal } = options
    if (signal?.aborted === true) throw new AbortError(`the ${r.kind} of ${r.cid} was aborted`)
    const ch = this.channel(peer)
    return await new Promise<T>((resolve, reject) => {
      const req: Request = { ...r, seq: ch.nextSeq++, settled: false, timer: undefined, resolve, reject, cleanup: () => {} }
      if (signal != null) {
        const onAbort = (): void => {
          const queue = ch.queueOf(req)
          const i = queue.indexOf(req)
          if (i >= 0) queue.splice(i, 1)
          // In flight, it keeps its window slot until the peer answers: the peer is still working on it.
          settle(req, undefined, new AbortError(`the ${req.kind} of ${req.cid} was aborted`))
        }
        signal.addEventListener('abort', onAbort, { once: true })
        req.cleanup = () => { signal.removeEventListener('abort', onAbort) }
      }
      ch.queueOf(req).push(req)
      this.pump(ch)
    })
  }

  private channel (peer: string): Channel {
    let ch = this.channels.get(peer)
    if (ch == null) {
      let peerId: PeerId
      try {
        peerId = peerIdFromString(peer)
      } catch (err) {
        throw new BlocksRequestError(`${JSON.stringify(peer)} is not a peer id`, { peer, retryable: false, cause: err })
      }
      ch = new Channel(peer, peerId)
      this.channels.set(peer, ch)
    }
    return ch
  }

  /** The request to write next, if one may go out now: the oldest, unless it is a put the byte budget holds. */
  private next (ch: Channel): Request | undefined {
    if (ch.inFlight.size >= this.opts.window) return undefined
    const put = ch.puts[0]
    const other = ch.others[0]
    const putFits = put != null && (ch.putBytes === 0 || ch.putBytes + put.bytes <= this.opts.maxPendingBytes)
    if (other != null && (!putFits || other.seq < (put as Request).seq)) return other
    return putFits ? put : undefined
  }

  /** Start the writer of `ch` if it has requests that may go out. */
  private pump (ch: Channel): void {
    if (ch.idleTimer != null) {
      clearTimeout(ch.idleTimer)
      ch.idleTimer = undefined
    }
    if (!ch.writing && this.running && this.next(ch) != null) void this.write(ch)
  }

  /** The writer: one per channel at a time, so a block's frames go out back to back and 'drain' is respected. */
  private async write (ch: Channel): Promise<void> {
    ch.writing = true
    let stream: Stream | undefined
    try {
      while (this.running && this.next(ch) != null) {
        stream = ch.stream ?? await this.openStream(ch)
        // Opening took a while: what was ready may have been aborted since.
        const req = this.next(ch)
        if (req == null) continue
        ch.queueOf(req).shift()
        const id = ch.nextId
        ch.nextId = (ch.nextId + 1) >>> 0
        ch.inFlight.set(id, req)
        ch.putBytes += req.bytes
        const s = stream
        req.timer = setTimeout(() => {
          this.fail(ch, new BlocksRequestError(`no answer from ${ch.peer} to a ${req.kind} within ${this.opts.timeout} ms`, { peer: ch.peer, retryable: true }), s)
        }, this.opts.timeout)
        const frames = req.kind === 'put'
          ? blockFrames({ t: 'put', id, cid: req.cid }, req.data as Uint8Array, this.opts.maxChunkBytes)
          : [encodeFrame(req.kind === 'has' ? { t: 'has', id, cids: req.cids as string[] } : { t: 'get', id, cid: req.cid })]
        for (const frame of frames) {
          this.stats.bytesSent += frame.byteLength
          this.stats.messagesSent++
          if (!stream.send(frame)) await stream.onDrain({ signal: this.shutdown.signal })
        }
        if (req.kind === 'put') {
          this.stats.blocksSent++
          this.stats.blockBytesSent += req.bytes
        } else if (req.kind === 'has') {
          this.stats.hasRequests++
        }
        trace('%s %d to %s: %s', req.kind, id, ch.peer, req.cid)
      }
    } catch (err) {
      this.fail(ch, err, stream)
    } finally {
      ch.writing = false
    }
  }

  private async openStream (ch: Channel): Promise<Stream> {
    // Bounded by the request timeout: a request waits for one dial at most that long.
    const { signal, clear } = timeoutSignal(this.shutdown.signal, this.opts.timeout)
    let stream: Stream
    try {
      stream = await this.components.libp2p.dialProtocol(ch.peerId, PROTOCOL, { signal })
    } catch (err) {
      throw new BlocksRequestError(`cannot open a blocks stream to ${ch.peer}: ${messageOf(err)}`, { peer: ch.peer, retryable: true, cause: err })
    } finally {
      clear()
    }
    if (!this.running) {
      stream.abort(new Error('the block client stopped'))
      throw new BlocksRequestError('the block client stopped', { peer: ch.peer, retryable: false })
    }
    ch.stream = stream
    ch.partial = undefined
    this.stats.streamsOpened++
    log('opened a blocks stream to %s', ch.peer)
    void this.readReplies(ch, stream)
    return stream
  }

  /** Read the replies on an outbound stream until it ends or fails. */
  private async readReplies (ch: Channel, stream: Stream): Promise<void> {
    const frameBytes = maxFrameBytes(this.opts)
    // The byte reader buffers what arrives between reads: one message of the muxer (regression: a
    // 16 MiB yamux frame overflowed a 4 MiB buffer under a burst of puts) and a frame of ours.
    const lp = lpStream(stream, { maxDataLength: frameBytes, maxBufferSize: MUXER_MESSAGE_BYTES + 2 * frameBytes })
    try {
      while (true) {
        const buf = await lp.read({ signal: this.shutdown.signal })
        if (ch.stream !== stream) return
        this.stats.bytesReceived += buf.byteLength + varintLength(buf.byteLength)
        this.stats.messagesReceived++
        const msg = decodeMessage(buf, this.opts)
        if (ch.partial != null) {
          ch.partial.add(msg)
          if (ch.partial.complete) {
            const { head } = ch.partial
            const data = ch.partial.bytes()
            ch.partial = undefined
            this.gotBlock(ch, head.id, data)
          }
          continue
        }
        const handler = this.handlers[msg.t] as ((ch: Channel, msg: Message) => void) | undefined
        if (handler == null) {
          throw new InvalidMessageError(msg.t === 'chunk' ? `a chunk of ${msg.id} came with no block open` : `a ${msg.t} message is not a reply`)
        }
        handler(ch, msg)
      }
    } catch (err: any) {
      if (ch.stream !== stream) return
      if (MALFORMED.has(err?.name)) {
        this.stats.malformedMessages++
        log('closing blocks stream to %s: %s', ch.peer, messageOf(err))
      }
      const cause = err?.name === 'UnexpectedEOFError' ? new Error('the peer closed the stream', { cause: err }) : err
      this.fail(ch, cause, stream)
    }
  }

  /** The request `id`, answered by a `t` message: it must be in flight and of kind `kind`. */
  private take (ch: Channel, id: number, t: Message['t'], kind?: Kind): Request {
    const req = ch.inFlight.get(id)
    if (req == null) throw new InvalidMessageError(`${t} for request ${id}, which is not in flight`)
    if (kind != null && req.kind !== kind) throw new InvalidMessageError(`${t} for request ${id}, a ${req.kind}`)
    ch.inFlight.delete(id)
    clearTimeout(req.timer)
    ch.putBytes -= req.bytes
    return req
  }

  /** After an answer: the window has room, and the stream may have gone idle. */
  private answered (ch: Channel): void {
    this.pump(ch)
    this.armIdle(ch)
  }

  private handleOk (ch: Channel, msg: OkMessage): void {
    const req = this.take(ch, msg.id, msg.t, 'put')
    this.stats.blocksAcked++
    settle(req, req.cid)
    this.answered(ch)
  }

  private handleError (ch: Channel, msg: ErrorMessage): void {
    const req = this.take(ch, msg.id, msg.t)
    this.stats.errorReplies++
    log('%s refused a %s of %s: %s', ch.peer, req.kind, req.cid, msg.error)
    settle(req, undefined, new BlocksRequestError(`${ch.peer} refused a ${req.kind} of ${req.cid}: ${msg.error}`, { peer: ch.peer, retryable: msg.retry }))
    this.answered(ch)
  }

  private handleHave (ch: Channel, msg: HaveMessage): void {
    const req = ch.inFlight.get(msg.id)
    const n = req?.cids?.length
    if (n !== undefined && msg.have.length !== n) throw new InvalidMessageError(`have for request ${msg.id} holds ${msg.have.length} answers for ${n} CIDs`)
    settle(this.take(ch, msg.id, msg.t, 'has'), msg.have)
    this.answered(ch)
  }

  private handleMissing (ch: Channel, msg: MissingMessage): void {
    const req = this.take(ch, msg.id, msg.t, 'get')
    this.stats.blocksMissing++
    settle(req, undefined)
    this.answered(ch)
  }

  private handleBlock (ch: Channel, msg: BlockMessage): void {
    const req = ch.inFlight.get(msg.id)
    if (req == null || req.kind !== 'get') throw new InvalidMessageError(`block for request ${msg.id}, which is not a get in flight`)
    if (msg.size !== undefined && msg.size > msg.data.byteLength) {
      ch.partial = new Assembly(msg, msg.size)
      return
    }
    // A copy: the decoded bytes are a view of a frame that may hold other data.
    this.gotBlock(ch, msg.id, Buffer.from(msg.data))
  }

  private gotBlock (ch: Channel, id: number, data: Uint8Array): void {
    const req = this.take(ch, id, 'block', 'get')
    if (cidOf(data) !== req.cid) {
      this.stats.mismatches++
      log('%s answered a get of %s with %d bytes that do not match it', ch.peer, req.cid, data.byteLength)
      settle(req, undefined, new BlockMismatchError(`${ch.peer} sent ${data.byteLength} bytes that do not match ${req.cid}`, { peer: ch.peer, cid: req.cid }))
    } else {
      this.stats.blocksReceived++
      this.stats.blockBytesReceived += data.byteLength
      settle(req, data)
    }
    this.answered(ch)
  }

  /** Close an outbound stream that has carried nothing for `idleTimeout`, before the peer times it out. */
  private armIdle (ch: Channel): void {
    if (ch.stream == null || ch.busy() || ch.idleTimer != null) return
    ch.idleTimer = setTimeout(() => {
      ch.idleTimer = undefined
      const stream = ch.stream
      if (stream == null || ch.busy() || ch.writing) return
      ch.stream = undefined
      if (this.channels.get(ch.peer) === ch) this.channels.delete(ch.peer)
      trace('closing idle blocks stream to %s', ch.peer)
      stream.close({ signal: AbortSignal.timeout(CLOSE_TIMEOUT) }).catch((err: Error) => { stream.abort(err) })
    }, this.opts.idleTimeout)
    ch.idleTimer.unref()
  }

  /**
   * The stream of `ch` failed (or the client stops): reject every request waiting on this peer and
   * forget the stream, so the next request opens a new one. A failure of a stream that is no
   * longer the channel's (`stream` given and replaced) is old news and ignored.
   */
  private fail (ch: Channel, err: unknown, stream?: Stream): void {
    if (stream != null && stream !== ch.stream) return
    const e = (err as Error)?.name === 'BlocksRequestError'
      ? err as BlocksRequestError
      : new BlocksRequestError(`blocks stream to ${ch.peer} failed: ${messageOf(err)}`, { peer: ch.peer, retryable: true, cause: err })
    const s = ch.stream
    ch.stream = undefined
    ch.partial = undefined
    if (this.channels.get(ch.peer) === ch) this.channels.delete(ch.peer)
    if (s != null && s.status === 'open') s.abort(e)
    if (ch.idleTimer != null) clearTimeout(ch.idleTimer)
    ch.idleTimer = undefined
    const requests = [...ch.inFlight.values(), ...ch.puts, ...ch.others]
    ch.inFlight.clear()
    ch.puts.length = 0
    ch.others.length = 0
    ch.putBytes = 0
    let failed = 0
    for (const req of requests) {
      clearTimeout(req.timer)
      if (!req.settled) failed++
      settle(req, undefined, e)
    }
    this.stats.requestsFailed += failed
    if (failed > 0) log('%d requests to %s failed: %s', failed, ch.peer, e.message)
    else if (s != null) trace('blocks stream to %s ended: %s', ch.peer, e.message)
  }
}

/** Settle a request once: resolve with `value`, or reject with `err`. */
function settle (req: Request, value: unknown, err?: Error): void {
  if (req.settled) return
  req.settled = true
  req.cleanup()
  if (err != null) req.reject(err)
  else req.resolve(value)
}

function checkCid (cid: unknown, what: string): void {
  if (!isCidString(cid)) throw new InvalidBlockRequestError(`${what} must be a CID string of 1 to ${MAX_CID_LENGTH} printable ASCII characters`)
}

/**
 * `/shoal/blocks/1.0.0`, the serving end: answers put, has and get from the peer's block store.
 *
 * One loop per inbound stream reads requests under an inactivity timeout, validates them, and runs
 * each one without waiting for the previous one, up to `window` at a time; replies go out in the
 * order the requests finish, each matched by its id. A put is answered `ok` only once the block
 * store's put resolved (the block is durable here); its bytes are checked against the CID first,
 * and a mismatch is refused and never stored. A malformed message closes that stream; the peer
 * goes on.
 *
 * Memory per stream is bounded: requests beyond `window`, or puts past `maxPendingBytes` of data
 * not yet answered, stop the reading (the muxer stops granting the sender window); blocks read for
 * gets wait for room in a budget of `maxPendingBytes` (one being read counts as `maxBlockBytes`)
 * and leave it once written. An honest client keeps within both limits itself, so pausing is only
 * ever felt by one that doesn't.
 */
import '../../node/polyfills.js'
import { setMaxListeners } from 'node:events'
import { lpStream } from '@libp2p/utils'
import debug from 'debug'
import { second } from '../../node/constants.js'
import { ConfigError } from '../../node/errors.js'
import { cidOf } from '../../node/blocks.js'
import { blockFrames, decodeMessage, encodeFrame, maxFrameBytes, varintLength } from './codec.js'
import { DEFAULT_MAX_INBOUND_STREAMS, DEFAULT_READ_TIMEOUT, MAX_ERROR_LENGTH, MUXER_MESSAGE_BYTES, PROTOCOL } from './constants.js'
import { InvalidMessageError } from './errors.js'
import { Assembly } from './messages.js'
import { CLOSE_TIMEOUT, MALFORMED, asError, integer, messageOf, resolveLimits, timeoutSignal, untilAborted } from './options.js'
import type { GetMessage, HasMessage, Message, PutMessage, ReplyMessage } from './messages.js'
import type { BlocksLimitsInit, Limits } from './options.js'
import type { BlockStore } from '../../node/blocks.js'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'

const log = debug('shoal:blocks')
const trace = debug('shoal:blocks:trace')

export interface BlockServiceComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle'>
}

export interface BlockServiceInit extends BlocksLimitsInit {
  /** Where blocks are stored and read. `put` must resolve only once the block is durable. */
  store: Pick<BlockStore, 'put' | 'get' | 'has'>
  /**
   * Milliseconds an inbound stream may make no progress (no frame in or out, no store operation
   * running) before it is closed. Keep it above the clients' `idleTimeout`. @default 60000
   */
  readTimeout?: number
  /** Inbound streams of this protocol per connection. @default 4 */
  maxInboundStreams?: number
}

export interface BlockServiceStats {
  /** Bytes of every frame read and written, length prefixes included. */
  bytesReceived: number
  bytesSent: number
  messagesReceived: number
  messagesSent: number
  /** Puts received whole. */
  blocksReceived: number
  /** Block bytes of the puts received whole. */
  blockBytesReceived: number
  /** Puts stored and acked. */
  blocksStored: number
  /** Puts whose bytes did not match their CID: refused, not stored. */
  blocksRefused: number
  /** Puts the store failed. */
  putErrors: number
  hasRequests: number
  cidsChecked: number
  /** Gets answered with the block. */
  blocksServed: number
  blockBytesSent: number
  /** Gets answered `missing`. */
  blocksMissing: number
  /** Gets the store failed (a corrupt copy, a read error). */
  getErrors: number
  errorsSent: number
  streamsInbound: number
  /** Streams closed because a peer sent something that breaks the protocol. */
  malformedMessages: number
}

interface Options extends Limits {
  readTimeout: number
  maxInboundStreams: number
}

function resolveOptions (init: BlockServiceInit): Options {
  const store = init?.store
  if (store == null || typeof store.put !== 'function' || typeof store.get !== 'function' || typeof store.has !== 'function') {
    throw new ConfigError('store must be a block store with put, get and has')
  }
  return {
    ...resolveLimits(init),
    readTimeout: integer('readTimeout', init.readTimeout, DEFAULT_READ_TIMEOUT, 1, 3600 * second, ' ms'),
    maxInboundStreams: integer('maxInboundStreams', init.maxInboundStreams, DEFAULT_MAX_INBOUND_STREAMS, 1, 1024, ' streams')
  }
}

/** One inbound stream being served. */
interface Inbound {
  readonly stream: Stream
  readonly from: string
  /** Request ids read and not yet answered (a put counts from its head). */
  readonly pending: Set<number>
  /** Put bytes received and not yet answered. */
  putBytes: number
  /** Bytes of blocks read (or being read, at `maxBlockBytes` each) for gets and not yet written. */
  getBytes: number
  /** Store operations running: the stream is not idle while we are the slow side. */
  working: number
  /** The put whose chunks are arriving. */
  partial: Assembly<PutMessage> | undefined
  /** Resolved when a request is answered or block bytes are released. */
  wake: { promise: Promise<void>, resolve: () => void } | undefined
  /** Aborted by the inactivity timer, the stream's end, or stop(). */
  readonly controller: AbortController
  readonly timer: ReturnType<typeof setTimeout>
  /** Replies are written one after the other, each waiting for 'drain' when needed. */
  writes: Promise<void>
}

export class BlockService {
  readonly stats: BlockServiceStats = {
    bytesReceived: 0,
    bytesSent: 0,
    messagesReceived: 0,
    messagesSent: 0,
    blocksReceived: 0,
    blockBytesReceived: 0,
    blocksStored: 0,
    blocksRefused: 0,
    putErrors: 0,
    hasRequests: 0,
    cidsChecked: 0,
    blocksServed: 0,
    blockBytesSent: 0,
    blocksMissing: 0,
    getErrors: 0,
    errorsSent: 0,
    streamsInbound: 0,
    malformedMessages: 0
  }

  private readonly opts: Options
  private readonly store: BlockServiceInit['store']
  private readonly inbound = new Set<Inbound>()
  /** Puts being stored, by CID: a second put of the same block waits for the first, not acked before it. */
  private readonly storing = new Map<string, Promise<void>>()
  private running = false

  /** Handlers of the requests, by message type. */
  private readonly handlers: { [T in Message['t']]?: (s: Inbound, msg: Extract<Message, { t: T }>) => void } = {
    put: (s, msg) => { this.handlePut(s, msg) },
    has: (s, msg) => { this.handleHas(s, msg) },
    get: (s, msg) => { this.handleGet(s, msg) }
  }

  constructor (private readonly components: BlockServiceComponents, init: BlockServiceInit) {
    this.opts = resolveOptions(init)
    this.store = init.store
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
      const err = new Error('the block service stopped')
      s.controller.abort(err)
      s.stream.abort(err)
    }
    try {
      await this.components.libp2p.unhandle(PROTOCOL)
    } catch (err) {
      log('unhandle failed: %s', messageOf(err))
    }
  }

  private onStream (stream: Stream, connection: Connection): void {
    if (!this.running) {
      stream.abort(new Error('the block service is not running'))
      return
    }
    void this.serve(stream, connection.remotePeer.toString())
  }

  private async serve (stream: Stream, from: string): Promise<void> {
    const controller = new AbortController()
    // Every request waiting for room listens on it: at most a window of them, and the reader.
    setMaxListeners(this.opts.window + 16, controller.signal)
    const s: Inbound = {
      stream,
      from,
      pending: new Set(),
      putBytes: 0,
      getBytes: 0,
      working: 0,
      partial: undefined,
      wake: undefined,
      controller,
      timer: setTimeout(() => {
        // Our own store being slow is not the peer's silence.
        if (s.working > 0) s.timer.refresh()
        else controller.abort(new Error(`no progress on the stream from ${from} for ${this.opts.readTimeout} ms`))
      }, this.opts.readTimeout),
      writes: Promise.resolve()
    }
    // A stream that dies (reset, connection lost, buffer overflow) stops what waits on it; a clean
    // close is our own, at the end.
    const onClose = (evt: Event): void => {
      const error = (evt as Event & { error?: Error }).error
      if (error != null && !controller.signal.aborted) controller.abort(error)
    }
    stream.addEventListener('close', onClose)
    this.inbound.add(s)
    this.stats.streamsInbound++
    const frameBytes = maxFrameBytes(this.opts)
    // The byte reader buffers what arrives between reads: one message of the muxer (regression: a
    // 16 MiB yamux frame overflowed a 4 MiB buffer under a burst of puts) and a frame of ours.
    const lp = lpStream(stream, { maxDataLength: frameBytes, maxBufferSize: MUXER_MESSAGE_BYTES + 2 * frameBytes })
    try {
      while (true) {
        if (s.partial == null && !this.hasRoom(s)) {
          // A sender past our window or byte budget (an honest one never is: it counts the replies
          // we already sent). Pausing stops the muxer's window updates, so it has to wait.
          trace('pausing the stream from %s: %d requests and %d put bytes pending', from, s.pending.size, s.putBytes)
          if (stream.readStatus === 'readable') stream.pause()
          try {
            while (!this.hasRoom(s)) await this.nextWake(s)
          } finally {
            if (stream.readStatus === 'paused') stream.resume()
          }
        }
        let buf
        try {
          buf = await lp.read({ signal: controller.signal })
        } catch (err: any) {
          // The sender closed its end (a clean end surfaces as an unexpected EOF of the next length prefix).
          if (err?.name === 'UnexpectedEOFError' && !controller.signal.aborted) break
          throw err
        }
        s.timer.refresh()
        this.stats.bytesReceived += buf.byteLength + varintLength(buf.byteLength)
        this.stats.messagesReceived++
        const msg = decodeMessage(buf, this.opts)
        if (s.partial != null) {
          s.putBytes += s.partial.add(msg)
          if (s.partial.complete) {
            const { head } = s.partial
            const data = s.partial.bytes()
            s.partial = undefined
            void this.storeBlock(s, head.id, head.cid, data)
          }
          continue
        }
        const handler = this.handlers[msg.t] as ((s: Inbound, msg: Message) => void) | undefined
        if (handler == null) {
          throw new InvalidMessageError(msg.t === 'chunk' ? `a chunk of ${msg.id} came with no block open` : `a ${msg.t} message is not a request`)
        }
        handler(s, msg)
      }
      if (s.partial != null) {
        log('the stream from %s ended %d bytes into a block of %d; dropped', from, s.partial.received, s.partial.size)
        s.pending.delete(s.partial.head.id)
        s.putBytes -= s.partial.received
        s.partial = undefined
      }
      // Answer what the sender is still waiting for, then close our end too.
      while (s.pending.size > 0) await this.nextWake(s)
      await s.writes
      const { signal, clear } = timeoutSignal(controller.signal, CLOSE_TIMEOUT)
      try {
        await stream.close({ signal })
      } finally {
        clear()
      }
    } catch (err: any) {
      const reason = controller.signal.aborted ? controller.signal.reason : err
      if (MALFORMED.has(err?.name)) {
        this.stats.malformedMessages++
        log('closing blocks stream from %s: %s', from, messageOf(err))
      } else {
        log('blocks stream from %s failed: %s', from, messageOf(reason))
      }
      if (!controller.signal.aborted) controller.abort(reason)
      stream.abort(asError(reason))
    } finally {
      clearTimeout(s.timer)
      stream.removeEventListener('close', onClose)
      this.inbound.delete(s)
    }
  }

  private hasRoom (s: Inbound): boolean {
    return s.pending.size < this.opts.window && s.putBytes < this.opts.maxPendingBytes
  }

  private async nextWake (s: Inbound): Promise<void> {
    s.wake ??= Promise.withResolvers<void>()
    await untilAborted(s.wake.promise, s.controller.signal)
  }

  private wakeUp (s: Inbound): void {
    const w = s.wake
    s.wake = undefined
    w?.resolve()
  }

  private begin (s: Inbound, id: number): void {
    if (s.pending.has(id)) throw new InvalidMessageError(`request ${id} is already in flight`)
    s.pending.add(id)
  }

  // ---- put ----

  private handlePut (s: Inbound, msg: PutMessage): void {
    this.begin(s, msg.id)
    s.putBytes += msg.data.byteLength
    if (msg.size !== undefined && msg.size > msg.data.byteLength) {
      s.partial = new Assembly(msg, msg.size)
      return
    }
    void this.storeBlock(s, msg.id, msg.cid, msg.data)
  }

  /** Check a whole put against its CID, store it, answer when the store has it. */
  private async storeBlock (s: Inbound, id: number, cid: string, data: Uint8Array): Promise<void> {
    this.stats.blocksReceived++
    this.stats.blockBytesReceived += data.byteLength
    let reply: ReplyMessage
    // Hashing 10 MiB takes milliseconds on this thread; a block of 30 KB, microseconds.
    if (cidOf(data) !== cid) {
      this.stats.blocksRefused++
      log('refused a put from %s: its %d bytes do not match %s', s.from, data.byteLength, cid)
      reply = { t: 'error', id, error: `the ${data.byteLength} bytes sent do not match ${cid}`, retry: false }
    } else {
      s.working++
      try {
        await this.storeOnce(cid, data)
        this.stats.blocksStored++
        trace('stored %s (%d bytes) from %s', cid, data.byteLength, s.from)
        reply = { t: 'ok', id }
      } catch (err) {
        this.stats.putErrors++
        log('storing %s from %s failed: %s', cid, s.from, messageOf(err))
        reply = { t: 'error', id, error: `cannot store ${cid}: ${messageOf(err)}`.slice(0, MAX_ERROR_LENGTH), retry: true }
      } finally {
        s.working--
      }
    }
    s.putBytes -= data.byteLength
    this.reply(s, reply)
  }

  private async storeOnce (cid: string, data: Uint8Array): Promise<void> {
    let p = this.storing.get(cid)
    if (p == null) {
      p = (async () => {
        try {
          const stored = await this.store.put(data)
          if (stored !== cid) throw new Error(`the store filed the block under ${String(stored)}`)
        } finally {
          this.storing.delete(cid)
        }
      })()
      this.storing.set(cid, p)
    }
    await p
  }

  // ---- has ----

  private handleHas (s: Inbound, msg: HasMessage): void {
    this.begin(s, msg.id)
    this.stats.hasRequests++
    this.stats.cidsChecked += msg.cids.length
    void this.check(s, msg)
  }

  private async check (s: Inbound, msg: HasMessage): Promise<void> {
    let reply: ReplyMessage
    s.working++
    try {
      const have = await Promise.all(msg.cids.map(async cid => await this.store.has(cid)))
      reply = { t: 'have', id: msg.id, have: have.map(h => h === true) }
    } catch (err) {
      log('has from %s failed: %s', s.from, messageOf(err))
      reply = { t: 'error', id: msg.id, error: `cannot check: ${messageOf(err)}`.slice(0, MAX_ERROR_LENGTH), retry: true }
    } finally {
      s.working--
    }
    this.reply(s, reply)
  }

  // ---- get ----

  private handleGet (s: Inbound, msg: GetMessage): void {
    this.begin(s, msg.id)
    void this.serveBlock(s, msg).catch((err: unknown) => {
      // Only the stream's end gets here (waiting for room was aborted): nobody is left to answer.
      trace('get %d from %s dropped: %s', msg.id, s.from, messageOf(err))
    })
  }

  private async serveBlock (s: Inbound, msg: GetMessage): Promise<void> {
    const { maxBlockBytes, maxPendingBytes } = this.opts
    // A block being read may be as large as any: reserve that much, then keep what it really is.
    while (s.getBytes > 0 && s.getBytes + maxBlockBytes > maxPendingBytes) await this.nextWake(s)
    s.getBytes += maxBlockBytes
    let held = maxBlockBytes
    const release = (): void => {
      s.getBytes -= held
      held = 0
      this.wakeUp(s)
    }
    let data: Uint8Array | undefined
    let reply: ReplyMessage | undefined
    s.working++
    try {
      data = await this.store.get(msg.cid)
    } catch (err: any) {
      this.stats.getErrors++
      log('reading %s for %s failed: %s', msg.cid, s.from, messageOf(err))
      // A corrupt copy here says nothing of the other replicas: asking them may succeed.
      reply = { t: 'error', id: msg.id, error: `cannot read ${msg.cid}: ${messageOf(err)}`.slice(0, MAX_ERROR_LENGTH), retry: true }
    } finally {
      s.working--
    }
    if (reply == null && data == null) {
      this.stats.blocksMissing++
      reply = { t: 'missing', id: msg.id }
    } else if (reply == null && data != null && data.byteLength > maxBlockBytes) {
      this.stats.getErrors++
      reply = { t: 'error', id: msg.id, error: `${msg.cid} holds ${data.byteLength} bytes, more than maxBlockBytes (${maxBlockBytes})`, retry: true }
    }
    if (reply != null || data == null) {
      release()
      if (reply != null) this.reply(s, reply)
      return
    }
    s.getBytes -= held - data.byteLength
    held = data.byteLength
    this.stats.blocksServed++
    this.stats.blockBytesSent += data.byteLength
    this.answer(s, msg.id, blockFrames({ t: 'block', id: msg.id }, data, this.opts.maxChunkBytes), release)
  }

  // ---- replies ----

  /** Queue a one-frame reply. */
  private reply (s: Inbound, msg: ReplyMessage): void {
    if (msg.t === 'error') this.stats.errorsSent++
    this.answer(s, msg.id, [encodeFrame(msg)])
  }

  /** Queue the frames answering request `id`; `done` runs once they are written (or can't be). */
  private answer (s: Inbound, id: number, frames: Iterable<Uint8Array>, done?: () => void): void {
    s.pending.delete(id)
    s.writes = s.writes.then(async () => {
      try {
        const { stream } = s
        for (const frame of frames) {
          if (stream.writeStatus !== 'writable') return
          this.stats.bytesSent += frame.byteLength
          this.stats.messagesSent++
          s.timer.refresh()
          if (!stream.send(frame)) await stream.onDrain({ signal: s.controller.signal })
        }
      } finally {
        done?.()
      }
    }).catch((err: unknown) => {
      if (!s.controller.signal.aborted) log('cannot reply to %s: %s', s.from, messageOf(err))
      s.stream.abort(asError(err))
    })
    this.wakeUp(s)
  }
}

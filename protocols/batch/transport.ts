/**
 * The machinery shared by the batch protocols (`/shoal/links/1.0.0`, `/shoal/meta/1.0.0`): items
 * sent to a peer in batches over one long-lived stream, one ack per batch once the receiver has
 * made them durable. A protocol subclasses `BatchTransport` and supplies its codec, its batch
 * builder, its validation and what it does with a received batch; the stream rules live here once.
 *
 * Sender: items to one peer gather in a batch (one open batch per key, e.g. the links' hop count)
 * that leaves when it is full (items or bytes) or `flushDelay` after it opened. Each peer gets one
 * long-lived outbound stream, opened on first use, on which up to `window` batches are in flight;
 * acks are matched by batch id. With the window full, batches wait here, so a slow receiver slows
 * its senders. A send resolves once every batch holding its items is acked and rejects with the
 * protocol's send error on a nack, a dead stream or an ack timeout; a dead stream fails everything
 * waiting on that peer, and the next send opens a new stream. An outbound stream idle for
 * `idleTimeout` is closed before the receiver's read timeout would.
 *
 * Receiver: one loop per inbound stream reads messages under a per-message inactivity timeout,
 * validates them, dispatches each by type, and answers each batch with an ack once the protocol's
 * `deliver` resolves (a nack with `retry` when it rejects). Batches are delivered without waiting
 * for the previous one, or one after the other in arrival order (`serial`). At most `window`
 * batches per stream are held; a sender past it is paused. A malformed message closes that stream
 * with a log line; the peer goes on.
 */
import '../../node/polyfills.js'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { MiB } from '../../node/constants.js'
import { varintLength } from './frame.js'
import { CLOSE_TIMEOUT, MALFORMED } from './options.js'
import type { Bytes } from './codec.js'
import type { BatchOptions } from './options.js'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { Debugger } from 'debug'

export interface BatchTransportComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
}

/** The receiver has the batch `id` on disk; a protocol may add fields (`Fields`). */
export type AckOf<Fields extends object> = { t: 'ack', id: number } & Fields
/** The batch `id` was not taken; `retry` says whether sending it again (maybe elsewhere) may succeed. */
export interface Nack { t: 'nack', id: number, error: string, retry: boolean }

/** A batch request on the wire: its type tag and its id. */
export interface BatchRequest { t: string, id: number }

/** Gathers the items of one batch and keeps its encoded size in check. */
export interface Builder<Item> {
  /** Items held. */
  readonly count: number
  /**
   * Add `item` unless the batch would then be larger than `maxBytes`; the first item is always
   * taken (the protocol makes sure one item fits). Returns whether it was added.
   */
  tryAdd: (item: Item, maxBytes: number) => boolean
}

/** Counters every batch transport keeps; a protocol adds its own (items sent, received…). */
export interface BatchStats {
  /** Bytes of every frame written (batches and acks), length prefixes included. */
  bytesSent: number
  /** Frames written (batches and acks). */
  messagesSent: number
  batchesSent: number
  batchesAcked: number
  batchesNacked: number
  /** Batches rejected for a stream error, ack timeout, failed dial or stop. */
  batchesFailed: number
  bytesReceived: number
  messagesReceived: number
  acksSent: number
  nacksSent: number
  streamsOpened: number
  streamsInbound: number
  /** Streams closed because a peer sent something that breaks the protocol. */
  malformedMessages: number
}

/** The zeroed shared counters, for a protocol's stats object. */
export function batchStats (): BatchStats {
  return {
    bytesSent: 0,
    messagesSent: 0,
    batchesSent: 0,
    batchesAcked: 0,
    batchesNacked: 0,
    batchesFailed: 0,
    bytesReceived: 0,
    messagesReceived: 0,
    acksSent: 0,
    nacksSent: 0,
    streamsOpened: 0,
    streamsInbound: 0,
    malformedMessages: 0
  }
}

/** The error a protocol rejects its sends with: it names the peer and says whether to retry. */
export type SendError = Error & { readonly peer: string, readonly retryable: boolean }

/** What names and makes the errors and log lines of one protocol. */
export interface BatchProtocol {
  /** Versioned protocol id. */
  protocol: string
  /** The protocol's short name in messages: `the links transport stopped`, `a links stream to …`. */
  name: string
  /** What a batch holds, plural, in messages: `a batch of 3 links`. */
  items: string
  /** The receiver's callback, in log lines: `onLinks rejected batch 4`. */
  handler: string
  /** Bytes of one ack or nack (the outbound stream's `maxDataLength`). */
  maxReplyBytes: number
  /** Characters of a nack's error text. */
  maxErrorLength: number
  /** Receive batches one after the other, in arrival order (else concurrently, up to the window). */
  serial: boolean
  log: Debugger
  trace: Debugger
  /** The `name` of the protocol's send error: an error of that name is passed on as it is. */
  sendErrorName: string
  /** The protocol's send error (`LinksSendError`…). */
  sendError: (message: string, options: { peer: string, retryable: boolean, cause?: unknown }) => SendError
  /** The protocol's `InvalidMessageError`. */
  invalidMessage: (message: string) => Error
  /** The error of a batch that encoded past the byte cap (a bug of the builder; never retryable). */
  oversize: (message: string) => Error
}

/** One send: settles when each batch holding its items is acked, or at the first failure. */
interface Waiter {
  remaining: number
  settled: boolean
  resolve: () => void
  reject: (err: Error) => void
}

class Batch<Key, B> {
  readonly waiters: Waiter[] = []
  lastWaiter: Waiter | undefined
  timer: ReturnType<typeof setTimeout> | undefined

  constructor (readonly key: Key, readonly builder: B) {}

  acked (): void {
    for (const w of this.waiters) {
      if (!w.settled && --w.remaining === 0) {
        w.settled = true
        w.resolve()
      }
    }
  }

  failed (err: Error): void {
    for (const w of this.waiters) {
      if (!w.settled) {
        w.settled = true
        w.reject(err)
      }
    }
  }
}

/** Everything on its way to one peer. */
class Channel<Key, B> {
  stream: Stream | undefined
  writing = false
  nextId = 0
  /** Sent, waiting for their ack, by id: at most `window`. */
  readonly inFlight = new Map<number, Batch<Key, B>>()
  /** Sealed, waiting for a window slot. */
  readonly queue: Array<Batch<Key, B>> = []
  /** Still filling, by key. */
  readonly open = new Map<Key, Batch<Key, B>>()
  flushTimer: ReturnType<typeof setTimeout> | undefined
  idleTimer: ReturnType<typeof setTimeout> | undefined

  constructor (readonly peer: string, readonly peerId: PeerId) {}

  busy (): boolean {
    return this.inFlight.size > 0 || this.queue.length > 0 || this.open.size > 0
  }
}

/** One inbound stream being served. */
interface Inbound {
  readonly stream: Stream
  readonly from: string
  /** Batch ids handed over (or queued to be, when serial), not yet answered. */
  readonly pending: Set<number>
  /** Resolved when a pending batch is answered. */
  slot: { promise: Promise<void>, resolve: () => void } | undefined
  /** Aborted by the inactivity timer or by stop(). */
  readonly controller: AbortController
  readonly timer: ReturnType<typeof setTimeout>
  /** Replies are written one after the other, each waiting for 'drain' when needed. */
  writes: Promise<void>
  /** The last delivery, when batches are delivered one after the other. */
  deliveries: Promise<void>
}

/** Wait for `promise`, or throw the signal's reason once it aborts. */
export async function untilAborted<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  let onAbort: (() => void) | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => {
      onAbort = () => { reject(signal.reason) }
      signal.addEventListener('abort', onAbort, { once: true })
    })])
  } finally {
    if (onAbort != null) signal.removeEventListener('abort', onAbort)
  }
}

/**
 * A signal that aborts with `parent` or after `ms`; `clear()` drops the timer and the listener on
 * the long-lived `parent` (AbortSignal.any would keep a reference on it per call).
 */
export function timeoutSignal (parent: AbortSignal, ms: number): { signal: AbortSignal, clear: () => void } {
  const controller = new AbortController()
  const onAbort = (): void => { controller.abort(parent.reason) }
  if (parent.aborted) onAbort()
  else parent.addEventListener('abort', onAbort, { once: true })
  const timer = setTimeout(() => { controller.abort(new Error(`timed out after ${ms} ms`)) }, ms)
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer)
      parent.removeEventListener('abort', onAbort)
    }
  }
}

export function messageOf (err: unknown): string {
  return String((err as Error)?.message ?? err)
}

/**
 * A batch transport. Type parameters: `Item` what a send carries, `Key` what separates open
 * batches to one peer, `B` the batch builder, `Req` the decoded batch message, `AckFields` what
 * an ack carries beside `t` and `id`, `S` the stats object.
 */
export abstract class BatchTransport<Item, Key, B extends Builder<Item>, Req extends BatchRequest, AckFields extends object, S extends BatchStats> {
  readonly stats: S
  private readonly channels = new Map<string, Channel<Key, B>>()
  private readonly inbound = new Set<Inbound>()
  private shutdown = new AbortController()
  private running = false
  private readonly options: BatchOptions

  /** Handlers of what arrives on an inbound stream, by message type. */
  private readonly requestHandlers: Record<string, ((s: Inbound, msg: Req) => void) | undefined>

  /** Handlers of what arrives on an outbound stream, by message type. */
  private readonly replyHandlers: Record<string, ((ch: Channel<Key, B>, msg: any) => void) | undefined> = {
    ack: (ch, msg: AckOf<AckFields>) => { this.handleAck(ch, msg) },
    nack: (ch, msg: Nack) => { this.handleNack(ch, msg) }
  }

  constructor (
    private readonly components: BatchTransportComponents,
    private readonly spec: BatchProtocol,
    options: BatchOptions,
    stats: S,
    /** The `t` of a batch message. */
    requestType: Req['t']
  ) {
    this.options = options
    this.stats = stats
    this.requestHandlers = Object.assign(Object.create(null), {
      [requestType]: (s: Inbound, msg: Req) => { this.handleRequest(s, msg) }
    })
  }

  // ---- what a protocol supplies ----

  /** A new, empty batch for items sent under `key`. */
  protected abstract newBatch (key: Key): B
  /** The frame (length prefix included) of batch `b` as message `id`. */
  protected abstract encodeBatch (b: B, id: number): Uint8Array
  /** The frame of an ack or nack. */
  protected abstract encodeReply (msg: AckOf<AckFields> | Nack): Uint8Array
  /** Decode and validate a message read on an inbound stream; throws `InvalidMessageError`. */
  protected abstract decodeRequest (buf: Bytes): { t: string }
  /** Decode and validate a message read on an outbound stream (an ack or a nack, if the peer is honest). */
  protected abstract decodeReply (buf: Bytes): { t: string }
  /** Batch `b` was written: count its items. */
  protected abstract batchSent (b: B): void
  /** The ack of batch `b` came: check what it says against the batch (throw `InvalidMessageError`) and count it. */
  protected abstract batchAcked (b: B, ack: AckOf<AckFields>): void
  /**
   * Hand a received batch over. Resolves, once its items are durable, with the fields of the
   * ack; a rejection is sent back as a nack with `retry: true`.
   */
  protected abstract deliver (from: string, msg: Req): Promise<AckFields>
  /** A batch to answer at once with a nack instead of delivering it, or `undefined` to deliver it. */
  protected refuse (_msg: Req): { error: string, retry: boolean } | undefined {
    return undefined
  }

  // ---- lifecycle ----

  async start (): Promise<void> {
    if (this.running) return
    this.shutdown = new AbortController()
    await this.components.libp2p.handle(this.spec.protocol, (stream, connection) => { this.onStream(stream, connection) }, {
      maxInboundStreams: this.options.maxInboundStreams,
      maxOutboundStreams: this.options.maxInboundStreams
    })
    this.running = true
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    const { name } = this.spec
    // Reject first, synchronously, so every pending send gets this error and not the echo of an
    // aborted stream.
    for (const ch of [...this.channels.values()]) {
      this.fail(ch, this.spec.sendError(`the ${name} transport stopped before ${ch.peer} acked`, { peer: ch.peer, retryable: false }))
    }
    this.channels.clear()
    for (const s of this.inbound) {
      s.controller.abort(new Error(`the ${name} transport stopped`))
      s.stream.abort(new Error(`the ${name} transport stopped`))
    }
    this.shutdown.abort(new Error(`the ${name} transport stopped`))
    try {
      await this.components.libp2p.unhandle(this.spec.protocol)
    } catch (err) {
      this.spec.log('unhandle failed: %s', messageOf(err))
    }
  }

  /**
   * Give up on `peer` now (it left the ring): every batch sent to it and not acked, or waiting,
   * fails as retryable, so its senders re-send to whoever owns the items now instead of waiting for
   * the ack timeout (a hung peer keeps its connection open and never answers).
   */
  abandon (peer: string, why: string): void {
    const ch = this.channels.get(peer)
    if (ch == null) return
    this.fail(ch, this.spec.sendError(`${this.spec.name} to ${peer}: ${why}`, { peer, retryable: true }))
  }

  /** Batches sent to `peer` and not yet acked (never more than `window`). */
  inFlight (peer: string): number {
    return this.channels.get(peer)?.inFlight.size ?? 0
  }

  /** Batches for `peer` waiting for a window slot, plus the ones filling. */
  queued (peer: string): number {
    const ch = this.channels.get(peer)
    return ch == null ? 0 : ch.queue.length + ch.open.size
  }

  // ---- sender ----

  /**
   * Send `items` to `peer` in batches under `key`. `check` runs first and throws for items the
   * protocol can't carry. Resolves once `peer` has acked every batch holding them.
   */
  protected sendItems (peer: string, items: Item[], key: Key, check: () => void): Promise<void> {
    if (!this.running) return Promise.reject(this.spec.sendError(`the ${this.spec.name} transport is not running; cannot send to ${peer}`, { peer, retryable: false }))
    let ch: Channel<Key, B>
    try {
      check()
      ch = this.channel(peer)
    } catch (err) {
      return Promise.reject(err)
    }
    if (items.length === 0) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { remaining: 0, settled: false, resolve, reject }
      for (const item of items) this.enqueue(ch, key, item, waiter)
      this.pump(ch)
    })
  }

  private channel (peer: string): Channel<Key, B> {
    let ch = this.channels.get(peer)
    if (ch == null) {
      let peerId: PeerId
      try {
        peerId = peerIdFromString(peer)
      } catch (err) {
        throw this.spec.sendError(`${JSON.stringify(peer)} is not a peer id`, { peer, retryable: false, cause: err })
      }
      ch = new Channel(peer, peerId)
      this.channels.set(peer, ch)
    }
    return ch
  }

  private enqueue (ch: Channel<Key, B>, key: Key, item: Item, waiter: Waiter): void {
    const { maxMessageBytes } = this.options
    let b = ch.open.get(key)
    if (b == null || !b.builder.tryAdd(item, maxMessageBytes)) {
      if (b != null) this.seal(ch, b)
      b = new Batch(key, this.newBatch(key))
      ch.open.set(key, b)
      b.builder.tryAdd(item, maxMessageBytes)
      if (ch.flushTimer == null) {
        ch.flushTimer = setTimeout(() => {
          ch.flushTimer = undefined
          for (const o of [...ch.open.values()]) this.seal(ch, o)
          this.pump(ch)
        }, this.options.flushDelay)
      }
    }
    if (b.lastWaiter !== waiter) {
      b.lastWaiter = waiter
      b.waiters.push(waiter)
      waiter.remaining++
    }
    if (b.builder.count >= this.options.maxBatchItems) this.seal(ch, b)
  }

  private seal (ch: Channel<Key, B>, b: Batch<Key, B>): void {
    ch.open.delete(b.key)
    ch.queue.push(b)
    if (ch.open.size === 0 && ch.flushTimer != null) {
      clearTimeout(ch.flushTimer)
      ch.flushTimer = undefined
    }
  }

  /** Start the writer of `ch` if it has batches and window room. */
  private pump (ch: Channel<Key, B>): void {
    if (ch.idleTimer != null) {
      clearTimeout(ch.idleTimer)
      ch.idleTimer = undefined
    }
    if (!ch.writing && this.running && ch.queue.length > 0 && ch.inFlight.size < this.options.window) {
      void this.write(ch)
    }
  }

  /** The writer: one per channel at a time, so frames go out in order and 'drain' is respected. */
  private async write (ch: Channel<Key, B>): Promise<void> {
    const { spec, options } = this
    ch.writing = true
    let stream: Stream | undefined
    try {
      while (this.running && ch.queue.length > 0 && ch.inFlight.size < options.window) {
        if (ch.stream == null) {
          stream = undefined
          stream = await this.openStream(ch)
        } else {
          stream = ch.stream
        }
        const batch = ch.queue.shift()
        if (batch == null) break
        const id = ch.nextId
        ch.nextId = (ch.nextId + 1) >>> 0
        const frame = this.encodeBatch(batch.builder, id)
        if (frame.byteLength > options.maxMessageBytes + varintLength(options.maxMessageBytes)) {
          // Can't happen while the builder's size bound holds; sending it would only get the stream closed.
          batch.failed(spec.oversize(`a batch encoded to ${frame.byteLength} bytes, more than maxMessageBytes (${options.maxMessageBytes})`))
          continue
        }
        ch.inFlight.set(id, batch)
        const s = stream
        batch.timer = setTimeout(() => {
          this.fail(ch, spec.sendError(`no ack from ${ch.peer} within ${options.ackTimeout} ms`, { peer: ch.peer, retryable: true }), s)
        }, options.ackTimeout)
        this.stats.bytesSent += frame.byteLength
        this.stats.messagesSent++
        this.stats.batchesSent++
        this.batchSent(batch.builder)
        spec.trace('batch %d to %s: %d %s, %d bytes', id, ch.peer, batch.builder.count, spec.items, frame.byteLength)
        if (!stream.send(frame)) await stream.onDrain({ signal: this.shutdown.signal })
      }
    } catch (err) {
      this.fail(ch, err, stream)
    } finally {
      ch.writing = false
    }
  }

  private async openStream (ch: Channel<Key, B>): Promise<Stream> {
    const { spec } = this
    // Bounded by the ack timeout: a send waits for one dial at most that long.
    const { signal, clear } = timeoutSignal(this.shutdown.signal, this.options.ackTimeout)
    let stream: Stream
    try {
      stream = await this.components.libp2p.dialProtocol(ch.peerId, spec.protocol, { signal })
    } catch (err) {
      throw spec.sendError(`cannot open a ${spec.name} stream to ${ch.peer}: ${messageOf(err)}`, { peer: ch.peer, retryable: true, cause: err })
    } finally {
      clear()
    }
    if (!this.running) {
      stream.abort(new Error(`the ${spec.name} transport stopped`))
      throw spec.sendError(`the ${spec.name} transport stopped`, { peer: ch.peer, retryable: false })
    }
    ch.stream = stream
    this.stats.streamsOpened++
    spec.log('opened a %s stream to %s', spec.name, ch.peer)
    void this.readReplies(ch, stream)
    return stream
  }

  /** Read acks and nacks from an outbound stream until it ends or fails. */
  private async readReplies (ch: Channel<Key, B>, stream: Stream): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: this.spec.maxReplyBytes })
    try {
      while (true) {
        const buf = await lp.read({ signal: this.shutdown.signal })
        if (ch.stream !== stream) return
        this.stats.bytesReceived += buf.byteLength + varintLength(buf.byteLength)
        this.stats.messagesReceived++
        const msg = this.decodeReply(buf)
        const handler = Object.hasOwn(this.replyHandlers, msg.t) ? this.replyHandlers[msg.t] : undefined
        if (handler == null) throw this.spec.invalidMessage(`a ${msg.t} message is not a reply`)
        handler(ch, msg)
      }
    } catch (err: any) {
      if (ch.stream !== stream) return
      if (MALFORMED.has(err?.name)) {
        this.stats.malformedMessages++
        this.spec.log('closing %s stream to %s: %s', this.spec.name, ch.peer, messageOf(err))
      }
      const cause = err?.name === 'UnexpectedEOFError' ? new Error('the peer closed the stream', { cause: err }) : err
      this.fail(ch, cause, stream)
    }
  }

  private handleAck (ch: Channel<Key, B>, msg: AckOf<AckFields>): void {
    const b = ch.inFlight.get(msg.id)
    if (b == null) throw this.spec.invalidMessage(`ack for batch ${msg.id}, which is not in flight`)
    this.batchAcked(b.builder, msg)
    ch.inFlight.delete(msg.id)
    clearTimeout(b.timer)
    this.stats.batchesAcked++
    b.acked()
    this.pump(ch)
    this.armIdle(ch)
  }

  private handleNack (ch: Channel<Key, B>, msg: Nack): void {
    const { spec } = this
    const b = ch.inFlight.get(msg.id)
    if (b == null) throw spec.invalidMessage(`nack for batch ${msg.id}, which is not in flight`)
    ch.inFlight.delete(msg.id)
    clearTimeout(b.timer)
    this.stats.batchesNacked++
    spec.log('%s refused batch %d (%d %s): %s', ch.peer, msg.id, b.builder.count, spec.items, msg.error)
    b.failed(spec.sendError(`${ch.peer} refused a batch of ${b.builder.count} ${spec.items}: ${msg.error}`, { peer: ch.peer, retryable: msg.retry }))
    this.pump(ch)
    this.armIdle(ch)
  }

  /** Close an outbound stream that has carried nothing for `idleTimeout`, before the receiver times it out. */
  private armIdle (ch: Channel<Key, B>): void {
    if (ch.stream == null || ch.busy() || ch.idleTimer != null) return
    ch.idleTimer = setTimeout(() => {
      ch.idleTimer = undefined
      const stream = ch.stream
      if (stream == null || ch.busy() || ch.writing) return
      ch.stream = undefined
      if (this.channels.get(ch.peer) === ch) this.channels.delete(ch.peer)
      this.spec.trace('closing idle %s stream to %s', this.spec.name, ch.peer)
      stream.close({ signal: AbortSignal.timeout(CLOSE_TIMEOUT) }).catch((err: Error) => { stream.abort(err) })
    }, this.options.idleTimeout)
    ch.idleTimer.unref()
  }

  /**
   * The stream of `ch` failed (or the transport stops): reject every batch waiting on this peer and
   * forget the stream, so the next send opens a new one. A failure of a stream that is no longer
   * the channel's (`stream` given and replaced) is old news and ignored.
   */
  private fail (ch: Channel<Key, B>, err: unknown, stream?: Stream): void {
    if (stream != null && stream !== ch.stream) return
    const { spec } = this
    const e = (err as Error)?.name === spec.sendErrorName
      ? err as SendError
      : spec.sendError(`${spec.name} stream to ${ch.peer} failed: ${messageOf(err)}`, { peer: ch.peer, retryable: true, cause: err })
    const s = ch.stream
    ch.stream = undefined
    if (this.channels.get(ch.peer) === ch) this.channels.delete(ch.peer)
    if (s != null && s.status === 'open') s.abort(e)
    if (ch.flushTimer != null) clearTimeout(ch.flushTimer)
    if (ch.idleTimer != null) clearTimeout(ch.idleTimer)
    ch.flushTimer = ch.idleTimer = undefined
    const batches = [...ch.inFlight.values(), ...ch.queue, ...ch.open.values()]
    ch.inFlight.clear()
    ch.queue.length = 0
    ch.open.clear()
    for (const b of batches) {
      clearTimeout(b.timer)
      b.failed(e)
    }
    if (batches.length > 0) {
      this.stats.batchesFailed += batches.length
      spec.log('%d batches failed: %s', batches.length, e.message)
    } else if (s != null) {
      spec.trace('%s stream to %s ended: %s', spec.name, ch.peer, e.message)
    }
  }

  // ---- receiver ----

  private onStream (stream: Stream, connection: Connection): void {
    if (!this.running) {
      stream.abort(new Error(`the ${this.spec.name} transport is not running`))
      return
    }
    void this.serve(stream, connection.remotePeer.toString())
  }

  private async serve (stream: Stream, from: string): Promise<void> {
    const { spec, options } = this
    const controller = new AbortController()
    const s: Inbound = {
      stream,
      from,
      pending: new Set(),
      slot: undefined,
      controller,
      timer: setTimeout(() => {
        controller.abort(new Error(`no message from ${from} for ${options.readTimeout} ms`))
      }, options.readTimeout),
      writes: Promise.resolve(),
      deliveries: Promise.resolve()
    }
    this.inbound.add(s)
    this.stats.streamsInbound++
    // The byte reader buffers what arrives between reads: room for a full message and the next one.
    const lp = lpStream(stream, { maxDataLength: options.maxMessageBytes, maxBufferSize: Math.max(4 * MiB, 2 * options.maxMessageBytes + 16) })
    try {
      while (true) {
        if (s.pending.size >= options.window) {
          // A sender past our window (an honest one never is: it counts acks we already sent).
          // Pausing stops the muxer's window updates, so it has to wait.
          if (stream.readStatus === 'readable') stream.pause()
          try {
            while (s.pending.size >= options.window) await this.nextSlot(s)
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
        const msg = this.decodeRequest(buf)
        const handler = Object.hasOwn(this.requestHandlers, msg.t) ? this.requestHandlers[msg.t] : undefined
        if (handler == null) throw spec.invalidMessage(`a ${msg.t} message is not a request`)
        handler(s, msg as Req)
      }
      // Answer what the sender is still waiting for, then close our end too.
      while (s.pending.size > 0) await this.nextSlot(s)
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
        spec.log('closing %s stream from %s: %s', spec.name, from, messageOf(err))
      } else {
        spec.log('%s stream from %s failed: %s', spec.name, from, messageOf(reason))
      }
      // Batches still waiting for a serial delivery are not handed over: their sender has failed them.
      if (!controller.signal.aborted) controller.abort(reason)
      stream.abort(reason instanceof Error ? reason : new Error(messageOf(reason)))
    } finally {
      clearTimeout(s.timer)
      this.inbound.delete(s)
    }
  }

  private async nextSlot (s: Inbound): Promise<void> {
    s.slot ??= Promise.withResolvers<void>()
    await untilAborted(s.slot.promise, s.controller.signal)
  }

  private handleRequest (s: Inbound, msg: Req): void {
    if (s.pending.has(msg.id)) throw this.spec.invalidMessage(`batch ${msg.id} is already in flight`)
    const refusal = this.refuse(msg)
    if (refusal != null) {
      this.reply(s, { t: 'nack', id: msg.id, error: refusal.error, retry: refusal.retry })
      return
    }
    s.pending.add(msg.id)
    if (this.spec.serial) {
      s.deliveries = s.deliveries.then(async () => {
        if (!s.controller.signal.aborted) await this.respond(s, msg)
      })
    } else {
      void this.respond(s, msg)
    }
  }

  /** Hand a batch over; ack when it resolves (the items are durable), nack when it rejects. */
  private async respond (s: Inbound, msg: Req): Promise<void> {
    const { id } = msg
    let reply: AckOf<AckFields> | Nack
    try {
      const fields = await this.deliver(s.from, msg)
      reply = { t: 'ack', id, ...fields } as AckOf<AckFields>
    } catch (err) {
      this.spec.log('%s rejected batch %d from %s: %s', this.spec.handler, id, s.from, messageOf(err))
      reply = { t: 'nack', id, error: messageOf(err).slice(0, this.spec.maxErrorLength), retry: true }
    }
    s.pending.delete(id)
    this.reply(s, reply)
    const slot = s.slot
    s.slot = undefined
    slot?.resolve()
  }

  private reply (s: Inbound, msg: AckOf<AckFields> | Nack): void {
    s.writes = s.writes.then(async () => {
      const { stream } = s
      if (stream.writeStatus !== 'writable') return
      const frame = this.encodeReply(msg)
      this.stats.bytesSent += frame.byteLength
      this.stats.messagesSent++
      if (msg.t === 'ack') this.stats.acksSent++
      else this.stats.nacksSent++
      s.timer.refresh()
      if (!stream.send(frame)) await stream.onDrain({ signal: s.controller.signal })
    }).catch((err: unknown) => {
      this.spec.log('cannot reply to %s: %s', s.from, messageOf(err))
      s.stream.abort(err instanceof Error ? err : new Error(messageOf(err)))
    })
  }
}

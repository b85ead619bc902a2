/**
 * `/shoal/links/1.0.0`: sends discovered links to the peer that owns them and takes in the links
 * other peers send here.
 *
 * Sender: links to one peer gather in a batch that leaves when it is full (links or bytes) or
 * `flushDelay` after it opened. Each peer gets one long-lived outbound stream, opened on first use,
 * on which up to `window` batches are in flight; acks are matched by batch id. With the window full,
 * batches wait here, so a slow owner slows its senders. A `send()` resolves once every batch holding
 * its links is acked — the owner has them on disk — and rejects with a `LinksSendError` on a nack,
 * a dead stream or an ack timeout; a dead stream fails everything waiting on that peer, and the
 * next `send()` opens a new stream.
 *
 * Receiver: one loop per inbound stream reads messages under a per-message inactivity timeout,
 * validates them, hands each batch to `onLinks` without waiting for the previous one, and acks each
 * batch when its `onLinks` resolves (nack with `retry` when it rejects). A malformed message closes
 * that stream; the peer goes on.
 */
import '../../node/polyfills.js'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import debug from 'debug'
import { MiB, second } from '../../node/constants.js'
import { ConfigError } from '../../node/errors.js'
import { decodeMessage, encodeFrame, varintLength } from './codec.js'
import {
  DEFAULT_ACK_TIMEOUT, DEFAULT_FLUSH_DELAY, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_BATCH_LINKS, DEFAULT_MAX_HOPS,
  DEFAULT_MAX_INBOUND_STREAMS, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_URL_LENGTH, DEFAULT_READ_TIMEOUT, DEFAULT_WINDOW,
  MAX_BATCH_LINKS, MAX_DEPTH_VALUE, MAX_ERROR_LENGTH, MAX_HOPS_VALUE, MAX_MESSAGE_BYTES, MAX_REDIRECTS_VALUE,
  MAX_REPLY_BYTES, MAX_URL_LENGTH, MAX_WINDOW, PROTOCOL
} from './constants.js'
import { InvalidLinksError, InvalidMessageError, LinksSendError } from './errors.js'
import { BatchBuilder, linksOf } from './messages.js'
import type { AckMessage, LinksMessage, Message, MessageLimits, NackMessage } from './messages.js'
import type { LinkTransport } from '../../node/router.js'
import type { Link } from '../../node/types.js'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'

const log = debug('shoal:links')
const trace = debug('shoal:links:trace')

/** Errors of the framing (length prefix, buffer) that, like an `InvalidMessageError`, mean a misbehaving sender. */
const MALFORMED = new Set(['InvalidMessageError', 'InvalidDataLengthError', 'InvalidDataLengthLengthError', 'InvalidMessageLengthError', 'StreamBufferError'])
/** How long closing a stream may take before it is aborted. */
const CLOSE_TIMEOUT = 5 * second

export interface LinksTransportComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
}

export interface LinksTransportInit {
  /**
   * Delivery of a received batch: admit the links durably (or forward them when this peer is not
   * their owner) and resolve with how many were admitted. The batch is acked only once this
   * resolves; a rejection is sent back as a nack with `retry: true`.
   */
  onLinks: (from: string, links: Link[], hops: number) => Promise<number>
  /** Links in one batch. @default 1000 */
  maxBatchLinks?: number
  /** Bytes of one message; larger inbound frames close the stream. @default 1 MiB */
  maxMessageBytes?: number
  /** Characters of a URL or referrer. @default 2048 */
  maxUrlLength?: number
  /** Batches in flight (sent, not yet acked) per peer; the receiver runs at most this many `onLinks` per stream. @default 16 */
  window?: number
  /** Milliseconds a batch that isn't full waits for more links. @default 5 */
  flushDelay?: number
  /** Milliseconds to wait for a batch's ack (also bounds opening a stream). @default 30000 */
  ackTimeout?: number
  /** Forwarding hops a batch may have taken; beyond, it is nacked without retry. @default 4 */
  maxHops?: number
  /** Milliseconds an outbound stream with nothing in flight stays open. Keep it below the peers' `readTimeout`. @default 30000 */
  idleTimeout?: number
  /** Milliseconds an inbound stream may stay silent (no message in, no ack out) before it is closed. @default 60000 */
  readTimeout?: number
  /** Inbound streams of this protocol per connection. @default 4 */
  maxInboundStreams?: number
}

export interface SendOptions {
  /** Times these links were already forwarded by peers that did not own them. @default 0 */
  hops?: number
}

export interface LinksStats {
  /** Bytes of every frame written (batches and acks), length prefixes included. */
  bytesSent: number
  /** Frames written (batches and acks). */
  messagesSent: number
  linksSent: number
  batchesSent: number
  batchesAcked: number
  batchesNacked: number
  /** Batches rejected for a stream error, ack timeout, failed dial or stop. */
  batchesFailed: number
  /** Links the owners reported as new to their frontier. */
  linksAdmitted: number
  bytesReceived: number
  messagesReceived: number
  linksReceived: number
  acksSent: number
  nacksSent: number
  streamsOpened: number
  streamsInbound: number
  /** Streams closed because a peer sent something that breaks the protocol. */
  malformedMessages: number
}

interface Options {
  maxBatchLinks: number
  maxMessageBytes: number
  maxUrlLength: number
  window: number
  flushDelay: number
  ackTimeout: number
  maxHops: number
  idleTimeout: number
  readTimeout: number
  maxInboundStreams: number
}

function integer (name: string, value: number | undefined, def: number, min: number, max: number, unit = ''): number {
  const v = value ?? def
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}${unit}, got ${String(value)}`)
  }
  return v
}

function resolveOptions (init: LinksTransportInit): Options {
  if (typeof init?.onLinks !== 'function') throw new ConfigError('onLinks must be a function (from, links, hops) => Promise<number>')
  const maxUrlLength = integer('maxUrlLength', init.maxUrlLength, DEFAULT_MAX_URL_LENGTH, 16, MAX_URL_LENGTH, ' characters')
  const maxMessageBytes = integer('maxMessageBytes', init.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES, 1024, MAX_MESSAGE_BYTES, ' bytes')
  // One link (URL and referrer at up to 3 UTF-8 bytes a character, plus framing) must always fit.
  if (maxMessageBytes < 8 * maxUrlLength) {
    throw new ConfigError(`maxMessageBytes must be at least 8 × maxUrlLength (${8 * maxUrlLength} bytes) so one link always fits, got ${maxMessageBytes}`)
  }
  return {
    maxBatchLinks: integer('maxBatchLinks', init.maxBatchLinks, DEFAULT_MAX_BATCH_LINKS, 1, MAX_BATCH_LINKS, ' links'),
    maxMessageBytes,
    maxUrlLength,
    window: integer('window', init.window, DEFAULT_WINDOW, 1, MAX_WINDOW, ' batches'),
    flushDelay: integer('flushDelay', init.flushDelay, DEFAULT_FLUSH_DELAY, 0, 10 * second, ' ms'),
    ackTimeout: integer('ackTimeout', init.ackTimeout, DEFAULT_ACK_TIMEOUT, 1, 3600 * second, ' ms'),
    maxHops: integer('maxHops', init.maxHops, DEFAULT_MAX_HOPS, 0, MAX_HOPS_VALUE, ' hops'),
    idleTimeout: integer('idleTimeout', init.idleTimeout, DEFAULT_IDLE_TIMEOUT, 1, 3600 * second, ' ms'),
    readTimeout: integer('readTimeout', init.readTimeout, DEFAULT_READ_TIMEOUT, 1, 3600 * second, ' ms'),
    maxInboundStreams: integer('maxInboundStreams', init.maxInboundStreams, DEFAULT_MAX_INBOUND_STREAMS, 1, 1024, ' streams')
  }
}

/** One `send()` call: settles when each batch holding its links is acked, or at the first failure. */
interface Waiter {
  remaining: number
  settled: boolean
  resolve: () => void
  reject: (err: Error) => void
}

class Batch {
  readonly builder: BatchBuilder
  readonly waiters: Waiter[] = []
  lastWaiter: Waiter | undefined
  timer: ReturnType<typeof setTimeout> | undefined

  constructor (readonly hops: number) {
    this.builder = new BatchBuilder(hops)
  }

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
class Channel {
  stream: Stream | undefined
  writing = false
  nextId = 0
  /** Sent, waiting for their ack, by id: at most `window`. */
  readonly inFlight = new Map<number, Batch>()
  /** Sealed, waiting for a window slot. */
  readonly queue: Batch[] = []
  /** Still filling, by hops. */
  readonly open = new Map<number, Batch>()
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
  /** Batch ids handed to `onLinks`, not yet answered. */
  readonly pending: Set<number>
  /** Resolved when a pending batch is answered. */
  slot: { promise: Promise<void>, resolve: () => void } | undefined
  /** Aborted by the inactivity timer or by stop(). */
  readonly controller: AbortController
  readonly timer: ReturnType<typeof setTimeout>
  /** Replies are written one after the other, each waiting for 'drain' when needed. */
  writes: Promise<void>
}

/** Wait for `promise`, or throw the signal's reason once it aborts. */
async function untilAborted<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
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
function timeoutSignal (parent: AbortSignal, ms: number): { signal: AbortSignal, clear: () => void } {
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

function messageOf (err: unknown): string {
  return String((err as Error)?.message ?? err)
}

export class LinksTransport implements LinkTransport {
  readonly stats: LinksStats = {
    bytesSent: 0,
    messagesSent: 0,
    linksSent: 0,
    batchesSent: 0,
    batchesAcked: 0,
    batchesNacked: 0,
    batchesFailed: 0,
    linksAdmitted: 0,
    bytesReceived: 0,
    messagesReceived: 0,
    linksReceived: 0,
    acksSent: 0,
    nacksSent: 0,
    streamsOpened: 0,
    streamsInbound: 0,
    malformedMessages: 0
  }

  private readonly opts: Options
  private readonly onLinks: LinksTransportInit['onLinks']
  /** Caps on batches we receive. */
  private readonly limits: MessageLimits
  /** Caps on replies: an ack can't admit more links than a batch may hold. */
  private readonly replyLimits: MessageLimits
  private readonly channels = new Map<string, Channel>()
  private readonly inbound = new Set<Inbound>()
  private shutdown = new AbortController()
  private running = false

  /** Handlers of what arrives on an inbound stream, by message type. */
  private readonly requestHandlers: { [T in Message['t']]?: (s: Inbound, msg: Extract<Message, { t: T }>) => void } = {
    links: (s, msg) => { this.handleLinks(s, msg) }
  }

  /** Handlers of what arrives on an outbound stream, by message type. */
  private readonly replyHandlers: { [T in Message['t']]?: (ch: Channel, msg: Extract<Message, { t: T }>) => void } = {
    ack: (ch, msg) => { this.handleAck(ch, msg) },
    nack: (ch, msg) => { this.handleNack(ch, msg) }
  }

  constructor (private readonly components: LinksTransportComponents, init: LinksTransportInit) {
    this.opts = resolveOptions(init)
    this.onLinks = init.onLinks
    this.limits = { maxBatchLinks: this.opts.maxBatchLinks, maxUrlLength: this.opts.maxUrlLength }
    this.replyLimits = { maxBatchLinks: MAX_BATCH_LINKS, maxUrlLength: this.opts.maxUrlLength }
  }

  async start (): Promise<void> {
    if (this.running) return
    this.shutdown = new AbortController()
    await this.components.libp2p.handle(PROTOCOL, (stream, connection) => { this.onStream(stream, connection) }, {
      maxInboundStreams: this.opts.maxInboundStreams,
      maxOutboundStreams: this.opts.maxInboundStreams
    })
    this.running = true
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    // Reject first, synchronously, so every pending send gets this error and not the echo of an
    // aborted stream.
    for (const ch of [...this.channels.values()]) {
      this.fail(ch, new LinksSendError(`the links transport stopped before ${ch.peer} acked`, { peer: ch.peer, retryable: false }))
    }
    this.channels.clear()
    for (const s of this.inbound) {
      s.controller.abort(new Error('the links transport stopped'))
      s.stream.abort(new Error('the links transport stopped'))
    }
    this.shutdown.abort(new Error('the links transport stopped'))
    try {
      await this.components.libp2p.unhandle(PROTOCOL)
    } catch (err) {
      log('unhandle failed: %s', messageOf(err))
    }
  }

  /** Batches sent to `peer` and not yet acked (never more than `window`). */
  inFlight (peer: string): number {
    return this.channels.get(peer)?.inFlight.size ?? 0
  }

  /** Batches for `peer` waiting for a window slot, plus the one filling. */
  queued (peer: string): number {
    const ch = this.channels.get(peer)
    return ch == null ? 0 : ch.queue.length + ch.open.size
  }

  /**
   * Send `links` to `peer`. Resolves once `peer` has acked every batch holding them (they are
   * durable there); rejects with `LinksSendError` (nack, stream failure, ack timeout, stop) or
   * `InvalidLinksError` (a link the protocol can't carry).
   */
  send (peer: string, links: Link[], options: SendOptions = {}): Promise<void> {
    if (!this.running) return Promise.reject(new LinksSendError(`the links transport is not running; cannot send to ${peer}`, { peer, retryable: false }))
    const hops = options.hops ?? 0
    let ch: Channel
    try {
      this.checkLinks(links, hops)
      ch = this.channel(peer)
    } catch (err) {
      return Promise.reject(err)
    }
    if (links.length === 0) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { remaining: 0, settled: false, resolve, reject }
      for (const link of links) this.enqueue(ch, hops, link, waiter)
      this.pump(ch)
    })
  }

  private checkLinks (links: Link[], hops: number): void {
    if (!Array.isArray(links)) throw new InvalidLinksError('links must be an array')
    if (!Number.isInteger(hops) || hops < 0 || hops > this.opts.maxHops) {
      throw new InvalidLinksError(`hops must be an integer from 0 to maxHops (${this.opts.maxHops}), got ${String(hops)}`)
    }
    const max = this.opts.maxUrlLength
    for (let i = 0; i < links.length; i++) {
      const l = links[i]
      if (typeof l !== 'object' || l === null) throw new InvalidLinksError(`links[${i}] must be a Link object`)
      const { url, depth, referrer, redirects } = l
      if (typeof url !== 'string' || url.length === 0 || url.length > max) {
        throw new InvalidLinksError(`links[${i}].url must be a string of 1 to ${max} characters`)
      }
      if (!Number.isInteger(depth) || depth < 0 || depth > MAX_DEPTH_VALUE) {
        throw new InvalidLinksError(`links[${i}].depth must be an integer from 0 to ${MAX_DEPTH_VALUE}, got ${String(depth)}`)
      }
      if (referrer !== undefined && (typeof referrer !== 'string' || referrer.length > max)) {
        throw new InvalidLinksError(`links[${i}].referrer must be a string of at most ${max} characters`)
      }
      if (redirects !== undefined && (!Number.isInteger(redirects) || redirects < 0 || redirects > MAX_REDIRECTS_VALUE)) {
        throw new InvalidLinksError(`links[${i}].redirects must be an integer from 0 to ${MAX_REDIRECTS_VALUE}, got ${String(redirects)}`)
      }
    }
  }

  private channel (peer: string): Channel {
    let ch = this.channels.get(peer)
    if (ch == null) {
      let peerId: PeerId
      try {
        peerId = peerIdFromString(peer)
      } catch (err) {
        throw new LinksSendError(`${JSON.stringify(peer)} is not a peer id`, { peer, retryable: false, cause: err })
      }
      ch = new Channel(peer, peerId)
      this.channels.set(peer, ch)
    }
    return ch
  }

  private enqueue (ch: Channel, hops: number, link: Link, waiter: Waiter): void {
    let b = ch.open.get(hops)
    if (b == null || !b.builder.tryAdd(link, this.opts.maxMessageBytes)) {
      if (b != null) this.seal(ch, b)
      b = new Batch(hops)
      ch.open.set(hops, b)
      b.builder.tryAdd(link, this.opts.maxMessageBytes)
      if (ch.flushTimer == null) {
        ch.flushTimer = setTimeout(() => {
          ch.flushTimer = undefined
          for (const o of [...ch.open.values()]) this.seal(ch, o)
          this.pump(ch)
        }, this.opts.flushDelay)
      }
    }
    if (b.lastWaiter !== waiter) {
      b.lastWaiter = waiter
      b.waiters.push(waiter)
      waiter.remaining++
    }
    if (b.builder.count >= this.opts.maxBatchLinks) this.seal(ch, b)
  }

  private seal (ch: Channel, b: Batch): void {
    ch.open.delete(b.hops)
    ch.queue.push(b)
    if (ch.open.size === 0 && ch.flushTimer != null) {
      clearTimeout(ch.flushTimer)
      ch.flushTimer = undefined
    }
  }

  /** Start the writer of `ch` if it has batches and window room. */
  private pump (ch: Channel): void {
    if (ch.idleTimer != null) {
      clearTimeout(ch.idleTimer)
      ch.idleTimer = undefined
    }
    if (!ch.writing && this.running && ch.queue.length > 0 && ch.inFlight.size < this.opts.window) {
      void this.write(ch)
    }
  }

  /** The writer: one per channel at a time, so frames go out in order and 'drain' is respected. */
  private async write (ch: Channel): Promise<void> {
    ch.writing = true
    let stream: Stream | undefined
    try {
      while (this.running && ch.queue.length > 0 && ch.inFlight.size < this.opts.window) {
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
        const frame = encodeFrame(batch.builder.toMessage(id))
        if (frame.byteLength > this.opts.maxMessageBytes + varintLength(this.opts.maxMessageBytes)) {
          // Can't happen while the builder's size bound holds; sending it would only get the stream closed.
          batch.failed(new InvalidLinksError(`a batch encoded to ${frame.byteLength} bytes, more than maxMessageBytes (${this.opts.maxMessageBytes})`))
          continue
        }
        ch.inFlight.set(id, batch)
        const s = stream
        batch.timer = setTimeout(() => {
          this.fail(ch, new LinksSendError(`no ack from ${ch.peer} within ${this.opts.ackTimeout} ms`, { peer: ch.peer, retryable: true }), s)
        }, this.opts.ackTimeout)
        this.stats.bytesSent += frame.byteLength
        this.stats.messagesSent++
        this.stats.batchesSent++
        this.stats.linksSent += batch.builder.count
        trace('batch %d to %s: %d links, %d bytes', id, ch.peer, batch.builder.count, frame.byteLength)
        if (!stream.send(frame)) await stream.onDrain({ signal: this.shutdown.signal })
      }
    } catch (err) {
      this.fail(ch, err, stream)
    } finally {
      ch.writing = false
    }
  }

  private async openStream (ch: Channel): Promise<Stream> {
    // Bounded by the ack timeout: a send waits for one dial at most that long.
    const { signal, clear } = timeoutSignal(this.shutdown.signal, this.opts.ackTimeout)
    let stream: Stream
    try {
      stream = await this.components.libp2p.dialProtocol(ch.peerId, PROTOCOL, { signal })
    } catch (err) {
      throw new LinksSendError(`cannot open a links stream to ${ch.peer}: ${messageOf(err)}`, { peer: ch.peer, retryable: true, cause: err })
    } finally {
      clear()
    }
    if (!this.running) {
      stream.abort(new Error('the links transport stopped'))
      throw new LinksSendError('the links transport stopped', { peer: ch.peer, retryable: false })
    }
    ch.stream = stream
    this.stats.streamsOpened++
    log('opened a links stream to %s', ch.peer)
    void this.readReplies(ch, stream)
    return stream
  }

  /** Read acks and nacks from an outbound stream until it ends or fails. */
  private async readReplies (ch: Channel, stream: Stream): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_REPLY_BYTES })
    try {
      while (true) {
        const buf = await lp.read({ signal: this.shutdown.signal })
        if (ch.stream !== stream) return
        this.stats.bytesReceived += buf.byteLength + varintLength(buf.byteLength)
        this.stats.messagesReceived++
        const msg = decodeMessage(buf, this.replyLimits)
        const handler = this.replyHandlers[msg.t] as ((ch: Channel, msg: Message) => void) | undefined
        if (handler == null) throw new InvalidMessageError(`a ${msg.t} message is not a reply`)
        handler(ch, msg)
      }
    } catch (err: any) {
      if (ch.stream !== stream) return
      if (MALFORMED.has(err?.name)) {
        this.stats.malformedMessages++
        log('closing links stream to %s: %s', ch.peer, messageOf(err))
      }
      const cause = err?.name === 'UnexpectedEOFError' ? new Error('the peer closed the stream', { cause: err }) : err
      this.fail(ch, cause, stream)
    }
  }

  private handleAck (ch: Channel, msg: AckMessage): void {
    const b = ch.inFlight.get(msg.id)
    if (b == null) throw new InvalidMessageError(`ack for batch ${msg.id}, which is not in flight`)
    if (msg.admitted > b.builder.count) throw new InvalidMessageError(`ack admits ${msg.admitted} links of a batch of ${b.builder.count}`)
    ch.inFlight.delete(msg.id)
    clearTimeout(b.timer)
    this.stats.batchesAcked++
    this.stats.linksAdmitted += msg.admitted
    b.acked()
    this.pump(ch)
    this.armIdle(ch)
  }

  private handleNack (ch: Channel, msg: NackMessage): void {
    const b = ch.inFlight.get(msg.id)
    if (b == null) throw new InvalidMessageError(`nack for batch ${msg.id}, which is not in flight`)
    ch.inFlight.delete(msg.id)
    clearTimeout(b.timer)
    this.stats.batchesNacked++
    log('%s refused batch %d (%d links): %s', ch.peer, msg.id, b.builder.count, msg.error)
    b.failed(new LinksSendError(`${ch.peer} refused a batch of ${b.builder.count} links: ${msg.error}`, { peer: ch.peer, retryable: msg.retry }))
    this.pump(ch)
    this.armIdle(ch)
  }

  /** Close an outbound stream that has carried nothing for `idleTimeout`, before the receiver times it out. */
  private armIdle (ch: Channel): void {
    if (ch.stream == null || ch.busy() || ch.idleTimer != null) return
    ch.idleTimer = setTimeout(() => {
      ch.idleTimer = undefined
      const stream = ch.stream
      if (stream == null || ch.busy() || ch.writing) return
      ch.stream = undefined
      if (this.channels.get(ch.peer) === ch) this.channels.delete(ch.peer)
      trace('closing idle links stream to %s', ch.peer)
      stream.close({ signal: AbortSignal.timeout(CLOSE_TIMEOUT) }).catch((err: Error) => { stream.abort(err) })
    }, this.opts.idleTimeout)
    ch.idleTimer.unref()
  }

  /**
   * The stream of `ch` failed (or the transport stops): reject every batch waiting on this peer and
   * forget the stream, so the next send opens a new one. A failure of a stream that is no longer
   * the channel's (`stream` given and replaced) is old news and ignored.
   */
  private fail (ch: Channel, err: unknown, stream?: Stream): void {
    if (stream != null && stream !== ch.stream) return
    const e = (err as Error)?.name === 'LinksSendError'
      ? err as LinksSendError
      : new LinksSendError(`links stream to ${ch.peer} failed: ${messageOf(err)}`, { peer: ch.peer, retryable: true, cause: err })
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
      log('%d batches failed: %s', batches.length, e.message)
    } else if (s != null) {
      trace('links stream to %s ended: %s', ch.peer, e.message)
    }
  }

  // ---- receiver ----

  private onStream (stream: Stream, connection: Connection): void {
    if (!this.running) {
      stream.abort(new Error('the links transport is not running'))
      return
    }
    void this.serve(stream, connection.remotePeer.toString())
  }

  private async serve (stream: Stream, from: string): Promise<void> {
    const controller = new AbortController()
    const s: Inbound = {
      stream,
      from,
      pending: new Set(),
      slot: undefined,
      controller,
      timer: setTimeout(() => {
        controller.abort(new Error(`no message from ${from} for ${this.opts.readTimeout} ms`))
      }, this.opts.readTimeout),
      writes: Promise.resolve()
    }
    this.inbound.add(s)
    this.stats.streamsInbound++
    // The byte reader buffers what arrives between reads: room for a full message and the next one.
    const lp = lpStream(stream, { maxDataLength: this.opts.maxMessageBytes, maxBufferSize: Math.max(4 * MiB, 2 * this.opts.maxMessageBytes + 16) })
    try {
      while (true) {
        if (s.pending.size >= this.opts.window) {
          // A sender past our window (an honest one never is: it counts acks we already sent).
          // Pausing stops the muxer's window updates, so it has to wait.
          if (stream.readStatus === 'readable') stream.pause()
          try {
            while (s.pending.size >= this.opts.window) await this.nextSlot(s)
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
        const msg = decodeMessage(buf, this.limits)
        const handler = this.requestHandlers[msg.t] as ((s: Inbound, msg: Message) => void) | undefined
        if (handler == null) throw new InvalidMessageError(`a ${msg.t} message is not a request`)
        handler(s, msg)
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
        log('closing links stream from %s: %s', from, messageOf(err))
      } else {
        log('links stream from %s failed: %s', from, messageOf(reason))
      }
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

  private handleLinks (s: Inbound, msg: LinksMessage): void {
    if (s.pending.has(msg.id)) throw new InvalidMessageError(`batch ${msg.id} is already in flight`)
    if (msg.hops > this.opts.maxHops) {
      this.reply(s, { t: 'nack', id: msg.id, error: `the batch took ${msg.hops} hops, more than maxHops (${this.opts.maxHops})`, retry: false })
      return
    }
    const links = linksOf(msg)
    this.stats.linksReceived += links.length
    s.pending.add(msg.id)
    void this.deliver(s, msg.id, links, msg.hops)
  }

  /** Hand a batch to `onLinks`; ack when it resolves (the links are durable), nack when it rejects. */
  private async deliver (s: Inbound, id: number, links: Link[], hops: number): Promise<void> {
    let reply: Message
    try {
      const admitted = await this.onLinks(s.from, links, hops)
      reply = { t: 'ack', id, admitted: this.admittedOf(admitted, links.length) }
    } catch (err) {
      log('onLinks rejected batch %d from %s: %s', id, s.from, messageOf(err))
      reply = { t: 'nack', id, error: messageOf(err).slice(0, MAX_ERROR_LENGTH), retry: true }
    }
    s.pending.delete(id)
    this.reply(s, reply)
    const slot = s.slot
    s.slot = undefined
    slot?.resolve()
  }

  private admittedOf (admitted: unknown, n: number): number {
    if (typeof admitted === 'number' && Number.isInteger(admitted) && admitted >= 0) return Math.min(admitted, n)
    log('onLinks resolved with %s, not a count of admitted links; acking 0', String(admitted))
    return 0
  }

  private reply (s: Inbound, msg: Message): void {
    s.writes = s.writes.then(async () => {
      const { stream } = s
      if (stream.writeStatus !== 'writable') return
      const frame = encodeFrame(msg)
      this.stats.bytesSent += frame.byteLength
      this.stats.messagesSent++
      if (msg.t === 'ack') this.stats.acksSent++
      else this.stats.nacksSent++
      s.timer.refresh()
      if (!stream.send(frame)) await stream.onDrain({ signal: s.controller.signal })
    }).catch((err: unknown) => {
      log('cannot reply to %s: %s', s.from, messageOf(err))
      s.stream.abort(err instanceof Error ? err : new Error(messageOf(err)))
    })
  }
}

/**
 * `/shoal/links/1.0.0`: sends discovered links to the peer that owns them and takes in the links
 * other peers send here.
 *
 * Sender: links to one peer gather in a batch (one open batch per hop count) that leaves when it is
 * full (links or bytes) or `flushDelay` after it opened. Each peer gets one long-lived outbound
 * stream, opened on first use, on which up to `window` batches are in flight; acks are matched by
 * batch id. With the window full, batches wait here, so a slow owner slows its senders. A `send()`
 * resolves once every batch holding its links is acked — the owner has them on disk — and rejects
 * with a `LinksSendError` on a nack, a dead stream or an ack timeout; a dead stream fails
 * everything waiting on that peer, and the next `send()` opens a new stream.
 *
 * Receiver: one loop per inbound stream reads messages under a per-message inactivity timeout,
 * validates them, hands each batch to `onLinks` without waiting for the previous one, and acks each
 * batch when its `onLinks` resolves (nack with `retry` when it rejects). A malformed message closes
 * that stream; the peer goes on.
 *
 * The stream machinery is the batch protocols' (../batch/transport.ts); this file holds what is
 * particular to links: the options, the link checks, the grouped batch form, hops and `admitted`.
 */
import debug from 'debug'
import { ConfigError } from '../../node/errors.js'
import { BatchTransport, batchStats } from '../batch/transport.js'
import { integer, resolveTiming } from '../batch/options.js'
import { decodeMessage, encodeFrame } from './codec.js'
import {
  DEFAULT_ACK_TIMEOUT, DEFAULT_FLUSH_DELAY, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_BATCH_LINKS, DEFAULT_MAX_HOPS,
  DEFAULT_MAX_INBOUND_STREAMS, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_URL_LENGTH, DEFAULT_READ_TIMEOUT, DEFAULT_WINDOW,
  MAX_BATCH_LINKS, MAX_DEPTH_VALUE, MAX_ERROR_LENGTH, MAX_HOPS_VALUE, MAX_MESSAGE_BYTES, MAX_REDIRECTS_VALUE,
  MAX_REPLY_BYTES, MAX_URL_LENGTH, MAX_WINDOW, PROTOCOL
} from './constants.js'
import { InvalidLinksError, InvalidMessageError, LinksSendError } from './errors.js'
import { BatchBuilder, linksOf } from './messages.js'
import type { AckMessage, LinksMessage, MessageLimits, NackMessage } from './messages.js'
import type { Bytes } from '../batch/codec.js'
import type { BatchOptions, BatchProtocol } from '../batch/index.js'
import type { LinkTransport } from '../../node/router.js'
import type { Link } from '../../node/types.js'
import type { Libp2p } from '@libp2p/interface'

const log = debug('shoal:links')

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
  /** Milliseconds a batch that isn't full waits for more links. @default 50 */
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

interface Options extends BatchOptions {
  maxUrlLength: number
  maxHops: number
}

function resolveOptions (init: LinksTransportInit): Options {
  if (typeof init?.onLinks !== 'function') throw new ConfigError('onLinks must be a function (from, links, hops) => Promise<number>')
  const maxUrlLength = integer('maxUrlLength', init.maxUrlLength, DEFAULT_MAX_URL_LENGTH, 16, MAX_URL_LENGTH, ' characters')
  const maxMessageBytes = integer('maxMessageBytes', init.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES, 1024, MAX_MESSAGE_BYTES, ' bytes')
  // One link (URL and referrer at up to 3 UTF-8 bytes a character, plus framing) must always fit.
  if (maxMessageBytes < 8 * maxUrlLength) {
    throw new ConfigError(`maxMessageBytes must be at least 8 × maxUrlLength (${8 * maxUrlLength} bytes) so one link always fits, got ${maxMessageBytes}`)
  }
  const maxBatchItems = integer('maxBatchLinks', init.maxBatchLinks, DEFAULT_MAX_BATCH_LINKS, 1, MAX_BATCH_LINKS, ' links')
  return {
    maxBatchItems,
    maxMessageBytes,
    maxUrlLength,
    maxHops: integer('maxHops', init.maxHops, DEFAULT_MAX_HOPS, 0, MAX_HOPS_VALUE, ' hops'),
    ...resolveTiming(init, {
      window: DEFAULT_WINDOW,
      maxWindow: MAX_WINDOW,
      flushDelay: DEFAULT_FLUSH_DELAY,
      ackTimeout: DEFAULT_ACK_TIMEOUT,
      idleTimeout: DEFAULT_IDLE_TIMEOUT,
      readTimeout: DEFAULT_READ_TIMEOUT,
      maxInboundStreams: DEFAULT_MAX_INBOUND_STREAMS
    })
  }
}

const LINKS: BatchProtocol = {
  protocol: PROTOCOL,
  name: 'links',
  items: 'links',
  handler: 'onLinks',
  maxReplyBytes: MAX_REPLY_BYTES,
  maxErrorLength: MAX_ERROR_LENGTH,
  serial: false,
  log,
  trace: debug('shoal:links:trace'),
  sendErrorName: 'LinksSendError',
  sendError: (message, options) => new LinksSendError(message, options),
  invalidMessage: (message) => new InvalidMessageError(message),
  oversize: (message) => new InvalidLinksError(message)
}

export class LinksTransport extends BatchTransport<Link, number, BatchBuilder, LinksMessage, { admitted: number }, LinksStats> implements LinkTransport {
  private readonly opts: Options
  private readonly onLinks: LinksTransportInit['onLinks']
  /** Caps on batches we receive. */
  private readonly limits: MessageLimits
  /** Caps on replies: an ack can't admit more links than a batch may hold. */
  private readonly replyLimits: MessageLimits

  constructor (components: LinksTransportComponents, init: LinksTransportInit) {
    const opts = resolveOptions(init)
    super(components, LINKS, opts, {
      ...batchStats(),
      linksSent: 0,
      linksAdmitted: 0,
      linksReceived: 0
    }, 'links')
    this.opts = opts
    this.onLinks = init.onLinks
    this.limits = { maxBatchLinks: opts.maxBatchItems, maxUrlLength: opts.maxUrlLength }
    this.replyLimits = { maxBatchLinks: MAX_BATCH_LINKS, maxUrlLength: opts.maxUrlLength }
  }

  /**
   * Send `links` to `peer`. Resolves once `peer` has acked every batch holding them (they are
   * durable there); rejects with `LinksSendError` (nack, stream failure, ack timeout, stop) or
   * `InvalidLinksError` (a link the protocol can't carry).
   */
  send (peer: string, links: Link[], options: SendOptions = {}): Promise<void> {
    const hops = options.hops ?? 0
    return this.sendItems(peer, links, hops, () => { this.checkLinks(links, hops) })
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

  // ---- the hooks of the batch machinery ----

  protected newBatch (hops: number): BatchBuilder {
    return new BatchBuilder(hops)
  }

  protected encodeBatch (b: BatchBuilder, id: number): Uint8Array {
    return encodeFrame(b.toMessage(id))
  }

  protected encodeReply (msg: AckMessage | NackMessage): Uint8Array {
    return encodeFrame(msg)
  }

  protected decodeRequest (buf: Bytes): { t: string } {
    return decodeMessage(buf, this.limits)
  }

  protected decodeReply (buf: Bytes): { t: string } {
    return decodeMessage(buf, this.replyLimits)
  }

  protected batchSent (b: BatchBuilder): void {
    this.stats.linksSent += b.count
  }

  protected batchAcked (b: BatchBuilder, ack: AckMessage): void {
    if (ack.admitted > b.count) throw new InvalidMessageError(`ack admits ${ack.admitted} links of a batch of ${b.count}`)
    this.stats.linksAdmitted += ack.admitted
  }

  protected override refuse (msg: LinksMessage): { error: string, retry: boolean } | undefined {
    if (msg.hops <= this.opts.maxHops) return undefined
    return { error: `the batch took ${msg.hops} hops, more than maxHops (${this.opts.maxHops})`, retry: false }
  }

  /** Hand a batch to `onLinks`; the ack says how many of its links were new. */
  protected async deliver (from: string, msg: LinksMessage): Promise<{ admitted: number }> {
    const links = linksOf(msg)
    this.stats.linksReceived += links.length
    const admitted = await this.onLinks(from, links, msg.hops)
    return { admitted: this.admittedOf(admitted, links.length) }
  }

  private admittedOf (admitted: unknown, n: number): number {
    if (typeof admitted === 'number' && Number.isInteger(admitted) && admitted >= 0) return Math.min(admitted, n)
    log('onLinks resolved with %s, not a count of admitted links; acking 0', String(admitted))
    return 0
  }
}

/**
 * `/shoal/meta/1.0.0`: replicates this peer's frontier entries and URL records to the successors
 * of each host on the ring, and hands them over when the ring changes (DESIGN.md §2, §4).
 *
 * Sender: `send(peer, ops)` checks and encodes each op at once (an op the protocol can't carry is
 * refused with `InvalidOpsError`), then the ops join the peer's open batch, which leaves when it is
 * full (`maxBatchOps` or `maxMessageBytes`) or `flushDelay` after it opened. Up to `window` batches
 * per peer are in flight on one long-lived stream; beyond, they wait here (back-pressure). A send
 * resolves once every batch holding its ops is acked — the peer has them on disk — and rejects with
 * a `MetaSendError` (nack, dead stream, ack timeout, stop).
 *
 * Receiver: each apply message is validated op by op and handed to `onApply`; the ack goes back
 * only once `onApply` resolves, a nack (`retry: true`) when it rejects. Batches of one stream are
 * applied one after the other, in the order they were sent: an `entry` and the `done` that
 * follows it, or a `drop`, must not overtake each other. A malformed message closes that stream.
 *
 * The stream machinery is the batch protocols' (../batch/transport.ts).
 */
import debug from 'debug'
import { ConfigError } from '../../node/errors.js'
import { BatchTransport, batchStats } from '../batch/transport.js'
import { integer, resolveTiming } from '../batch/options.js'
import { APPLY_HEADER_BYTES, decodeMessage, encodeApplyFrame, encodeFrame, encodeOp } from './codec.js'
import {
  DEFAULT_ACK_TIMEOUT, DEFAULT_FLUSH_DELAY, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_BATCH_OPS, DEFAULT_MAX_HOST_LENGTH,
  DEFAULT_MAX_INBOUND_STREAMS, DEFAULT_MAX_KEY_LENGTH, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_URL_LENGTH,
  DEFAULT_READ_TIMEOUT, DEFAULT_WINDOW, MAX_BATCH_OPS, MAX_ERROR_LENGTH, MAX_HOST_LENGTH, MAX_KEY_LENGTH,
  MAX_MESSAGE_BYTES, MAX_REPLY_BYTES, MAX_URL_LENGTH, MAX_WINDOW, MIN_MESSAGE_BYTES, PROTOCOL
} from './constants.js'
import { InvalidMessageError, InvalidOpsError, MetaSendError } from './errors.js'
import { validateOp } from './messages.js'
import type { AckMessage, ApplyMessage, MessageLimits, NackMessage, Op } from './messages.js'
import type { Bytes } from '../batch/codec.js'
import type { BatchOptions, BatchProtocol, BatchStats } from '../batch/index.js'
import type { Libp2p } from '@libp2p/interface'

export interface MetaTransportComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
}

export interface MetaTransportInit {
  /**
   * Make a received batch durable: store entries, records and seen marks, forget dropped hosts.
   * The batch is acked only once this resolves; a rejection is sent back as a nack with
   * `retry: true`. Called one batch at a time per inbound stream, in the order the sender sent them,
   * so it must never wait on another peer: two peers applying each other's batches would each wait
   * for the other's ack until the ack timeout.
   */
  onApply: (from: string, ops: Op[]) => Promise<void>
  /** Ops in one batch. @default 2000 */
  maxBatchOps?: number
  /** Bytes of one message; larger inbound frames close the stream, larger ops are refused by `send`. @default 2 MiB */
  maxMessageBytes?: number
  /** Characters of a URL (entry, seen mark, referrer, record URL and referrer). @default 2048 */
  maxUrlLength?: number
  /** Characters of a frontier key. @default 2048 */
  maxKeyLength?: number
  /** Characters of a host. @default 300 */
  maxHostLength?: number
  /** Batches in flight (sent, not yet acked) per peer; the receiver holds at most this many per stream. @default 16 */
  window?: number
  /** Milliseconds a batch that isn't full waits for more ops. @default 10 */
  flushDelay?: number
  /** Milliseconds to wait for a batch's ack (also bounds opening a stream). @default 30000 */
  ackTimeout?: number
  /** Milliseconds an outbound stream with nothing in flight stays open. Keep it below the peers' `readTimeout`. @default 30000 */
  idleTimeout?: number
  /** Milliseconds an inbound stream may stay silent (no message in, no ack out) before it is closed. @default 60000 */
  readTimeout?: number
  /** Inbound streams of this protocol per connection. @default 4 */
  maxInboundStreams?: number
}

export interface MetaStats extends BatchStats {
  /** Ops of the batches written. */
  opsSent: number
  /** Ops of the batches the peers acked (durable there). */
  opsAcked: number
  /** Ops handed to `onApply`. */
  opsReceived: number
}

interface Options extends BatchOptions, MessageLimits {}

function resolveOptions (init: MetaTransportInit): Options {
  if (typeof init?.onApply !== 'function') throw new ConfigError('onApply must be a function (from, ops) => Promise<void>')
  const maxUrlLength = integer('maxUrlLength', init.maxUrlLength, DEFAULT_MAX_URL_LENGTH, 16, MAX_URL_LENGTH, ' characters')
  const maxKeyLength = integer('maxKeyLength', init.maxKeyLength, DEFAULT_MAX_KEY_LENGTH, 16, MAX_KEY_LENGTH, ' characters')
  const maxHostLength = integer('maxHostLength', init.maxHostLength, DEFAULT_MAX_HOST_LENGTH, 16, MAX_HOST_LENGTH, ' characters')
  const maxMessageBytes = integer('maxMessageBytes', init.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES, MIN_MESSAGE_BYTES, MAX_MESSAGE_BYTES, ' bytes')
  // An entry op (URL, referrer, key and host at up to 3 UTF-8 bytes a character, plus framing)
  // must always fit; a record may not, and `send` refuses it by name.
  const entryBytes = 3 * (2 * maxUrlLength + maxKeyLength + maxHostLength) + 256
  if (maxMessageBytes < entryBytes) {
    throw new ConfigError(`maxMessageBytes must be at least ${entryBytes} bytes so one entry op always fits (3 × (2 × maxUrlLength + maxKeyLength + maxHostLength) + 256), got ${maxMessageBytes}`)
  }
  const maxBatchOps = integer('maxBatchOps', init.maxBatchOps, DEFAULT_MAX_BATCH_OPS, 1, MAX_BATCH_OPS, ' ops')
  return {
    maxBatchOps,
    maxBatchItems: maxBatchOps,
    maxMessageBytes,
    maxUrlLength,
    maxKeyLength,
    maxHostLength,
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

/** The ops of one batch, each already encoded, and the exact size of the message's body. */
class OpsBatch {
  readonly ops: Uint8Array[] = []
  bytes = APPLY_HEADER_BYTES
  private opBytes = 0

  get count (): number {
    return this.ops.length
  }

  tryAdd (op: Uint8Array, maxBytes: number): boolean {
    if (this.ops.length > 0 && this.bytes + op.byteLength > maxBytes) return false
    this.ops.push(op)
    this.bytes += op.byteLength
    this.opBytes += op.byteLength
    return true
  }

  encode (id: number): Uint8Array {
    return encodeApplyFrame(id, this.ops, this.opBytes)
  }
}

const log = debug('shoal:meta')

const META: BatchProtocol = {
  protocol: PROTOCOL,
  name: 'meta',
  items: 'ops',
  handler: 'onApply',
  maxReplyBytes: MAX_REPLY_BYTES,
  maxErrorLength: MAX_ERROR_LENGTH,
  serial: true,
  log,
  trace: debug('shoal:meta:trace'),
  sendErrorName: 'MetaSendError',
  sendError: (message, options) => new MetaSendError(message, options),
  invalidMessage: (message) => new InvalidMessageError(message),
  oversize: (message) => new InvalidOpsError(message)
}

/** A meta ack carries nothing beside its type and id. */
type NoFields = Record<never, never>

/** Every op goes in the one open batch of its peer: the key of the batch machinery is constant. */
const ONE = 0

export class MetaTransport extends BatchTransport<Uint8Array, number, OpsBatch, ApplyMessage, NoFields, MetaStats> {
  private readonly opts: Options
  private readonly onApply: MetaTransportInit['onApply']

  constructor (components: MetaTransportComponents, init: MetaTransportInit) {
    const opts = resolveOptions(init)
    super(components, META, opts, { ...batchStats(), opsSent: 0, opsAcked: 0, opsReceived: 0 }, 'apply')
    this.opts = opts
    this.onApply = init.onApply
  }

  /**
   * Send `ops` to `peer`. Resolves once `peer` has acked every batch holding them (they are
   * durable there); rejects with `MetaSendError` (nack, stream failure, ack timeout, stop; see
   * `retryable`) or `InvalidOpsError` (an op the protocol can't carry: nothing is sent). Ops to one
   * peer leave in the order they were given, over the calls.
   */
  send (peer: string, ops: Op[]): Promise<void> {
    const encoded: Uint8Array[] = []
    return this.sendItems(peer, encoded, ONE, () => {
      // Filled in place: the machinery reads the items once this check has passed.
      for (const op of this.checkOps(ops)) encoded.push(op)
    })
  }

  /** Each op validated as the receiver will (so a refusal is ours, by name, not a closed stream) and encoded. */
  private checkOps (ops: Op[]): Uint8Array[] {
    if (!Array.isArray(ops)) throw new InvalidOpsError('ops must be an array')
    const room = this.opts.maxMessageBytes - APPLY_HEADER_BYTES
    const out: Uint8Array[] = new Array(ops.length)
    for (let i = 0; i < ops.length; i++) {
      let op: Op
      try {
        op = validateOp(ops[i], this.opts, `ops[${i}]`)
      } catch (err: any) {
        throw new InvalidOpsError(String(err?.message ?? err), { cause: err })
      }
      const bytes = encodeOp(op)
      if (bytes.byteLength > room) {
        throw new InvalidOpsError(`ops[${i}] encodes to ${bytes.byteLength} bytes, more than a batch of maxMessageBytes (${this.opts.maxMessageBytes}) can hold`)
      }
      out[i] = bytes
    }
    return out
  }

  // ---- the hooks of the batch machinery ----

  protected newBatch (): OpsBatch {
    return new OpsBatch()
  }

  protected encodeBatch (b: OpsBatch, id: number): Uint8Array {
    return b.encode(id)
  }

  protected encodeReply (msg: AckMessage | NackMessage): Uint8Array {
    return encodeFrame(msg)
  }

  protected decodeRequest (buf: Bytes): { t: string } {
    return decodeMessage(buf, this.opts)
  }

  protected decodeReply (buf: Bytes): { t: string } {
    return decodeMessage(buf, this.opts)
  }

  protected batchSent (b: OpsBatch): void {
    this.stats.opsSent += b.count
  }

  protected batchAcked (b: OpsBatch): void {
    this.stats.opsAcked += b.count
  }

  protected async deliver (from: string, msg: ApplyMessage): Promise<NoFields> {
    this.stats.opsReceived += msg.ops.length
    await this.onApply(from, msg.ops)
    return {}
  }
}

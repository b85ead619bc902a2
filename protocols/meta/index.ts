/**
 * `/shoal/meta/1.0.0` (DESIGN.md §4): replicates frontier entries and URL records to the
 * successors of each host on the ring, and hands them over when the ring changes; one ack per
 * batch once the receiver has it on disk.
 *
 * Frames: an unsigned varint length, then one msgpack map (`maxMessageBytes` at most):
 *
 *   { t: 'apply', id, ops: [op…] }           a batch (op kinds: entry, done, seen, record, drop, handed)
 *   { t: 'ack', id }                         durable
 *   { t: 'nack', id, error, retry }          not taken
 *
 * See messages.ts for the ops and the caps a decoded message must meet, and ../batch/transport.ts
 * for the stream rules.
 */
export * from './constants.js'
export { InvalidMessageError, InvalidOpsError, MetaSendError } from './errors.js'
export { validateMessage, validateOp } from './messages.js'
export type {
  AckMessage, ApplyMessage, DoneOp, DropOp, EntryOp, Message, MessageLimits, MessageType, NackMessage, Op, OpKind,
  RecordOp, SeenOp
} from './messages.js'
export { decodeMessage, encodeApplyFrame, encodeFrame, encodeOp } from './codec.js'
export { MetaTransport } from './transport.js'
export type { MetaStats, MetaTransportComponents, MetaTransportInit } from './transport.js'

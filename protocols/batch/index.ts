/**
 * The machinery shared by the batch protocols (`/shoal/links/1.0.0`, `/shoal/meta/1.0.0`): a
 * per-peer channel over one lazy, long-lived stream; batching with a flush delay and a size cut;
 * a window of batches in flight with acks and nacks matched by id; ack timeouts; stop semantics;
 * the inbound stream loop with its per-message timeout and dispatch table; the msgpack settings
 * and the length-prefixed framing. Not a protocol of its own: it has no id.
 */
export { BatchTransport, batchStats, messageOf, timeoutSignal, untilAborted } from './transport.js'
export type { AckOf, BatchProtocol, BatchStats, BatchTransportComponents, Builder, BatchRequest, Nack, SendError } from './transport.js'
export { CLOSE_TIMEOUT, MALFORMED, integer, resolveTiming } from './options.js'
export type { BatchOptions, TimingDefaults, TimingInit } from './options.js'
export { packr, unpackBody } from './codec.js'
export type { Bytes } from './codec.js'
export { allocFrame, frameOf, varintLength } from './frame.js'

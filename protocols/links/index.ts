/**
 * `/shoal/links/1.0.0` (DESIGN.md §4): batches of discovered URLs, with depth and referrer, sent
 * to the peer that owns them; one ack per batch once the owner has them on disk.
 *
 * Frames: an unsigned varint length, then one msgpack map (`maxMessageBytes` at most):
 *
 *   { t: 'links', id, hops, g: [{ d, u: [suffix…], r?, x?, p? }…] }   a batch (URL = p + suffix)
 *   { t: 'ack', id, admitted }                                         durable; `admitted` were new
 *   { t: 'nack', id, error, retry }                                    not taken
 *
 * See messages.ts for the caps a decoded message must meet and transport.ts for the stream rules.
 */
export * from './constants.js'
export { LinksSendError, InvalidLinksError, InvalidMessageError } from './errors.js'
export { BatchBuilder, linksOf, validateMessage } from './messages.js'
export type { AckMessage, LinkGroup, LinksMessage, Message, MessageLimits, MessageType, NackMessage } from './messages.js'
export { decodeMessage, encodeFrame } from './codec.js'
export { LinksTransport } from './transport.js'
export type { LinksStats, LinksTransportComponents, LinksTransportInit, SendOptions } from './transport.js'

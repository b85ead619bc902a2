/**
 * `/shoal/blocks/1.0.0` (DESIGN.md §4): put, has and get content blocks by CID between peers, to
 * replicate stored bodies on r peers and repair the under-replicated ones.
 *
 * Frames: an unsigned varint length, then one msgpack map (a chunk of block data or a full CID
 * list, plus 4 KiB, at most). The dialer asks, the listener answers, matched by id:
 *
 *   { t: 'put', id, cid, data, size? }   → { t: 'ok', id }                      durable on the receiver
 *   { t: 'has', id, cids: [cid…] }       → { t: 'have', id, have: [bool…] }
 *   { t: 'get', id, cid }                → { t: 'block', id, data, size? } | { t: 'missing', id }
 *   any request                          → { t: 'error', id, error, retry }       not done
 *   { t: 'chunk', id, data }             the next bytes of the put or block `id`
 *
 * A block over `maxChunkBytes` (256 KiB) is a head carrying its first bytes and its total `size`,
 * then chunks, back to back on the stream. Each end checks a block against its CID with `cidOf`.
 * See messages.ts for the caps a decoded message must meet, service.ts and client.ts for the
 * stream rules.
 */
export * from './constants.js'
export { BlockMismatchError, BlocksRequestError, InvalidBlockRequestError, InvalidMessageError } from './errors.js'
export { Assembly, isCidString, validateMessage } from './messages.js'
export type {
  BlockMessage, ChunkMessage, ErrorMessage, GetMessage, HasMessage, HaveMessage, Message, MessageLimits, MessageType,
  MissingMessage, OkMessage, PutMessage, ReplyMessage, RequestMessage
} from './messages.js'
export { blockFrames, decodeMessage, encodeFrame, maxFrameBytes } from './codec.js'
export type { BlocksLimitsInit } from './options.js'
export { BlockService } from './service.js'
export type { BlockServiceComponents, BlockServiceInit, BlockServiceStats } from './service.js'
export { BlockClient } from './client.js'
export type { BlockClientComponents, BlockClientInit, BlockClientStats, RequestOptions } from './client.js'

/**
 * `/shoal/query/1.0.0` (DESIGN.md §4): ask another peer for a URL's record, and its stored body,
 * so that any peer's HTTP API (DESIGN.md §6) can answer for any URL by asking the URL's owner, or
 * a replica when the owner is unreachable.
 *
 * Frames: an unsigned varint length, then one msgpack map:
 *
 *   → { t: 'get', id, url, body }                        ask for the record of `url` (and its body)
 *   ← { t: 'record', id, record: UrlRecord | null, verdict }   null: the verdict says why
 *   ← { t: 'chunk', id, data }…                          the body, in order, 1 B–64 KiB each
 *   ← { t: 'end', id, bytes }                            the body is complete
 *   ← { t: 'error', id, error, retry? }                  instead of the record, or after it
 *
 * Chunks and end follow only when the body was asked for and the record has a CID; the client
 * checks the body against that CID. `retry` (absent: false) says whether asking again may succeed.
 *
 * One request per stream, not pipelined. A query is rare next to a links batch (one per HTTP API
 * call that lands on a non-owner), and a stream on an open connection costs one round trip of
 * protocol negotiation. In exchange: no head-of-line blocking (a small record never waits behind
 * another query's 20 MiB body), no demultiplexing by id, no idle stream to keep or time out, and
 * back-pressure is the stream's own. `id` is still carried and checked, so a later version may
 * pipeline without a new message shape.
 *
 * See messages.ts for the caps a decoded message must meet, service.ts and client.ts for the
 * stream rules and timeouts.
 */
export * from './constants.js'
export {
  InvalidMessageError, InvalidQueryError, QueryBodyMismatchError, QueryBodyTooLargeError, QueryError, QueryProtocolError,
  QueryRemoteError, QueryTimeoutError, QueryUnreachableError
} from './errors.js'
export { validateMessage, validateRecord } from './messages.js'
export type {
  ChunkMessage, EndMessage, ErrorMessage, GetMessage, Message, MessageLimits, MessageType, RecordMessage, Request, Response
} from './messages.js'
export { decodeMessage, encodeFrame } from './codec.js'
export { QueryService } from './service.js'
export type { Found, QueryServiceComponents, QueryServiceInit, QueryServiceStats } from './service.js'
export { queryPeer } from './client.js'
export type { QueryOptions, QueryResult } from './client.js'

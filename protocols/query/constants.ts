/**
 * Ids, defaults and hard caps of `/shoal/query/1.0.0`, each with its unit in its name or value.
 * Kept apart from index.ts so the modules of this folder can import them without an import cycle
 * through the index that re-exports them.
 */
import {
  DEFAULT_MAX_DECOMPRESSED_SIZE, DEFAULT_MAX_URL_LENGTH as NODE_MAX_URL_LENGTH, KiB, MiB, second
} from '../../node/constants.js'

/** Versioned protocol id (DESIGN.md §4). A new wire format is a new version, never an edit of this one. */
export const PROTOCOL = '/shoal/query/1.0.0'

/** Characters of the URL asked for. The same default as the scope's URL length guard. */
export const DEFAULT_MAX_URL_LENGTH = NODE_MAX_URL_LENGTH
/**
 * Bytes of one body. A stored body is the *decoded* one (node/types.ts `UrlRecord.size`), which the
 * fetcher lets grow to `maxDecompressedSize` (20 MiB by default), not only to `maxBodySize`
 * (10 MiB, the bytes on the wire): a smaller default would refuse bodies our own peers store.
 * Plus slack, so a peer with a slightly larger cap is still served.
 */
export const DEFAULT_MAX_BODY_BYTES = DEFAULT_MAX_DECOMPRESSED_SIZE + 1 * MiB
/** Bytes of body in one chunk frame the server sends. */
export const DEFAULT_CHUNK_BYTES = 64 * KiB
/**
 * The longest wait for any one step, reset after each: on the server the request, the lookup,
 * reading the body and each frame's drain; on the client the dial and each response frame.
 */
export const DEFAULT_TIMEOUT = 10 * second
/**
 * Inbound query streams on one connection: one a query in flight from that peer. libp2p resets the
 * streams past it (the client sees a retryable `QueryUnreachableError`), so it matches the
 * server's concurrency cap: one busy HTTP API may send all its queries to one owner.
 */
export const DEFAULT_MAX_INBOUND_STREAMS = 32
/** Queries a server answers at once, over all peers; beyond, it answers a retryable "busy" error. */
export const DEFAULT_MAX_CONCURRENT = 32
/** How long closing a stream may take before it is aborted. */
export const CLOSE_TIMEOUT = 5 * second

/** Hard caps on decoded values, whatever the configuration. */
export const MAX_ID = 2 ** 32 - 1
/** Bytes of body in one chunk frame, at most (the brief of the wire format: ≤ 64 KiB). */
export const MAX_CHUNK_BYTES = 64 * KiB
/** Characters of a verdict. The server clips longer ones: a verdict is free text. */
export const MAX_VERDICT_LENGTH = 1 * KiB
/** Characters of an error message. The server clips longer ones. */
export const MAX_ERROR_LENGTH = 1 * KiB
/**
 * Bytes of one response frame other than a chunk (in practice: a record). Records are bounded by
 * the field caps below; this bounds the frame before it is decoded at all.
 */
export const MAX_RESPONSE_BYTES = 1 * MiB
/** Bytes of the msgpack map around a chunk's data (`{ t, id, data }`, a bin32 header). */
export const CHUNK_OVERHEAD_BYTES = 32

/** Record caps (node/types.ts `UrlRecord`). */
/** Characters of `record.error`: free text, clipped by the server. */
export const MAX_RECORD_ERROR_LENGTH = 4 * KiB
/** Characters of `record.redirectTo`: a normalized Location header, not yet through the scope's URL length guard. */
export const MAX_REDIRECT_LENGTH = 8 * KiB
/** Characters of the header-derived strings: `contentType`, `etag`, `lastModified`. */
export const MAX_HEADER_VALUE_LENGTH = 8 * KiB
/** Characters of a CID string (a CIDv1 sha-256 in base32 has 59). */
export const MAX_CID_LENGTH = 128
/** Entries of `record.fields`. */
export const MAX_FIELDS = 256
/** Characters of a field's name. */
export const MAX_FIELD_NAME_LENGTH = 256
/** Values of one field holding a list (the parser keeps at most 1000: node/parser.ts). */
export const MAX_FIELD_VALUES = 1000
/** Characters of one field value. */
export const MAX_FIELD_VALUE_LENGTH = 64 * KiB
/** Characters of all names and values of `record.fields` together (×3 bytes of UTF-8 still fits a frame). */
export const MAX_FIELDS_LENGTH = 256 * KiB
export const MAX_DEPTH_VALUE = 65_535
export const MAX_HTTP_STATUS = 999
export const MAX_COUNT_VALUE = 2 ** 32 - 1

/** Upper bounds of the configurable limits, so a typo can't disable a cap. */
export const MAX_URL_LENGTH = 64 * KiB
export const MAX_BODY_BYTES = 1024 * MiB
export const MAX_CONCURRENT = 4096

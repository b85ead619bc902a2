/**
 * Ids, defaults and hard caps of `/shoal/blocks/1.0.0`, each with its unit in its name or value.
 * Kept apart from index.ts so the modules of this folder can import them without an import cycle
 * through the index that re-exports them.
 */
import { DEFAULT_MAX_BODY_SIZE, KiB, MiB, second } from '../../node/constants.js'

/** Versioned protocol id (DESIGN.md §4). A new wire format is a new version, never an edit of this one. */
export const PROTOCOL = '/shoal/blocks/1.0.0'

/** Bytes of one block, at most: the largest body a peer stores (the fetcher's max body size). */
export const DEFAULT_MAX_BLOCK_BYTES = DEFAULT_MAX_BODY_SIZE
/** Block bytes one frame carries, at most; a larger block goes as a head and chunk frames. */
export const DEFAULT_MAX_CHUNK_BYTES = 256 * KiB
/** CIDs one `has` request may ask about; the client splits a longer list. */
export const DEFAULT_MAX_HAS_CIDS = 1024
/** Requests sent on one stream and not yet answered, at most (the window). */
export const DEFAULT_WINDOW = 32
/**
 * Block bytes in flight on one stream: put bytes sent and not yet acked (the client waits before it
 * writes more), and, on the server, put bytes received and not yet answered, and block bytes read
 * for gets and not yet sent. A single larger block is still sent, alone.
 */
export const DEFAULT_MAX_PENDING_BYTES = 32 * MiB
/** A request not answered this long after its first frame was written fails, and with it the stream. */
export const DEFAULT_REQUEST_TIMEOUT = 30 * second
/** An outbound stream with nothing in flight is closed after this long (shorter than the remote's read timeout). */
export const DEFAULT_IDLE_TIMEOUT = 30 * second
/** An inbound stream that makes no progress this long (no frame in or out, no store operation running) is closed. */
export const DEFAULT_READ_TIMEOUT = 60 * second
/** Inbound streams of this protocol on one connection. One is the norm; a few cover a reconnect. */
export const DEFAULT_MAX_INBOUND_STREAMS = 4

/**
 * Bytes one 'message' event of a stream may carry. yamux hands over a data frame whole, and a frame
 * is as large as the sender's window allows: up to its max stream window, 16 MiB. A sender with many
 * blocks queued fills it, so the length-prefixed reader must buffer that much beside a frame.
 */
export const MUXER_MESSAGE_BYTES = 16 * MiB

/** Hard caps on decoded values, whatever the configuration. */
export const MAX_ID = 2 ** 32 - 1
/** Characters of a CID string (a CIDv1 sha-256 in base32 has 59). */
export const MAX_CID_LENGTH = 128
/** Characters of an error reply's text. */
export const MAX_ERROR_LENGTH = 1024
/**
 * Bytes of a frame beyond its block data or CID list: the map, its keys, id, size and a CID (or an
 * error text of MAX_ERROR_LENGTH characters at up to 3 UTF-8 bytes).
 */
export const FRAME_OVERHEAD_BYTES = 4 * KiB
/** Upper bounds of the configurable limits, so a typo can't disable a cap. */
export const MAX_BLOCK_BYTES = 256 * MiB
export const MIN_CHUNK_BYTES = 1 * KiB
export const MAX_CHUNK_BYTES = 4 * MiB
export const MAX_HAS_CIDS = 16_384
export const MAX_WINDOW = 1024
export const MAX_PENDING_BYTES = 1024 * MiB

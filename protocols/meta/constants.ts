/**
 * Ids, defaults and hard caps of `/shoal/meta/1.0.0`, each with its unit in its name or value.
 * Kept apart from index.ts so the modules of this folder can import them without an import cycle
 * through the index that re-exports them.
 */
import { DEFAULT_MAX_URL_LENGTH as NODE_MAX_URL_LENGTH, KiB, MiB, millisecond, second } from '../../node/constants.js'

/** Versioned protocol id (DESIGN.md §4). A new wire format is a new version, never an edit of this one. */
export const PROTOCOL = '/shoal/meta/1.0.0'

/** Ops in one apply message, at most. */
export const DEFAULT_MAX_BATCH_OPS = 2000
/**
 * Bytes of one encoded message (the length prefix's `maxDataLength`). The largest record that
 * `validateRecord` lets through encodes to under 1 MiB (its fields alone may take 768 KiB of
 * UTF-8), so any valid record fits, in a batch of its own if need be.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 2 * MiB
/** Characters of one URL (entry, seen mark, referrer, record URL). The scope's URL length guard. */
export const DEFAULT_MAX_URL_LENGTH = NODE_MAX_URL_LENGTH
/** Characters of one frontier key. */
export const DEFAULT_MAX_KEY_LENGTH = 2048
/** Characters of one host (`host:port`, the partition key of DESIGN.md §2). */
export const DEFAULT_MAX_HOST_LENGTH = 300
/** Batches sent to one peer and not yet acked (the window). */
export const DEFAULT_WINDOW = 16
/** A batch that has not filled up is sent this long after its first op arrived. */
export const DEFAULT_FLUSH_DELAY = 10 * millisecond
/** A batch not acked this long after it was written fails, and with it the stream. */
export const DEFAULT_ACK_TIMEOUT = 30 * second
/** An outbound stream with nothing in flight is closed after this long (shorter than the remote's read timeout). */
export const DEFAULT_IDLE_TIMEOUT = 30 * second
/** An inbound stream silent this long (no message in, no ack out) is closed. */
export const DEFAULT_READ_TIMEOUT = 60 * second
/** Inbound streams of this protocol on one connection: one is the norm, a few cover a reconnect. */
export const DEFAULT_MAX_INBOUND_STREAMS = 4

/** Hard caps on decoded values, whatever the configuration. */
export const MAX_ID = 2 ** 32 - 1
export const MAX_DEPTH_VALUE = 65_535
export const MAX_REDIRECTS_VALUE = 255
/** Characters of a nack's error text. */
export const MAX_ERROR_LENGTH = 1024
/** Bytes of one ack or nack: a nack with MAX_ERROR_LENGTH characters of up to 3 UTF-8 bytes fits. */
export const MAX_REPLY_BYTES = 4 * KiB
/** Upper bounds of the configurable limits, so a typo can't disable a cap. */
export const MAX_WINDOW = 1024
export const MAX_BATCH_OPS = 65_535
export const MAX_MESSAGE_BYTES = 64 * MiB
/** Lower bound of `maxMessageBytes`. */
export const MIN_MESSAGE_BYTES = 16 * KiB
export const MAX_URL_LENGTH = 64 * KiB
export const MAX_KEY_LENGTH = 64 * KiB
export const MAX_HOST_LENGTH = 1024

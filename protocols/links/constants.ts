/**
 * Ids, defaults and hard caps of `/shoal/links/1.0.0`, each with its unit in its name or value.
 * Kept apart from index.ts so the modules of this folder can import them without an import cycle
 * through the index that re-exports them.
 */
import { DEFAULT_MAX_URL_LENGTH as NODE_MAX_URL_LENGTH, KiB, MiB, millisecond, second } from '../../node/constants.js'

/** Versioned protocol id (DESIGN.md §4). A new wire format is a new version, never an edit of this one. */
export const PROTOCOL = '/shoal/links/1.0.0'

/** Links in one batch message, at most. */
export const DEFAULT_MAX_BATCH_LINKS = 1000
/** Bytes of one encoded message (the length prefix's `maxDataLength`). */
export const DEFAULT_MAX_MESSAGE_BYTES = 1 * MiB
/** Characters of one URL (and of one referrer). The same default as the scope's URL length guard. */
export const DEFAULT_MAX_URL_LENGTH = NODE_MAX_URL_LENGTH
/** Batches sent to one peer and not yet acked, at most (the window). */
export const DEFAULT_WINDOW = 16
/**
 * A batch that has not filled up is sent this long after its first link arrived. Every batch costs
 * its sender and owner a fixed amount (a muxed, encrypted frame and a write each way for the batch,
 * its ack and yamux's window updates, and on the owner one durable frontier write): at 10 ms, 4 peers
 * crawling small pages sent ~3 links a batch and that cost was most of the cluster's own CPU
 * (BENCHMARKS.md §3). The wait only delays when a page counts as done, not its fetch: the host's
 * slot is freed when the response is read.
 */
export const DEFAULT_FLUSH_DELAY = 50 * millisecond
/** A batch not acked this long after it was written fails, and with it the stream. */
export const DEFAULT_ACK_TIMEOUT = 30 * second
/** Forwarding hops a batch may have taken (a peer that is not the owner forwards, DESIGN.md §2). */
export const DEFAULT_MAX_HOPS = 4
/** An outbound stream with nothing in flight is closed after this long (shorter than the remote's read timeout). */
export const DEFAULT_IDLE_TIMEOUT = 30 * second
/** An inbound stream silent this long (no message in, no ack out) is closed. */
export const DEFAULT_READ_TIMEOUT = 60 * second
/**
 * Inbound streams of this protocol on one connection. One is the norm; a few cover a reconnect.
 * Each may hold `window` decoded batches, so this also bounds what one peer can make us hold.
 */
export const DEFAULT_MAX_INBOUND_STREAMS = 4

/** Hard caps on decoded values, whatever the configuration. */
export const MAX_ID = 2 ** 32 - 1
export const MAX_HOPS_VALUE = 255
export const MAX_DEPTH_VALUE = 65_535
export const MAX_REDIRECTS_VALUE = 255
/** Characters of a nack's error text. */
export const MAX_ERROR_LENGTH = 1024
/** Bytes of one ack or nack: a nack with MAX_ERROR_LENGTH characters of up to 3 UTF-8 bytes fits. */
export const MAX_REPLY_BYTES = 4 * KiB
/** Upper bounds of the configurable limits, so a typo can't disable a cap. */
export const MAX_WINDOW = 1024
export const MAX_BATCH_LINKS = 65_535
export const MAX_MESSAGE_BYTES = 64 * MiB
export const MAX_URL_LENGTH = 64 * KiB

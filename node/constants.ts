/**
 * Every default of shoal, with its unit in its name. Options are resolved once against these with `??`.
 */
export const millisecond = 1
export const second = 1000 * millisecond
export const minute = 60 * second
export const hour = 60 * minute
export const day = 24 * hour
export const KiB = 1024
export const MiB = 1024 * KiB

export const VERSION = '0.1.0'
export const DEFAULT_CONTACT_URL = 'https://github.com/shoal-crawler/shoal'

/** Politeness on the real web: one connection per host, one second between requests. */
export const DEFAULT_DELAY = 1 * second
export const DEFAULT_HOST_CONCURRENCY = 1
/** A robots.txt Crawl-delay larger than this is capped (a hostile robots.txt must not stall a host forever). */
export const MAX_CRAWL_DELAY = 60 * second
/** Requests in flight over all hosts. */
export const DEFAULT_CONCURRENCY = 64

export const DEFAULT_MAX_DEPTH = 20
export const DEFAULT_MAX_PAGES_PER_HOST = 100_000
export const DEFAULT_MAX_URL_LENGTH = 2048
/** A path segment repeated more than this many times marks a trap (/a/b/a/b/a/b…). */
export const DEFAULT_MAX_PATH_REPEATS = 3
export const DEFAULT_MAX_PATH_SEGMENTS = 32
export const DEFAULT_MAX_LINKS_PER_PAGE = 5000

export const DEFAULT_CONNECT_TIMEOUT = 10 * second
export const DEFAULT_HEADERS_TIMEOUT = 15 * second
/** Longest silence between two body chunks. */
export const DEFAULT_BODY_TIMEOUT = 15 * second
/** Whole request, first byte sent to last byte read: stops a server that drips bytes. */
export const DEFAULT_REQUEST_TIMEOUT = 60 * second
export const DEFAULT_MAX_BODY_SIZE = 10 * MiB
export const DEFAULT_MAX_DECOMPRESSED_SIZE = 20 * MiB
export const DEFAULT_MAX_REDIRECTS = 5
export const DEFAULT_MAX_RETRIES = 2
export const DEFAULT_RETRY_BASE_DELAY = 1 * second
/** A Retry-After longer than this is capped. */
export const DEFAULT_MAX_RETRY_AFTER = 10 * minute

export const DEFAULT_ROBOTS_TTL = 1 * day
/** RFC 9309 §2.3.1.4: after a 5xx the crawler assumes complete disallow; retry the fetch after this. */
export const DEFAULT_ROBOTS_ERROR_TTL = 10 * minute
/** RFC 9309 §2.5: at least 500 KiB of a robots.txt must be parsed. */
export const DEFAULT_MAX_ROBOTS_SIZE = 500 * KiB

/** Seen-set filter in front of the on-disk set. */
export const DEFAULT_SEEN_FILTER_BITS = 2 ** 27
export const DEFAULT_SEEN_FILTER_HASHES = 7
export const DEFAULT_SEEN_CACHE_SIZE = 20_000
/** URLs a router remembers having delivered to their owner (skipped when met again): ~4 MB. */
export const DEFAULT_ROUTED_CACHE_SIZE = 32_768
/** URLs of one host kept in memory ahead of the fetcher; the rest stay on disk. */
export const DEFAULT_HOST_BUFFER = 128
/**
 * URLs kept in memory ahead of the fetcher over all hosts (each host still gets a few when it is
 * its turn, so with many hosts the bound is this plus MIN_HOST_REFILL per host with work).
 */
export const DEFAULT_MAX_BUFFERED_URLS = 16_384
export const MIN_HOST_REFILL = 4
export const DEFAULT_ROBOTS_CACHE_SIZE = 10_000

/** Write batching: flush after this many operations or this long, whichever comes first. */
export const DEFAULT_BATCH_MAX_OPS = 2000
/**
 * Operations queued for LevelDB (gathering, or cut and waiting for the batch before them) beyond
 * which a writer waits for a batch to land: if pages bring links faster than the disk takes them,
 * the fetchers slow down instead of memory growing.
 */
export const DEFAULT_BATCH_MAX_QUEUED_OPS = 50_000
/**
 * LevelDB table files kept open. Each is memory-mapped and the pages read from it count in the
 * resident set until it is closed: LevelDB's own default (1000) lets that grow with the database.
 */
export const DEFAULT_STORE_MAX_OPEN_FILES = 100
/** 0: a batch is cut at the end of the event loop's turn, or when the previous batch lands. */
export const DEFAULT_BATCH_MAX_WAIT = 0

export const DEFAULT_MAILBOX_SIZE = 256

/** Query parameters that only track the visitor; removed during normalization unless configured otherwise. */
export const DEFAULT_TRACKING_PARAMS = ['utm_*', 'fbclid', 'gclid', 'dclid', 'msclkid', 'mc_cid', 'mc_eid', '_ga', 'yclid', 'igshid']

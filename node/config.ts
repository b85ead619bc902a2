import { readFile } from 'node:fs/promises'
import * as C from './constants.js'
import { ConfigError } from './errors.js'
import { Scope, type ScopeMode } from './scope.js'
import { validateExtract } from './parser.js'
import { defaultParseWorkers } from './parse-pool.js'
import { DEFAULT_HEAP_GROWTH, heapGrowthFlag } from './gc-tuning.js'

/**
 * Every option of a peer's crawl, as a user sets it (config file, CLI flags or the API).
 * All are optional; `resolveConfig` fills in the defaults of constants.ts and validates.
 */
export interface CrawlConfig {
  /** Allow targets on private, loopback and link-local addresses. @default false */
  allowPrivate?: boolean
  /** Milliseconds between two requests to one host. @default 1000 */
  delay?: number
  /** Connections per host. @default 1 */
  hostConcurrency?: number
  /** Requests in flight over all hosts. @default 64 */
  concurrency?: number
  /** Ignore a robots.txt Crawl-delay (the configured delay still holds). @default false */
  ignoreCrawlDelay?: boolean
  /** Obey robots.txt. @default true */
  robots?: boolean
  /** Largest Crawl-delay honoured, ms. @default 60000 */
  maxCrawlDelay?: number
  /** Link hops from a seed. @default 20 */
  maxDepth?: number
  /** URLs admitted per host. @default 100000 */
  maxPagesPerHost?: number
  /** Pages fetched in all; the crawl stops admitting new URLs beyond it. @default Infinity */
  maxPages?: number
  maxUrlLength?: number
  maxPathRepeats?: number
  maxPathSegments?: number
  maxLinksPerPage?: number
  /** 'host' (same host:port as a seed), 'domain' (same registrable domain), 'any'. @default 'host' */
  scope?: ScopeMode
  /** Regular expressions; when given, a URL must match one. */
  include?: string[]
  /** Regular expressions; a URL that matches one is not crawled. */
  exclude?: string[]
  /** Query parameters removed during normalization (names or `prefix*`). @default DEFAULT_TRACKING_PARAMS */
  stripParams?: string[]
  connectTimeout?: number
  headersTimeout?: number
  bodyTimeout?: number
  requestTimeout?: number
  maxBodySize?: number
  maxDecompressedSize?: number
  maxRedirects?: number
  maxRetries?: number
  retryBaseDelay?: number
  maxRetryAfter?: number
  robotsTtl?: number
  robotsErrorTtl?: number
  maxRobotsSize?: number
  /** Re-fetch (conditionally) a URL met again this long after it was fetched, ms. @default never */
  recrawlAfter?: number
  /** Contact URL in the User-Agent. */
  contact?: string
  /** Replace the whole User-Agent. */
  userAgent?: string
  /** Field name → CSS selector (`sel@attr` for an attribute), stored with each HTML page's record. */
  extract?: Record<string, string>
  /** Bits of the seen set's Bloom filter (fixed memory: 2^27 = 16 MiB; 1 % false positives at ~14M URLs). */
  seenFilterBits?: number
  /** Recent seen-set answers kept in memory (the router skips most repeats before they get here). @default 20000 */
  seenCacheSize?: number
  /**
   * URLs a peer remembers having delivered to their owner; met again they are skipped before the
   * scope check and the wire. Each parse thread keeps as many of the links it handed on, and drops
   * them where it finds them again. 0 turns both off. @default 32768
   */
  routedCacheSize?: number
  /** URLs of one host kept in memory ahead of the fetcher. @default 128 */
  hostBuffer?: number
  /** URLs kept in memory ahead of the fetcher over all hosts. @default 16384 */
  maxBufferedUrls?: number
  robotsCacheSize?: number
  batchMaxOps?: number
  batchMaxWait?: number
  /** Operations waiting for the disk beyond which writers (and so the fetchers) wait. @default 50000 */
  batchMaxQueued?: number
  /** LevelDB table files kept open (memory-mapped: what is read of them stays resident). @default 100 */
  storeMaxOpenFiles?: number
  /**
   * Worker threads that parse pages (decode, tokenize, resolve links); 0 parses on the main thread.
   * On a peer with a core to spare the parse, the largest share of a page's CPU, runs beside the
   * fetching, routing and writing (bench/hot-path.ts, bench/single-peer.ts); peers that share a
   * machine (a local cluster) already use its cores and parse inline.
   * @default cores − 1, at most 4
   */
  parseWorkers?: number
  /**
   * How far V8 lets the heap grow past what its last full collection kept, percent; 0 leaves V8's
   * own rule (up to 4×). Process-wide: the CLI applies it when a command starts; code that makes a
   * `Peer` or calls `crawl()` calls `applyHeapGrowth` itself (node/gc-tuning.ts).
   * @default 100
   */
  heapGrowth?: number
}

export type ResolvedConfig = Required<Omit<CrawlConfig, 'userAgent' | 'extract' | 'recrawlAfter' | 'include' | 'exclude'>> &
Pick<CrawlConfig, 'userAgent' | 'extract' | 'include' | 'exclude'> & { recrawlAfter: number }

type Kind = 'bool' | 'int' | 'posint' | 'num' | 'string' | 'strings' | 'scope' | 'map'

/** The schema: each option's kind. Also the list of keys a config file may hold. */
export const CRAWL_OPTIONS: Record<keyof CrawlConfig, Kind> = {
  allowPrivate: 'bool',
  delay: 'int',
  hostConcurrency: 'posint',
  concurrency: 'posint',
  ignoreCrawlDelay: 'bool',
  robots: 'bool',
  maxCrawlDelay: 'int',
  maxDepth: 'int',
  maxPagesPerHost: 'posint',
  maxPages: 'posint',
  maxUrlLength: 'posint',
  maxPathRepeats: 'posint',
  maxPathSegments: 'posint',
  maxLinksPerPage: 'int',
  scope: 'scope',
  include: 'strings',
  exclude: 'strings',
  stripParams: 'strings',
  connectTimeout: 'posint',
  headersTimeout: 'posint',
  bodyTimeout: 'posint',
  requestTimeout: 'posint',
  maxBodySize: 'posint',
  maxDecompressedSize: 'posint',
  maxRedirects: 'int',
  maxRetries: 'int',
  retryBaseDelay: 'int',
  maxRetryAfter: 'int',
  robotsTtl: 'int',
  robotsErrorTtl: 'int',
  maxRobotsSize: 'posint',
  recrawlAfter: 'int',
  contact: 'string',
  userAgent: 'string',
  extract: 'map',
  seenFilterBits: 'posint',
  seenCacheSize: 'int',
  routedCacheSize: 'int',
  hostBuffer: 'posint',
  maxBufferedUrls: 'posint',
  robotsCacheSize: 'posint',
  batchMaxOps: 'posint',
  batchMaxWait: 'int',
  batchMaxQueued: 'posint',
  storeMaxOpenFiles: 'posint',
  parseWorkers: 'int',
  heapGrowth: 'int'
}

const what: Record<Kind, string> = {
  bool: 'true or false',
  int: 'a non-negative integer',
  posint: 'a positive integer',
  num: 'a non-negative number',
  string: 'a string',
  strings: 'a list of strings',
  scope: "one of 'host', 'domain', 'any'",
  map: 'a map of field name to CSS selector'
}

function valid (kind: Kind, v: unknown): boolean {
  switch (kind) {
    case 'bool': return typeof v === 'boolean'
    case 'int': return typeof v === 'number' && Number.isInteger(v) && v >= 0
    case 'posint': return typeof v === 'number' && ((Number.isInteger(v) && v > 0) || v === Infinity)
    case 'num': return typeof v === 'number' && Number.isFinite(v) && v >= 0
    case 'string': return typeof v === 'string' && v.length > 0
    case 'strings': return Array.isArray(v) && v.every(s => typeof s === 'string')
    case 'scope': return v === 'host' || v === 'domain' || v === 'any'
    case 'map': return v != null && typeof v === 'object' && !Array.isArray(v) &&
      Object.values(v).every(s => typeof s === 'string' && s.length > 0)
  }
}

/**
 * Check a partial config: unknown keys and values of the wrong kind are rejected with a message
 * that names the key, what it must be and what it was. `where` prefixes the message (a file name).
 */
export function validateConfig (input: Record<string, unknown>, where = 'config'): CrawlConfig {
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue
    const kind = (CRAWL_OPTIONS as Record<string, Kind | undefined>)[key]
    if (kind == null) {
      throw new ConfigError(`${where}: unknown option "${key}" (known: ${Object.keys(CRAWL_OPTIONS).join(', ')})`)
    }
    if (!valid(kind, value)) {
      throw new ConfigError(`${where}: ${key} must be ${what[kind]}, got ${JSON.stringify(value)}`)
    }
  }
  return input as CrawlConfig
}

export function resolveConfig (init: CrawlConfig = {}): ResolvedConfig {
  validateConfig(init as Record<string, unknown>)
  if (init.heapGrowth !== undefined) heapGrowthFlag(init.heapGrowth)
  if (init.extract != null) validateExtract(init.extract)
  // Compiles include/exclude: a bad pattern is refused here, before anything is opened.
  new Scope({ include: init.include, exclude: init.exclude })
  return {
    allowPrivate: init.allowPrivate ?? false,
    delay: init.delay ?? C.DEFAULT_DELAY,
    hostConcurrency: init.hostConcurrency ?? C.DEFAULT_HOST_CONCURRENCY,
    concurrency: init.concurrency ?? C.DEFAULT_CONCURRENCY,
    ignoreCrawlDelay: init.ignoreCrawlDelay ?? false,
    robots: init.robots ?? true,
    maxCrawlDelay: init.maxCrawlDelay ?? C.MAX_CRAWL_DELAY,
    maxDepth: init.maxDepth ?? C.DEFAULT_MAX_DEPTH,
    maxPagesPerHost: init.maxPagesPerHost ?? C.DEFAULT_MAX_PAGES_PER_HOST,
    maxPages: init.maxPages ?? Infinity,
    maxUrlLength: init.maxUrlLength ?? C.DEFAULT_MAX_URL_LENGTH,
    maxPathRepeats: init.maxPathRepeats ?? C.DEFAULT_MAX_PATH_REPEATS,
    maxPathSegments: init.maxPathSegments ?? C.DEFAULT_MAX_PATH_SEGMENTS,
    maxLinksPerPage: init.maxLinksPerPage ?? C.DEFAULT_MAX_LINKS_PER_PAGE,
    scope: init.scope ?? 'host',
    include: init.include,
    exclude: init.exclude,
    stripParams: init.stripParams ?? C.DEFAULT_TRACKING_PARAMS,
    connectTimeout: init.connectTimeout ?? C.DEFAULT_CONNECT_TIMEOUT,
    headersTimeout: init.headersTimeout ?? C.DEFAULT_HEADERS_TIMEOUT,
    bodyTimeout: init.bodyTimeout ?? C.DEFAULT_BODY_TIMEOUT,
    requestTimeout: init.requestTimeout ?? C.DEFAULT_REQUEST_TIMEOUT,
    maxBodySize: init.maxBodySize ?? C.DEFAULT_MAX_BODY_SIZE,
    maxDecompressedSize: init.maxDecompressedSize ?? C.DEFAULT_MAX_DECOMPRESSED_SIZE,
    maxRedirects: init.maxRedirects ?? C.DEFAULT_MAX_REDIRECTS,
    maxRetries: init.maxRetries ?? C.DEFAULT_MAX_RETRIES,
    retryBaseDelay: init.retryBaseDelay ?? C.DEFAULT_RETRY_BASE_DELAY,
    maxRetryAfter: init.maxRetryAfter ?? C.DEFAULT_MAX_RETRY_AFTER,
    robotsTtl: init.robotsTtl ?? C.DEFAULT_ROBOTS_TTL,
    robotsErrorTtl: init.robotsErrorTtl ?? C.DEFAULT_ROBOTS_ERROR_TTL,
    maxRobotsSize: init.maxRobotsSize ?? C.DEFAULT_MAX_ROBOTS_SIZE,
    recrawlAfter: init.recrawlAfter ?? Infinity,
    contact: init.contact ?? C.DEFAULT_CONTACT_URL,
    userAgent: init.userAgent,
    extract: init.extract,
    seenFilterBits: init.seenFilterBits ?? C.DEFAULT_SEEN_FILTER_BITS,
    seenCacheSize: init.seenCacheSize ?? C.DEFAULT_SEEN_CACHE_SIZE,
    routedCacheSize: init.routedCacheSize ?? C.DEFAULT_ROUTED_CACHE_SIZE,
    hostBuffer: init.hostBuffer ?? C.DEFAULT_HOST_BUFFER,
    maxBufferedUrls: init.maxBufferedUrls ?? C.DEFAULT_MAX_BUFFERED_URLS,
    robotsCacheSize: init.robotsCacheSize ?? C.DEFAULT_ROBOTS_CACHE_SIZE,
    batchMaxOps: init.batchMaxOps ?? C.DEFAULT_BATCH_MAX_OPS,
    batchMaxWait: init.batchMaxWait ?? C.DEFAULT_BATCH_MAX_WAIT,
    batchMaxQueued: init.batchMaxQueued ?? C.DEFAULT_BATCH_MAX_QUEUED_OPS,
    storeMaxOpenFiles: init.storeMaxOpenFiles ?? C.DEFAULT_STORE_MAX_OPEN_FILES,
    parseWorkers: init.parseWorkers ?? defaultParseWorkers(),
    heapGrowth: init.heapGrowth ?? DEFAULT_HEAP_GROWTH
  }
}

/** Read a YAML config file; its top-level `crawl:` map holds CrawlConfig keys. */
export async function loadConfigFile (path: string): Promise<{ crawl: CrawlConfig, raw: Record<string, unknown> }> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err: any) {
    throw new ConfigError(`${path}: cannot read config file (${err.code ?? err.message})`)
  }
  // Loaded here, not with this module: most commands read no config file.
  const { parse: parseYaml } = await import('yaml')
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (err: any) {
    throw new ConfigError(`${path}: not valid YAML: ${String(err.message).split('\n')[0]}`)
  }
  if (doc == null) doc = {}
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`${path}: the top level must be a map of keys, got ${Array.isArray(doc) ? 'a list' : typeof doc}`)
  }
  const raw = doc as Record<string, unknown>
  const crawl = raw.crawl ?? {}
  if (typeof crawl !== 'object' || crawl == null || Array.isArray(crawl)) {
    throw new ConfigError(`${path}: crawl must be a map of crawl options`)
  }
  return { crawl: validateConfig(crawl as Record<string, unknown>, `${path}: crawl`), raw }
}

/** The keys of a cluster file besides `crawl:` (all optional; flags override them). */
export interface ClusterFile {
  cluster?: string
  data?: string
  api?: string
  listen?: string[]
  bootstrap?: string[]
  seeds?: string[]
  replicas?: number
  crawl?: CrawlConfig
}

const CLUSTER_KEYS: Record<keyof ClusterFile, 'string' | 'strings' | 'crawl' | 'posint'> = {
  cluster: 'string', data: 'string', api: 'string', listen: 'strings', bootstrap: 'strings', seeds: 'strings', replicas: 'posint', crawl: 'crawl'
}

/** Read and check a cluster file (see cluster.yml): every key, and what each must be. */
export async function loadClusterFile (path: string): Promise<ClusterFile> {
  const { crawl, raw } = await loadConfigFile(path)
  const out: ClusterFile = { crawl }
  for (const [key, value] of Object.entries(raw)) {
    const kind = (CLUSTER_KEYS as Record<string, string | undefined>)[key]
    if (kind == null) throw new ConfigError(`${path}: unknown key "${key}" (known: ${Object.keys(CLUSTER_KEYS).join(', ')})`)
    if (kind === 'crawl') continue
    if (kind === 'posint') {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new ConfigError(`${path}: ${key} must be a positive integer, got ${JSON.stringify(value)}`)
      ;(out as Record<string, unknown>)[key] = value
      continue
    }
    const list = typeof value === 'string' && kind === 'strings' ? [value] : value
    if (kind === 'string' ? typeof list !== 'string' || list === '' : !Array.isArray(list) || !list.every(v => typeof v === 'string')) {
      throw new ConfigError(`${path}: ${key} must be ${kind === 'string' ? 'a string' : 'a list of strings'}, got ${JSON.stringify(value)}`)
    }
    ;(out as Record<string, unknown>)[key] = list
  }
  return out
}

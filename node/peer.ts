import { randomBytes } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import debug from 'debug'
import { BlockStore } from './blocks.js'
import { resolveConfig, type CrawlConfig, type ResolvedConfig } from './config.js'
import { Store, type BatchOp } from './db.js'
import { isHtml } from './decode.js'
import { Fetcher, UndiciClient, type FetchResult } from './fetcher.js'
import { Frontier, type Lease, type Replicator } from './frontier.js'
import { Mailbox } from './mailbox.js'
import { MetadataStore } from './metadata.js'
import { normalizeUrl } from './normalize.js'
import type { ParseOptions } from './parser.js'
import { ParsePool } from './parse-pool.js'
import { Robots } from './robots.js'
import { disallowAll } from './robots-txt.js'
import { hostKeyFast, isPrivateHostKey, ownAll, Router, type LinkTransport, type Ownership } from './router.js'
import { Scope } from './scope.js'
import type { Clock, HttpClient, Link, ParsedPage, RecordStatus, UrlRecord } from './types.js'
import { systemClock } from './types.js'
import * as C from './constants.js'

const log = debug('shoal:peer')

export interface PeerInit {
  /** Where everything of this peer lives (LevelDB). */
  dataDir: string
  config?: CrawlConfig
  /** This peer's id; a random one is made and kept in the data dir when absent. */
  peerId?: string
  /** The network; undici when absent. */
  http?: HttpClient
  clock?: Clock
  /** Who owns which host (the ring, in a cluster). */
  ownership?: (self: string) => Ownership
  transport?: LinkTransport
  /** Copies every admission and finished page to the host's replicas (the cluster's replication). */
  replicator?: Replicator
  /** Whether this peer crawls a host now (default: it is the host's owner). */
  owns?: (host: string) => boolean
}

export interface SeedResult {
  accepted: string[]
  rejected: Array<{ url: string, reason: string }>
}

export interface PeerStats {
  peerId: string
  queued: number
  inflight: number
  hosts: number
  admitted: number
  done: number
  byStatus: Partial<Record<RecordStatus, number>>
  dropped: Record<string, number>
  outOfScope: Record<string, number>
  requests: number
  robotsFetches: number
  wireBytes: number
  bytesRouted: number
  messagesRouted: number
  /**
   * Links skipped because this peer had delivered them to their owner a moment ago, or its parse
   * threads had handed them on (these are not in the router's `linksIn`).
   */
  alreadyRouted: number
  seenDiskReads: number
  seenFilterSkips: number
  /** Resident set of this process, and the JavaScript heap in use (bytes). */
  rssBytes: number
  heapUsedBytes: number
}

interface FetchedPage { lease: Lease, result: FetchResult, previous?: UrlRecord }

/**
 * One shoal peer: its actors wired together and started in a fixed order (storage first, the
 * fetch loops last), stopped in reverse.
 *
 *   frontier ──lease──▶ fetcher loops ──page──▶ [pages mailbox] ──▶ processor loops
 *      ▲                                                              │ block + record
 *      └──────────── router (scope, owner) ◀────── links ─────────────┘
 *
 * A page is done (its frontier entry removed, its record written, atomically) only after the
 * router has had its links accepted by their owners.
 */
export class Peer {
  readonly config: ResolvedConfig
  readonly dataDir: string
  peerId: string
  store!: Store
  frontier!: Frontier
  fetcher!: Fetcher
  robots!: Robots
  router!: Router
  scope!: Scope
  blocks!: BlockStore
  metadata!: MetadataStore
  private readonly init: PeerInit
  private readonly clock: Clock
  private http?: HttpClient
  private pages!: Mailbox<FetchedPage>
  private parser!: ParsePool
  private parseOptions!: ParseOptions
  private loops: Array<Promise<void>> = []
  private abort = new AbortController()
  private running = false
  private seeds: string[] = []

  constructor (init: PeerInit) {
    this.init = init
    this.config = resolveConfig(init.config)
    this.dataDir = init.dataDir
    this.peerId = init.peerId ?? ''
    this.clock = init.clock ?? systemClock
  }

  get userAgent (): string {
    if (this.config.userAgent != null) return this.config.userAgent
    return `shoal/${C.VERSION} (peer ${shortId(this.peerId)}; +${this.config.contact})`
  }

  async start (): Promise<void> {
    if (this.running) return
    const cfg = this.config
    await mkdir(this.dataDir, { recursive: true })
    this.store = new Store(storePath(this.dataDir), { clock: this.clock, batchMaxOps: cfg.batchMaxOps, batchMaxWait: cfg.batchMaxWait, batchMaxQueued: cfg.batchMaxQueued, maxOpenFiles: cfg.storeMaxOpenFiles })
    await this.store.open().catch((err: any) => {
      const why = String(err?.cause?.message ?? err.message)
      if (/\bLOCK\b|lock hold|already held|Resource temporarily unavailable/i.test(why)) {
        throw new Error(`data dir ${this.dataDir} is in use by another shoal process (${why})`, { cause: err })
      }
      throw new Error(`cannot open the store in ${this.dataDir}: ${why}`, { cause: err })
    })
    if (this.peerId === '') {
      this.peerId = (await this.store.get<string>('state', 'peerId')) ?? randomBytes(16).toString('hex')
      await this.store.writeNow([{ type: 'put', sublevel: 'state', key: 'peerId', value: this.peerId }])
    }
    this.seeds = (await this.store.get<string[]>('state', 'seeds')) ?? []
    this.scope = new Scope({
      mode: cfg.scope,
      include: cfg.include,
      exclude: cfg.exclude,
      maxUrlLength: cfg.maxUrlLength,
      maxPathRepeats: cfg.maxPathRepeats,
      maxPathSegments: cfg.maxPathSegments
    }, this.seeds)
    this.http = this.init.http ?? new UndiciClient({
      connections: cfg.hostConcurrency,
      connectTimeout: cfg.connectTimeout,
      headersTimeout: cfg.headersTimeout,
      bodyTimeout: cfg.bodyTimeout,
      allowPrivate: cfg.allowPrivate
    })
    this.fetcher = new Fetcher({ http: this.http }, {
      clock: this.clock,
      userAgent: this.userAgent,
      allowPrivate: cfg.allowPrivate,
      requestTimeout: cfg.requestTimeout,
      maxBodySize: cfg.maxBodySize,
      maxDecompressedSize: cfg.maxDecompressedSize,
      maxRetries: cfg.maxRetries,
      retryBaseDelay: cfg.retryBaseDelay,
      maxRetryAfter: cfg.maxRetryAfter
    })
    this.robots = new Robots({ store: this.store, fetcher: this.fetcher }, {
      clock: this.clock,
      ttl: cfg.robotsTtl,
      errorTtl: cfg.robotsErrorTtl,
      maxSize: cfg.maxRobotsSize,
      cacheSize: cfg.robotsCacheSize
    })
    const ownership = (this.init.ownership ?? ownAll)(this.peerId)
    this.frontier = new Frontier({
      store: this.store,
      robots: cfg.robots ? this.robots : undefined,
      ownership: this.init.ownership == null ? undefined : { owns: this.init.owns ?? ((host) => ownership.owner(host) === this.peerId) },
      replicator: this.init.replicator
    }, {
      keyTag: this.init.ownership == null ? '' : shortId(this.peerId),
      clock: this.clock,
      delay: cfg.delay,
      hostConcurrency: cfg.hostConcurrency,
      ignoreCrawlDelay: cfg.ignoreCrawlDelay,
      maxCrawlDelay: cfg.maxCrawlDelay,
      maxDepth: cfg.maxDepth,
      maxPagesPerHost: cfg.maxPagesPerHost,
      maxPages: cfg.maxPages,
      recrawlAfter: cfg.recrawlAfter,
      hostBuffer: cfg.hostBuffer,
      maxBufferedUrls: cfg.maxBufferedUrls,
      seenFilterBits: cfg.seenFilterBits,
      seenCacheSize: cfg.seenCacheSize
    })
    this.blocks = new BlockStore(this.store, blocksPath(this.dataDir))
    await this.blocks.open()
    this.metadata = new MetadataStore(this.store)
    this.router = new Router({
      frontier: this.frontier,
      scope: this.scope,
      ownership,
      transport: this.init.transport
    }, { allowPrivate: cfg.allowPrivate, routedCacheSize: cfg.routedCacheSize, recrawlAfter: cfg.recrawlAfter, now: () => this.clock.now() })
    await this.frontier.start()
    this.parseOptions = { stripParams: cfg.stripParams, maxLinks: cfg.maxLinksPerPage, maxHrefLength: cfg.maxUrlLength, extract: cfg.extract }
    this.parser = new ParsePool(cfg.parseWorkers, { size: cfg.routedCacheSize, recrawlAfter: cfg.recrawlAfter })
    await this.parser.start()
    this.abort = new AbortController()
    this.pages = new Mailbox<FetchedPage>(Math.max(8, cfg.concurrency))
    this.running = true
    for (let i = 0; i < cfg.concurrency; i++) this.loops.push(this.processLoop())
    for (let i = 0; i < cfg.concurrency; i++) this.loops.push(this.fetchLoop())
    log('peer %s started on %s', this.peerId, this.dataDir)
  }

  /**
   * Stop: no new fetches; fetches in flight are abandoned (their URLs stay queued on disk and are
   * fetched again on the next start); pages already fetched are finished; storage is closed last.
   */
  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.abort.abort()
    this.router.stop()
    await this.frontier.stop()
    this.pages.close()
    await Promise.allSettled(this.loops)
    this.loops = []
    await this.parser.stop()
    await this.http?.close().catch(() => {})
    await this.blocks.close()
    await this.store.close()
  }

  /** Add seed URLs: they define the crawl's scope (same host by default) and enter at depth 0. */
  async seed (urls: string[]): Promise<SeedResult> {
    const result: SeedResult = { accepted: [], rejected: [] }
    const links: Link[] = []
    for (const raw of urls) {
      const url = normalizeUrl(raw, undefined, { stripParams: this.config.stripParams })
      if (url == null) {
        result.rejected.push({ url: raw, reason: 'not an absolute http(s) URL' })
        continue
      }
      if (!this.config.allowPrivate && isPrivateHostKey(hostKeyFast(url))) {
        result.rejected.push({ url: raw, reason: 'a private, loopback or link-local address: set allowPrivate (--allow-private) to crawl it' })
        continue
      }
      this.scope.addSeed(url)
      if (!this.seeds.includes(url)) this.seeds.push(url)
      result.accepted.push(url)
      links.push({ url, depth: 0 })
    }
    await this.store.writeNow([{ type: 'put', sublevel: 'state', key: 'seeds', value: this.seeds }])
    await this.router.route(links, { skipScope: true })
    return result
  }

  /** The seeds this peer knows (its own and the cluster's): they define the scope. */
  get seedList (): readonly string[] {
    return this.seeds
  }

  /** Widen the scope with seeds given to another peer of the cluster (they are not queued here). */
  async addScopeSeeds (urls: string[]): Promise<void> {
    let added = false
    for (const url of urls) {
      if (this.seeds.includes(url)) continue
      this.scope.addSeed(url)
      this.seeds.push(url)
      added = true
    }
    if (!added) return
    // Links refused as out of scope until now may be in it: the parse threads remembered them.
    this.parser.forgetRepeats()
    await this.store.writeNow([{ type: 'put', sublevel: 'state', key: 'seeds', value: this.seeds }])
  }

  /** Resolves when nothing is queued or in flight. */
  async whenIdle (): Promise<void> {
    await this.frontier.whenIdle()
  }

  stats (): PeerStats {
    const c = this.frontier.counters
    return {
      peerId: this.peerId,
      queued: this.frontier.queued,
      inflight: this.frontier.inflight,
      hosts: this.frontier.hostCount,
      admitted: c.admitted,
      done: c.done,
      byStatus: { ...c.byStatus },
      dropped: { ...c.dropped },
      outOfScope: { ...this.router.stats.outOfScope },
      requests: this.fetcher.requests,
      robotsFetches: this.robots.fetches,
      wireBytes: this.fetcher.wireBytes,
      bytesRouted: this.router.stats.bytesRouted,
      messagesRouted: this.router.stats.messagesRouted,
      alreadyRouted: this.router.stats.alreadyRouted,
      seenDiskReads: this.frontier.seen.diskReads,
      seenFilterSkips: this.frontier.seen.filterSkips,
      rssBytes: process.memoryUsage.rss(),
      heapUsedBytes: process.memoryUsage().heapUsed
    }
  }

  private async fetchLoop (): Promise<void> {
    const signal = this.abort.signal
    while (this.running) {
      const lease = await this.frontier.take()
      if (lease == null) return
      // Whether the lease was handed on (released, retried or queued for processing): past that,
      // an error is not this lease's to recover.
      let handedOn = false
      try {
        if (lease.kind === 'robots') {
          const rules = await this.robots.fetch(lease.host, lease.origin, signal)
          if (!this.running) return
          handedOn = true
          this.frontier.releaseRobots(lease, rules)
          continue
        }
        let previous: UrlRecord | undefined
        if (this.config.recrawlAfter !== Infinity) previous = await this.metadata.get(lease.entry.url)
        const result = await this.fetcher.fetch({
          url: lease.entry.url,
          attempts: lease.attempts,
          etag: previous?.etag,
          lastModified: previous?.lastModified,
          signal
        })
        // Shutting down: an aborted fetch is not a failure of the URL; it stays queued on disk.
        if (!this.running) return
        handedOn = true
        await this.handOn(lease, result, previous)
      } catch (err: any) {
        if (!this.running) return
        log.extend('error')('fetch loop: %s %s', lease.kind === 'robots' ? `robots.txt of ${lease.host}` : lease.entry.url, err.stack ?? err.message)
        if (!handedOn) await this.recover(lease, `internal error: ${String(err?.message ?? err)}`)
      }
    }
  }

  /**
   * A lease whose fetch threw — a bug or a storage error, not the server's answer — is not left
   * held (the crawl would never be idle): its host's robots.txt counts as unavailable, as when its
   * server fails (RFC 9309: disallow everything); its page is fetched again like after a network
   * failure (`maxRetries`), then recorded as failed with the error.
   */
  private async recover (lease: Lease, error: string): Promise<void> {
    try {
      if (lease.kind === 'robots') {
        this.frontier.releaseRobots(lease, disallowAll)
        return
      }
      await this.handOn(lease, this.fetcher.failure(lease.entry.url, lease.attempts, error))
    } catch (err: any) {
      if (this.running) log.extend('error')('recovering %s: %s', lease.kind === 'robots' ? lease.host : lease.entry.url, err.message)
    }
  }

  /** A page's request is over: free its host's slot, then fetch it again later or queue it for processing. */
  private async handOn (lease: Lease, result: FetchResult, previous?: UrlRecord): Promise<void> {
    this.frontier.fetched(lease)
    if (result.outcome === 'retry') {
      this.frontier.retry(lease, result.retryAt ?? this.clock.now())
      return
    }
    await this.pages.put({ lease, result, previous })
  }

  private async processLoop (): Promise<void> {
    while (true) {
      const page = await this.pages.take()
      if (page == null) return
      try {
        await this.process(page)
      } catch (err: any) {
        // The URL stays queued on disk; it is fetched again on the next start.
        log.extend('error')('processing %s: %s', page.lease.entry.url, err.stack ?? err.message)
      }
    }
  }

  /**
   * The links of an HTML body (none for other types), with the page's parse facts set on its record.
   * Not an async function, nor is `storeAndParse`: a suspended frame would hold the body (see
   * `ParsePool.parse`).
   */
  private parseLinks (body: Uint8Array, contentType: string | undefined, entry: Lease['entry'], record: UrlRecord, reload?: () => Promise<Uint8Array>): Promise<Link[]> {
    if (body.byteLength === 0 || !isHtml(contentType, body)) return Promise.resolve([])
    const depth = entry.depth + 1
    // Links past maxDepth are not routed: the parse thread must not count them as handed on.
    const routed = depth <= this.config.maxDepth
    return this.linksOf(this.parser.parse(body, contentType, entry.url, this.parseOptions, routed ? this.clock.now() : undefined, reload), entry, record, depth, routed)
  }

  private async linksOf (parsing: Promise<ParsedPage>, entry: Lease['entry'], record: UrlRecord, depth: number, routed: boolean): Promise<Link[]> {
    try {
      const parsed = await parsing
      record.links = parsed.linkCount ?? parsed.links.length
      if (parsed.noindex) record.noindex = true
      if (parsed.fields != null) record.fields = parsed.fields
      if (parsed.repeats !== undefined && parsed.repeats > 0) this.router.skipped(parsed.repeats)
      if (!routed) return []
      return parsed.links.map(url => ({ url, depth, referrer: entry.url }))
    } catch (err: any) {
      record.error = `parse error: ${err.message}`
      return []
    }
  }

  /**
   * Store a fetched body and parse it. Neither the page's result nor the parse pool keeps the body
   * past its write and its hand-off to a parse thread: should that thread die, the pool reads it
   * back from the block store.
   */
  private storeAndParse (result: FetchResult, entry: Lease['entry'], record: UrlRecord): { staging: ReturnType<BlockStore['stage']>, parsing: Promise<Link[]> } {
    const body = result.body ?? new Uint8Array()
    result.body = undefined
    record.size = body.byteLength
    const staging = this.blocks.stage(body)
    const reload = async (): Promise<Uint8Array> => {
      const { cid, loc } = await staging
      return await this.blocks.read(cid, loc)
    }
    return { staging, parsing: this.parseLinks(body, result.contentType, entry, record, reload) }
  }

  /** Store, parse, route links, then record the page as done. */
  private async process ({ lease, result, previous }: FetchedPage): Promise<void> {
    const cfg = this.config
    const { entry } = lease
    const record: UrlRecord = {
      url: entry.url,
      status: 'failed',
      httpStatus: result.httpStatus,
      fetchedAt: result.fetchedAt,
      contentType: result.contentType,
      etag: result.etag,
      lastModified: result.lastModified,
      depth: entry.depth,
      referrer: entry.referrer,
      attempts: lease.attempts + 1,
      error: result.error
    }
    const ops: BatchOp[] = []
    let links: Link[] = []
    switch (result.outcome) {
      case 'ok': {
        record.status = 'fetched'
        const { staging, parsing } = this.storeAndParse(result, entry, record)
        const { cid, op } = await staging
        if (op != null) ops.push(op)
        record.cid = cid
        links = await parsing
        break
      }
      case 'not-modified': {
        record.status = 'not-modified'
        record.cid = previous?.cid
        record.size = previous?.size
        record.contentType = previous?.contentType ?? record.contentType
        // Unchanged page, same links: parse the stored body so its links are met again (and re-crawled when due).
        const body = previous?.cid != null ? await this.blocks.get(previous.cid).catch(() => undefined) : undefined
        if (body != null) links = await this.parseLinks(body, record.contentType, entry, record)
        break
      }
      case 'redirect': {
        record.status = 'redirect'
        const target = normalizeUrl(result.location ?? '', entry.url, { stripParams: cfg.stripParams })
        if (target == null) {
          record.error = `redirect to an invalid or non-http(s) location: ${String(result.location).slice(0, 200)}`
          break
        }
        record.redirectTo = target
        const hops = (entry.redirects ?? 0) + 1
        if (hops > cfg.maxRedirects) {
          record.error = `too many redirects (${hops} > ${cfg.maxRedirects})`
        } else {
          links = [{ url: target, depth: entry.depth, referrer: entry.url, redirects: hops }]
        }
        break
      }
      case 'http-error':
        record.status = 'http-error'
        break
      default:
        record.status = 'failed'
    }
    await this.router.route(links)
    ops.push(this.metadata.putOp(record))
    await this.frontier.complete(lease, ops, record.status, record.fetchedAt)
  }
}

/** The pack files of a data dir's block store. */
export function blocksPath (dataDir: string): string {
  return join(dataDir, 'blocks')
}

/** The LevelDB of a data dir (the dir also holds the peer's libp2p key). */
export function storePath (dataDir: string): string {
  return join(dataDir, 'db')
}

export function shortId (peerId: string): string {
  return peerId.length <= 8 ? peerId : peerId.slice(-8)
}

import debug from 'debug'
import type { BatchOp, Store } from './db.js'
import { MinHeap } from './heap.js'
import { hostKeyFast, originFast } from './router.js'
import { disallowAll, type RobotsRules } from './robots-txt.js'
import { SeenSet } from './seen.js'
import type { Clock, Link, RecordStatus } from './types.js'
import { systemClock } from './types.js'
import * as C from './constants.js'

const log = debug('shoal:frontier')

/** What the frontier keeps on disk for one queued URL. */
export interface FrontierEntry {
  url: string
  depth: number
  referrer?: string
  redirects?: number
}

/** A URL handed to the fetcher (or, `kind: 'robots'`, a host whose robots.txt must be fetched first). */
export interface Lease {
  kind: 'page' | 'robots'
  host: string
  /** scheme://host[:port] of the host. */
  origin: string
  key: string
  entry: FrontierEntry
  attempts: number
  /** The host's connection slot was given back (`fetched`). */
  released?: boolean
}

/** Robots rules as the frontier needs them: what is in memory now, and what the disk holds. */
export interface RobotsSource {
  cached(host: string): RobotsRules | undefined
  load(host: string, origin: string): Promise<RobotsRules | undefined>
}

export interface FrontierInit {
  clock?: Clock
  /** @default 1000 */
  delay?: number
  /** @default 1 */
  hostConcurrency?: number
  ignoreCrawlDelay?: boolean
  maxCrawlDelay?: number
  maxDepth?: number
  maxPagesPerHost?: number
  maxPages?: number
  /** Re-admit a URL met again this long after its fetch. @default Infinity */
  recrawlAfter?: number
  hostBuffer?: number
  /**
   * URLs kept in memory ahead of the fetcher over all hosts; the rest wait on disk. A host whose
   * turn comes still loads a few (MIN_HOST_REFILL), so none starves.
   * @default 16384
   */
  maxBufferedUrls?: number
  seenFilterBits?: number
  seenCacheSize?: number
  /**
   * Appended to every frontier key, so that keys made by different peers for one host (before and
   * after its owner changed) never collide. @default ''
   */
  keyTag?: string
}

export interface FrontierComponents {
  store: Store
  /** Absent: robots.txt is not obeyed. */
  robots?: RobotsSource
  /**
   * Which hosts this peer crawls now (the ring, in a cluster). A host it holds entries of but does
   * not own is not leased: its politeness is the owner's. Absent: every host.
   */
  ownership?: { owns(host: string): boolean }
  /**
   * Copies what this frontier makes durable to the host's replicas (the cluster's replication);
   * each call resolves once they have it, and `add` and `complete` wait for it. Absent: no copies.
   */
  replicator?: Replicator
}

/** What a queued entry, or a finished page, is on the wire to a replica. */
export interface ReplicatedEntry { host: string, key: string, entry: FrontierEntry }
export interface ReplicatedDone { host: string, key: string, url: string, fetchedAt: number, record?: Record<string, unknown> }

export interface Replicator {
  entries(entries: ReplicatedEntry[]): Promise<void>
  done(done: ReplicatedDone[]): Promise<void>
}

/** Totals kept on disk, so a resumed crawl reports the whole crawl. */
export interface FrontierCounters {
  admitted: number
  done: number
  byStatus: Partial<Record<RecordStatus, number>>
  dropped: Record<string, number>
}

interface Slot { key: string, entry: FrontierEntry, attempts: number }

interface HostState {
  host: string
  origin: string
  /** Entries of this host on disk: buffered, leased and not yet loaded. */
  queued: number
  /** Entries on disk after `loadedKey`, not yet in memory. */
  unloaded: number
  loadedKey: string
  buffer: Slot[]
  inflight: number
  nextAt: number
  admitted: number
  robots: 'unknown' | 'loading' | 'need-fetch' | 'fetching' | 'ready'
  rules?: RobotsRules
  delay: number
  inHeap: boolean
  refilling: boolean
}

const SEP = '\x00'
const seqKey = (host: string, seq: number, tag: string): string => host + SEP + seq.toString(36).padStart(11, '0') + (tag === '' ? '' : SEP + tag)

/**
 * The queue shard of the hosts this peer owns. On disk: one FIFO per host (`frontier` sublevel,
 * key host␀seq), per-host totals (`hosts`), the seen set (`seen`). In memory: a few URLs per host
 * ahead of the fetcher, and a min-heap of hosts by the time they may next be fetched, so picking
 * the next URL costs O(log hosts), never a scan. Politeness (delay, connections per host,
 * Crawl-delay, Retry-After) is enforced here, in one place, because all URLs of a host live here.
 *
 * A URL's entry leaves the disk only when its page is done (record written, its links admitted by
 * their owners) — a crash re-fetches at most what was in flight.
 */
export class Frontier {
  readonly seen: SeenSet
  private readonly store: Store
  private readonly robots?: RobotsSource
  private readonly clock: Clock
  private readonly delay: number
  private readonly hostConcurrency: number
  private readonly ignoreCrawlDelay: boolean
  private readonly maxCrawlDelay: number
  private readonly maxDepth: number
  private readonly maxPagesPerHost: number
  private readonly maxPages: number
  private readonly recrawlAfter: number
  private readonly hostBuffer: number
  private readonly maxBuffered: number
  /** Entries in every host's buffer together (bounded by `maxBuffered`, give or take MIN_HOST_REFILL a host). */
  private buffered = 0
  private readonly keyTag: string
  private readonly ownership?: { owns(host: string): boolean }
  private readonly replicator?: Replicator

  private readonly hosts = new Map<string, HostState>()
  /** Frontier keys of the leases out now, per host (a hand-off leaves them to finish here). */
  private readonly leasedKeys = new Map<string, Set<string>>()
  /** URLs being fetched now. */
  private readonly leasedUrls = new Set<string>()
  /** Hosts whose queue is being handed to another peer: nothing of theirs is leased or dropped meanwhile. */
  private readonly handing = new Set<string>()
  private readonly heap = new MinHeap<HostState>()
  private takers: Array<(lease: Lease | undefined) => void> = []
  private timer: unknown
  private timerAt = Infinity
  private seq = 0
  private queuedTotal = 0
  private addsInFlight = 0
  private leased = 0
  private idleWaiters: Array<() => void> = []
  private stopped = false
  readonly counters: FrontierCounters = { admitted: 0, done: 0, byStatus: {}, dropped: {} }

  constructor (components: FrontierComponents, init: FrontierInit = {}) {
    this.store = components.store
    this.robots = components.robots
    this.clock = init.clock ?? systemClock
    this.delay = init.delay ?? C.DEFAULT_DELAY
    this.hostConcurrency = init.hostConcurrency ?? C.DEFAULT_HOST_CONCURRENCY
    this.ignoreCrawlDelay = init.ignoreCrawlDelay ?? false
    this.maxCrawlDelay = init.maxCrawlDelay ?? C.MAX_CRAWL_DELAY
    this.maxDepth = init.maxDepth ?? C.DEFAULT_MAX_DEPTH
    this.maxPagesPerHost = init.maxPagesPerHost ?? C.DEFAULT_MAX_PAGES_PER_HOST
    this.maxPages = init.maxPages ?? Infinity
    this.recrawlAfter = init.recrawlAfter ?? Infinity
    this.hostBuffer = init.hostBuffer ?? C.DEFAULT_HOST_BUFFER
    this.maxBuffered = init.maxBufferedUrls ?? C.DEFAULT_MAX_BUFFERED_URLS
    if (!Number.isInteger(this.maxBuffered) || this.maxBuffered < 1) throw new RangeError(`maxBufferedUrls must be a positive integer, got ${this.maxBuffered}`)
    this.keyTag = init.keyTag ?? ''
    this.ownership = components.ownership
    this.replicator = components.replicator
    this.seen = new SeenSet(this.store, { filterBits: init.seenFilterBits, cacheSize: init.seenCacheSize })
    this.store.onCut(() => this.snapshotOps())
  }

  /** Load what a previous run left: host totals, the seen filter, counters. */
  async start (): Promise<void> {
    this.stopped = false
    this.seq = (await this.store.get<number>('state', 'seq')) ?? 0
    const counters = await this.store.get<FrontierCounters>('state', 'counters')
    if (counters != null) Object.assign(this.counters, counters)
    for await (const [host, v] of this.store.subs.hosts.iterator()) {
      const h = this.hostState(host, v.origin)
      h.admitted = v.admitted
      h.queued = v.queued
      h.unloaded = v.queued
      this.queuedTotal += v.queued
      this.schedule(h)
    }
    const seen = await this.seen.load()
    log('started: %d hosts, %d queued, %d seen', this.hosts.size, this.queuedTotal, seen)
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer != null) this.clock.clearTimeout(this.timer)
    this.timer = undefined
    for (const t of this.takers.splice(0)) t(undefined)
    for (const w of this.idleWaiters.splice(0)) w()
  }

  /** URLs on disk, not yet done (queued or in flight). */
  get queued (): number {
    return this.queuedTotal
  }

  get inflight (): number {
    return this.leased
  }

  get hostCount (): number {
    return this.hosts.size
  }

  /**
   * What this frontier holds in memory now: one small record per host, the URLs buffered ahead of
   * the fetcher (bounded by `maxBufferedUrls`), the seen set's caches. The rest is on disk.
   */
  get memory (): { hosts: number, buffered: number, leasedHosts: number, seen: SeenSet['memory'] } {
    return { hosts: this.hosts.size, buffered: this.buffered, leasedHosts: this.leasedKeys.size, seen: this.seen.memory }
  }

  /** Nothing queued, nothing in flight, no admission under way. */
  get idle (): boolean {
    return this.queuedTotal === 0 && this.addsInFlight === 0 && this.leased === 0
  }

  async whenIdle (): Promise<void> {
    if (this.idle || this.stopped) return
    await new Promise<void>((resolve) => { this.idleWaiters.push(resolve) })
  }

  private checkIdle (): void {
    if (this.idle) for (const w of this.idleWaiters.splice(0)) w()
  }

  private hostState (host: string, origin: string): HostState {
    let h = this.hosts.get(host)
    if (h == null) {
      h = {
        host,
        origin,
        queued: 0,
        unloaded: 0,
        loadedKey: host + SEP,
        buffer: [],
        inflight: 0,
        nextAt: 0,
        admitted: 0,
        robots: this.robots == null ? 'ready' : 'unknown',
        delay: this.delay,
        inHeap: false,
        refilling: false
      }
      this.hosts.set(host, h)
    }
    return h
  }

  private drop (reason: string): void {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + 1
  }

  /** Hosts whose totals changed since the last batch was cut. */
  private dirtyHosts = new Set<HostState>()
  private dirtyState = false

  private touch (h: HostState): void {
    this.dirtyHosts.add(h)
    this.dirtyState = true
  }

  /**
   * Called as each write batch is cut: the current totals of the hosts touched and the counters go
   * into that batch, once. Every change to them was made before its own operations entered the
   * batcher, so the snapshot is never older than the batch it rides with.
   */
  private snapshotOps (): BatchOp[] {
    if (!this.dirtyState) return []
    const ops: BatchOp[] = []
    for (const h of this.dirtyHosts) {
      ops.push({ type: 'put', sublevel: 'hosts', key: h.host, value: { origin: h.origin, admitted: h.admitted, queued: h.queued } })
    }
    this.dirtyHosts.clear()
    this.dirtyState = false
    ops.push({ type: 'put', sublevel: 'state', key: 'seq', value: this.seq })
    // A copy: the batch may be encoded after later changes.
    const c = this.counters
    ops.push({ type: 'put', sublevel: 'state', key: 'counters', value: { admitted: c.admitted, done: c.done, byStatus: { ...c.byStatus }, dropped: { ...c.dropped } } })
    return ops
  }

  /**
   * Admit links into the queue (the owner's side of routing): depth, per-host and global limits,
   * seen check. Resolves once the admitted ones are on disk. Returns how many were admitted.
   */
  async add (links: Link[]): Promise<number> {
    if (links.length === 0) return 0
    this.addsInFlight++
    try {
      const candidates: Link[] = []
      const local = new Set<string>()
      for (const l of links) {
        if (l.depth > this.maxDepth) { this.drop('max-depth'); continue }
        if (local.has(l.url)) continue
        local.add(l.url)
        candidates.push(l)
      }
      const seenValues = await this.seen.lookup(candidates.map(l => l.url))
      const now = this.clock.now()
      const ops: BatchOp[] = []
      const admitted: Array<{ h: HostState, slot: Slot }> = []
      const touched = new Set<HostState>()
      for (let i = 0; i < candidates.length; i++) {
        const l = candidates[i]
        const seenAt = seenValues[i] ?? this.seen.peek(l.url)
        if (seenAt !== undefined && !(seenAt > 0 && now - seenAt >= this.recrawlAfter)) continue
        if (this.counters.admitted >= this.maxPages) { this.drop('max-pages'); continue }
        const host = hostKeyFast(l.url)
        const h = this.hostState(host, originFast(l.url))
        if (h.admitted >= this.maxPagesPerHost) { this.drop('max-pages-per-host'); continue }
        h.admitted++
        h.queued++
        this.counters.admitted++
        this.queuedTotal++
        const key = seqKey(host, ++this.seq, this.keyTag)
        const entry: FrontierEntry = { url: l.url, depth: l.depth }
        if (l.referrer !== undefined) entry.referrer = l.referrer
        if (l.redirects !== undefined && l.redirects > 0) entry.redirects = l.redirects
        ops.push({ type: 'put', sublevel: 'frontier', key, value: entry })
        ops.push(this.seen.mark(l.url, 0))
        admitted.push({ h, slot: { key, entry, attempts: 0 } })
        touched.add(h)
      }
      if (ops.length === 0) return 0
      for (const h of touched) this.touch(h)
      await this.store.write(ops)
      this.seen.landed(admitted.map(a => a.slot.entry.url))
      // Now durable: make them visible to the fetcher (at once: an await before this would let a
      // refill read them from disk before they are counted).
      for (const { h, slot } of admitted) {
        if (h.unloaded === 0 && h.buffer.length < this.hostBuffer && !h.refilling && this.buffered < this.maxBuffered) {
          h.buffer.push(slot)
          this.buffered++
          h.loadedKey = slot.key
        } else {
          h.unloaded++
        }
      }
      for (const h of touched) this.schedule(h)
      this.pump()
      // The sender's ack also waits for the host's replicas to have them.
      if (this.replicator != null) await this.replicator.entries(admitted.map(({ h, slot }) => ({ host: h.host, key: slot.key, entry: slot.entry })))
      return admitted.length
    } finally {
      this.addsInFlight--
      this.checkIdle()
    }
  }

  /** The next URL the fetcher may fetch now; waits until one is due. `undefined` once stopped. */
  async take (): Promise<Lease | undefined> {
    if (this.stopped) return undefined
    const p = new Promise<Lease | undefined>((resolve) => { this.takers.push(resolve) })
    this.pump()
    return await p
  }

  /** Put a host in the heap if it can be served: work queued, a connection free. */
  private schedule (h: HostState): void {
    if (h.inHeap || this.stopped) return
    if (this.ownership != null && !this.ownership.owns(h.host)) return
    if (h.inflight >= this.hostConcurrency) return
    if (h.robots === 'loading' || h.robots === 'fetching') return
    // Nothing in memory: wait for the refill under way (it schedules the host when it lands).
    if (h.buffer.length === 0 && (h.unloaded === 0 || h.refilling)) return
    h.inHeap = true
    this.heap.push(h.nextAt, h)
  }

  private pump (): void {
    const now = this.clock.now()
    while (this.takers.length > 0 && this.heap.size > 0) {
      const time = this.heap.peekTime() as number
      if (time > now) break
      const h = this.heap.pop() as HostState
      h.inHeap = false
      if (h.nextAt > now) { this.schedule(h); continue }
      if (h.inflight >= this.hostConcurrency) continue
      // Lost to another peer since it was scheduled: leave it (its entries are handed over).
      if (this.ownership != null && !this.ownership.owns(h.host)) continue
      if (this.handing.has(h.host)) continue
      const lease = this.leaseFrom(h, now)
      if (lease != null) {
        this.leased++
        if (lease.kind === 'page') {
          let keys = this.leasedKeys.get(h.host)
          if (keys == null) this.leasedKeys.set(h.host, keys = new Set())
          keys.add(lease.key)
          this.leasedUrls.add(lease.entry.url)
        }
        const taker = this.takers.shift() as (l: Lease | undefined) => void
        taker(lease)
      }
      this.schedule(h)
    }
    this.armTimer(now)
  }

  private armTimer (now: number): void {
    if (this.takers.length === 0 || this.heap.size === 0) return
    const at = this.heap.peekTime() as number
    if (at <= now) return
    if (this.timer != null && this.timerAt <= at) return
    if (this.timer != null) this.clock.clearTimeout(this.timer)
    this.timerAt = at
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined
      this.timerAt = Infinity
      this.pump()
    }, at - now)
  }

  /** A lease from this host, or undefined when it has nothing ready (robots pending, refill under way). */
  private leaseFrom (h: HostState, now: number): Lease | undefined {
    if (h.robots !== 'ready') {
      if (h.robots === 'unknown') { this.loadRobots(h); return undefined }
      if (h.robots === 'need-fetch') {
        h.robots = 'fetching'
        h.inflight++
        h.nextAt = now + h.delay
        return { kind: 'robots', host: h.host, origin: h.origin, key: '', entry: { url: h.origin + '/robots.txt', depth: 0 }, attempts: 0 }
      }
      return undefined
    }
    if (h.rules == null && this.robots != null) {
      // Rules were evicted from the robots cache: get them back before fetching.
      const rules = this.robots.cached(h.host)
      if (rules == null) { h.robots = 'unknown'; this.loadRobots(h); return undefined }
      this.setRules(h, rules)
    }
    while (h.buffer.length > 0) {
      const slot = h.buffer.shift() as Slot
      this.buffered--
      // Fetched already (its record came from a replica or a previous owner after it was queued
      // here): drop the entry instead of fetching it again.
      const seenAt = this.seen.peek(slot.entry.url)
      if (seenAt !== undefined && seenAt > 0 && now - seenAt < this.recrawlAfter) {
        this.discard(h, slot)
        continue
      }
      // A second entry of a URL being fetched here now (queued twice: adopted from a replica copy
      // or a hand-off while this peer still held it): the lease out now finishes it, or keeps its
      // own entry for a retry.
      if (this.leasedUrls.has(slot.entry.url)) {
        this.discard(h, slot)
        continue
      }
      if (h.rules != null && !h.rules.isAllowed(pathOf(slot.entry.url))) {
        // Never requested: recorded as blocked, and costs the host no politeness time.
        h.inflight++
        this.leased++
        const { url, depth, referrer } = slot.entry
        const record = { url, status: 'blocked', fetchedAt: now, depth, error: h.rules === disallowAll ? 'robots.txt unavailable (5xx or unreachable): all disallowed for now (RFC 9309 §2.3.1.4)' : 'disallowed by robots.txt', ...(referrer != null ? { referrer } : {}) }
        void this.finish({ kind: 'page', host: h.host, origin: h.origin, key: slot.key, entry: slot.entry, attempts: 0 },
          [{ type: 'put', sublevel: 'meta', key: url, value: record }], 'blocked', 0).catch(err => log.extend('error')('recording blocked URL %s: %s', slot.entry.url, err.message))
        continue
      }
      if (h.buffer.length < this.hostBuffer / 4) this.refill(h)
      h.inflight++
      h.nextAt = now + h.delay
      return { kind: 'page', host: h.host, origin: h.origin, key: slot.key, entry: slot.entry, attempts: slot.attempts }
    }
    this.refill(h)
    return undefined
  }

  private loadRobots (h: HostState): void {
    if (this.robots == null) return
    const cached = this.robots.cached(h.host)
    if (cached != null) {
      this.setRules(h, cached)
      h.robots = 'ready'
      this.schedule(h)
      return
    }
    h.robots = 'loading'
    this.robots.load(h.host, h.origin).then((rules) => {
      if (rules != null) {
        this.setRules(h, rules)
        h.robots = 'ready'
      } else {
        h.robots = 'need-fetch'
      }
    }, (err) => {
      log.extend('error')('loading robots of %s: %s', h.host, err.message)
      h.robots = 'need-fetch'
    }).finally(() => {
      this.schedule(h)
      this.pump()
    })
  }

  private setRules (h: HostState, rules: RobotsRules): void {
    h.rules = rules
    const crawlDelay = rules.crawlDelay
    h.delay = this.delay
    if (!this.ignoreCrawlDelay && crawlDelay !== undefined) {
      h.delay = Math.max(this.delay, Math.min(crawlDelay * C.second, this.maxCrawlDelay))
    }
  }

  /** Load the next URLs of a host from disk. */
  private refill (h: HostState): void {
    if (h.refilling || h.unloaded === 0) return
    // What is left of the memory bound, but a host whose turn it is with nothing in memory always
    // gets a few, so none starves: the bound is maxBuffered plus MIN_HOST_REFILL per such host.
    const least = Math.min(C.MIN_HOST_REFILL, this.hostBuffer)
    const room = this.maxBuffered - this.buffered
    if (room < least && h.buffer.length > 0) return
    const want = Math.min(this.hostBuffer - h.buffer.length, Math.max(least, room))
    if (want <= 0) return
    h.refilling = true
    // The room is taken now, not when the read lands: refills of many hosts run at once.
    this.buffered += want
    ;(async () => {
      const got: Slot[] = []
      for await (const [key, entry] of this.store.subs.frontier.iterator({ gt: h.loadedKey, lt: h.host + '\x01', limit: want })) {
        got.push({ key, entry, attempts: 0 })
      }
      return got
    })().then((got) => {
      for (const s of got) h.buffer.push(s)
      this.buffered -= want - got.length
      if (got.length > 0) h.loadedKey = got[got.length - 1].key
      h.unloaded -= got.length
      if (got.length === 0 && h.unloaded > 0) {
        log.extend('error')('host %s: %d entries counted but none on disk; recounting', h.host, h.unloaded)
        h.queued -= h.unloaded
        this.queuedTotal -= h.unloaded
        h.unloaded = 0
      }
    }, (err) => {
      this.buffered -= want
      log.extend('error')('refilling %s: %s', h.host, err.message)
    }).finally(() => {
      h.refilling = false
      this.schedule(h)
      this.pump()
      this.checkIdle()
    })
  }

  /** Keys counted out already, their deletion not yet on disk (a hand-off must not count them again). */
  private readonly deleting = new Set<string>()

  /** Forget an entry that needs no fetch (done elsewhere). */
  private discard (h: HostState, slot: Slot): void {
    h.queued--
    this.queuedTotal--
    this.touch(h)
    this.deleting.add(slot.key)
    this.store.write([{ type: 'del', sublevel: 'frontier', key: slot.key }])
      .catch((err: any) => { log.extend('error')('dropping done entry %s: %s', slot.entry.url, err.message) })
      .finally(() => {
        this.deleting.delete(slot.key)
        this.checkIdle()
      })
  }

  /** The robots.txt of a lease's host is known now (or could not be had: `rules` says what to assume). */
  releaseRobots (lease: Lease, rules: RobotsRules): void {
    const h = this.hosts.get(lease.host)
    if (h == null) return
    h.inflight--
    this.leased--
    this.setRules(h, rules)
    h.robots = 'ready'
    h.nextAt = Math.max(h.nextAt, this.clock.now() + h.delay)
    this.schedule(h)
    this.pump()
    this.checkIdle()
  }

  /** A page lease is over: forget its key and URL (and the host's set once empty: one per host adds up). */
  private unlease (lease: Lease): void {
    const keys = this.leasedKeys.get(lease.host)
    if (keys != null) {
      keys.delete(lease.key)
      if (keys.size === 0) this.leasedKeys.delete(lease.host)
    }
    this.leasedUrls.delete(lease.entry.url)
  }

  /** Fetch it again later (retryable failure): it goes back to the head of its host's queue. */
  retry (lease: Lease, at: number): void {
    const h = this.hosts.get(lease.host)
    if (h == null) return
    this.unlease(lease)
    this.fetched(lease)
    this.leased--
    h.buffer.unshift({ key: lease.key, entry: lease.entry, attempts: lease.attempts + 1 })
    this.buffered++
    h.nextAt = Math.max(h.nextAt, at, this.clock.now() + h.delay)
    this.schedule(h)
    this.pump()
  }

  /**
   * The request of a lease is over (response read or failed): the host's connection slot is free
   * and its politeness delay starts now. The page itself is done only with `complete`.
   */
  fetched (lease: Lease): void {
    if (lease.released === true) return
    lease.released = true
    const h = this.hosts.get(lease.host)
    if (h == null) return
    h.inflight--
    h.nextAt = Math.max(h.nextAt, this.clock.now() + h.delay)
    this.schedule(h)
    this.pump()
  }

  /**
   * The page of a lease is done: write `ops` (its record, its block) together with the removal of
   * its entry and its seen mark, atomically. Call only after its links have been admitted.
   */
  async complete (lease: Lease, ops: BatchOp[], status: RecordStatus, fetchedAt: number): Promise<void> {
    await this.finish(lease, ops, status, fetchedAt)
  }

  private async finish (lease: Lease, ops: BatchOp[], status: RecordStatus, fetchedAt: number): Promise<void> {
    const h = this.hosts.get(lease.host) as HostState
    const all = ops.slice()
    all.push({ type: 'del', sublevel: 'frontier', key: lease.key })
    all.push(this.seen.mark(lease.entry.url, Math.max(1, fetchedAt)))
    h.queued--
    this.counters.done++
    this.counters.byStatus[status] = (this.counters.byStatus[status] ?? 0) + 1
    this.touch(h)
    this.deleting.add(lease.key)
    try {
      await this.store.write(all)
      this.seen.landed([lease.entry.url])
      if (this.replicator != null) {
        const record = ops.find(op => op.sublevel === 'meta' && op.type === 'put')?.value as Record<string, unknown> | undefined
        await this.replicator.done([{ host: lease.host, key: lease.key, url: lease.entry.url, fetchedAt: Math.max(1, fetchedAt), record }])
      }
    } finally {
      this.deleting.delete(lease.key)
      this.unlease(lease)
      this.queuedTotal--
      this.leased--
      if (lease.released !== true) {
        // Blocked by robots (never requested): no politeness time spent.
        lease.released = true
        h.inflight--
        this.schedule(h)
      }
      if (h.queued === 0 && h.inflight === 0) this.forgetIdle(h)
      this.pump()
      this.checkIdle()
    }
  }

  /**
   * Nothing of this host is left here: drop what only its work needed, so that a crawl of many
   * hosts keeps a small record per host, not its robots rules and a grown buffer. The rules come
   * back from the robots cache or the disk when the host has work again (see `leaseFrom`).
   */
  private forgetIdle (h: HostState): void {
    if (this.robots != null) h.rules = undefined
    if (h.buffer.length === 0) h.buffer = []
  }

  /** The ring changed: hosts this peer now owns become eligible (it already holds their entries). */
  refreshOwnership (): void {
    for (const h of this.hosts.values()) this.schedule(h)
    this.pump()
  }

  /** Is this URL being fetched now? */
  isInFlight (url: string): boolean {
    return this.leasedUrls.has(url)
  }

  /** Every host this frontier has admitted URLs of (this run or before), with its origin. */
  knownHosts (): Array<{ host: string, origin: string }> {
    return [...this.hosts.values()].map(h => ({ host: h.host, origin: h.origin }))
  }

  /** Queued entries of a host, those in flight included, with their keys (to copy them to a new replica). */
  async allHostEntries (host: string): Promise<Array<{ key: string, entry: FrontierEntry }>> {
    const out: Array<{ key: string, entry: FrontierEntry }> = []
    for await (const [key, entry] of this.store.subs.frontier.iterator({ gt: host + SEP, lt: host + '\x01' })) out.push({ key, entry })
    return out
  }

  /** Hosts with entries on disk here (queued or in flight). */
  hostsWithWork (): string[] {
    const out: string[] = []
    for (const h of this.hosts.values()) if (h.queued > 0) out.push(h.host)
    return out
  }

  /**
   * The queued entries of a host (not those in flight, which finish here), oldest first, with
   * their keys: to hand the host over, send them to its new owner, then `release` them.
   */
  async hostEntries (host: string): Promise<Array<{ key: string, entry: FrontierEntry }>> {
    const h = this.hosts.get(host)
    if (h == null || h.queued === 0) return []
    // Until `release` (or `keep`), the entries read here stay as they are: not leased, not dropped.
    this.handing.add(host)
    const inflight = this.leasedKeys.get(host) ?? new Set<string>()
    const out: Array<{ key: string, entry: FrontierEntry }> = []
    for await (const [key, entry] of this.store.subs.frontier.iterator({ gt: host + SEP, lt: host + '\x01' })) {
      if (!inflight.has(key) && !this.deleting.has(key)) out.push({ key, entry })
    }
    return out
  }

  /** A hand-off did not happen: the host's entries are this peer's to lease again. */
  keep (host: string): void {
    this.handing.delete(host)
    const h = this.hosts.get(host)
    if (h != null) this.schedule(h)
    this.pump()
  }

  /** Forget entries handed over to another peer: off the disk, out of memory. */
  async release (host: string, keys: string[]): Promise<void> {
    this.handing.delete(host)
    const h = this.hosts.get(host)
    if (h == null || keys.length === 0) return
    const gone = new Set(keys)
    const before = h.buffer.length
    h.buffer = h.buffer.filter(s => !gone.has(s.key))
    this.buffered -= before - h.buffer.length
    h.queued -= keys.length
    this.queuedTotal -= keys.length
    // What stays on disk: the leases out now (already read), the buffer, and entries past
    // loadedKey not read yet.
    const leased = this.leasedKeys.get(host)?.size ?? 0
    h.unloaded = Math.max(0, h.queued - leased - h.buffer.length)
    this.touch(h)
    await this.store.write(keys.map(key => ({ type: 'del' as const, sublevel: 'frontier' as const, key })))
    this.checkIdle()
  }

  /**
   * Take over entries another peer queued (it died, or handed the host over): queue them here even
   * though the seen set knows them (as queued, by replication). Resolves once on disk and, unless
   * `waitForReplicas: false`, copied to the hosts' replicas.
   */
  async adopt (entries: FrontierEntry[], opts: { waitForReplicas?: boolean } = {}): Promise<number> {
    if (entries.length === 0) return 0
    const ops: BatchOp[] = []
    const admitted: Array<{ h: HostState, slot: Slot }> = []
    const local = new Set<string>()
    const seen = await this.seen.lookup(entries.map(e => e.url))
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]
      if (local.has(entry.url)) continue
      local.add(entry.url)
      const seenAt = this.seen.peek(entry.url) ?? seen[i]
      if (seenAt !== undefined && seenAt > 0) continue // done here already
      const host = hostKeyFast(entry.url)
      const h = this.hostState(host, originFast(entry.url))
      h.admitted++
      h.queued++
      this.counters.admitted++
      this.queuedTotal++
      const key = seqKey(host, ++this.seq, this.keyTag)
      ops.push({ type: 'put', sublevel: 'frontier', key, value: entry })
      ops.push(this.seen.mark(entry.url, 0))
      admitted.push({ h, slot: { key, entry, attempts: 0 } })
      this.touch(h)
    }
    this.addsInFlight++
    try {
      await this.store.write(ops)
      this.seen.landed(admitted.map(a => a.slot.entry.url))
      for (const { h } of admitted) h.unloaded++
      for (const { h } of admitted) this.schedule(h)
      this.pump()
      if (this.replicator != null) {
        const copies = this.replicator.entries(admitted.map(({ h, slot }) => ({ host: h.host, key: slot.key, entry: slot.entry })))
        if (opts.waitForReplicas === false) {
          // The caller must not wait on other peers (a meta apply: see ReplicaStore.apply); the
          // admission still counts as under way (not idle) until the copies are acknowledged.
          this.addsInFlight++
          void copies.finally(() => {
            this.addsInFlight--
            this.checkIdle()
          })
        } else {
          await copies
        }
      }
      return admitted.length
    } finally {
      this.addsInFlight--
      this.checkIdle()
    }
  }

  /** Page leases of a host out now (a hand-off waits for them to finish before it says `handed`). */
  inflightOf (host: string): number {
    return this.leasedKeys.get(host)?.size ?? 0
  }

  /** Per-host view, for status pages and tests. */
  hostInfo (host: string): { queued: number, inflight: number, admitted: number, delay: number, buffered: number, unloaded: number, handing: boolean, inHeap: boolean, robots: string } | undefined {
    const h = this.hosts.get(host)
    if (h == null) return undefined
    return { queued: h.queued, inflight: h.inflight, admitted: h.admitted, delay: h.delay, buffered: h.buffer.length, unloaded: h.unloaded, handing: this.handing.has(host), inHeap: h.inHeap, robots: h.robots }
  }
}

function pathOf (url: string): string {
  const i = url.indexOf('/', url.indexOf('//') + 2)
  return i === -1 ? '/' : url.slice(i)
}

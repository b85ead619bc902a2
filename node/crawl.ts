import { blocksPath, Peer, storePath, type PeerStats } from './peer.js'
import type { CrawlConfig } from './config.js'
import type { HttpClient } from './types.js'
import { Store } from './db.js'
import { MetadataStore } from './metadata.js'
import { BlockStore } from './blocks.js'
import { normalizeUrl } from './normalize.js'
import type { UrlRecord } from './types.js'

/** The report of DESIGN.md §5, for a crawl by local peers. */
export interface CrawlReport {
  peers: number
  /** URLs admitted to the frontier (in scope, within limits): what a complete crawl fetches. */
  pagesExpected: number
  /** URLs requested and recorded (robots-blocked ones excluded). */
  pagesFetched: number
  /** Share of the expected URLs that are done. */
  coverage: number
  /** Records written for a URL that already had one in this crawl. */
  duplicateFetches: number
  /** Admitted URLs neither done nor still queued. */
  lostUrls: number
  /** Still queued when the crawl stopped (a limit hit, or stopped early). */
  queued: number
  wallSeconds: number
  pagesPerSecond: number
  bytesRouted: number
  messagesRouted: number
  requests: number
  wireBytes: number
  byStatus: PeerStats['byStatus']
  dropped: Record<string, number>
  outOfScope: Record<string, number>
  invariants: Record<string, boolean>
  /** Each peer's counters. */
  perPeer: Array<Record<string, any>>
}

export interface CrawlOptions extends CrawlConfig {
  seeds: string[]
  dataDir: string
  http?: HttpClient
  /** Called every `progressInterval` ms with the peer's stats. */
  onProgress?: (stats: PeerStats) => void
  progressInterval?: number
  signal?: AbortSignal
}

/** Crawl with one local peer until nothing is left (or a limit is hit), then report. */
export async function crawl (opts: CrawlOptions): Promise<CrawlReport> {
  const { seeds, dataDir, http, onProgress, progressInterval, signal, ...config } = opts
  const peer = new Peer({ dataDir, config, http })
  const started = performance.now()
  await peer.start()
  const before = peer.stats()
  let timer: NodeJS.Timeout | undefined
  try {
    const seeded = await peer.seed(seeds)
    if (seeded.accepted.length === 0 && before.queued === 0 && before.admitted === 0) {
      throw new Error(`no valid seed URL (${seeded.rejected.map(r => `${r.url}: ${r.reason}`).join('; ')})`)
    }
    if (onProgress != null) timer = setInterval(() => { onProgress(peer.stats()) }, progressInterval ?? 1000)
    const stopped = new Promise<void>((resolve) => {
      if (signal == null) return
      if (signal.aborted) resolve()
      signal.addEventListener('abort', () => { resolve() }, { once: true })
    })
    await Promise.race([peer.whenIdle(), stopped])
  } catch (err) {
    await peer.stop()
    throw err
  } finally {
    if (timer != null) clearInterval(timer)
  }
  const stats = peer.stats()
  await peer.stop()
  const wallSeconds = (performance.now() - started) / 1000
  const fetchedThisRun = (stats.done - before.done) - ((stats.byStatus.blocked ?? 0) - (before.byStatus.blocked ?? 0))
  const fetched = stats.done - (stats.byStatus.blocked ?? 0)
  const lost = stats.admitted - stats.done - stats.queued
  return {
    peers: 1,
    pagesExpected: stats.admitted,
    pagesFetched: fetched,
    coverage: stats.admitted === 0 ? 1 : stats.done / stats.admitted,
    duplicateFetches: 0,
    lostUrls: lost,
    queued: stats.queued,
    wallSeconds: round(wallSeconds, 3),
    pagesPerSecond: round(fetchedThisRun / wallSeconds, 1),
    bytesRouted: stats.bytesRouted,
    messagesRouted: stats.messagesRouted,
    requests: stats.requests,
    wireBytes: stats.wireBytes,
    byStatus: stats.byStatus,
    dropped: stats.dropped,
    outOfScope: stats.outOfScope,
    invariants: {
      noLostUrls: lost === 0,
      frontierDrained: stats.queued === 0
    },
    perPeer: [stats]
  }
}

function round (n: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

/** Read a URL's record and (optionally) body from a data dir no peer is running on. */
export async function readStored (dataDir: string, url: string, opts: { body?: boolean } = {}): Promise<{ url: string, record?: UrlRecord, body?: Uint8Array }> {
  const normalized = normalizeUrl(url) ?? url
  const store = new Store(storePath(dataDir), { createIfMissing: false })
  try {
    await store.open()
  } catch (err: any) {
    const msg = String(err?.cause?.message ?? err?.message)
    if (msg.includes('lock')) throw new Error(`data dir ${dataDir} is in use by a running peer: ask it through its API (--api)`)
    throw new Error(`cannot open data dir ${dataDir}: ${msg}`)
  }
  try {
    const record = await new MetadataStore(store).get(normalized)
    let body: Uint8Array | undefined
    if (opts.body === true && record?.cid != null) {
      const blocks = new BlockStore(store, blocksPath(dataDir))
      try {
        body = await blocks.get(record.cid)
      } finally {
        await blocks.close()
      }
    }
    return { url: normalized, record, body }
  } finally {
    await store.close()
  }
}

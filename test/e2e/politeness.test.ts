/**
 * Politeness as one host sees it: the gaps between requests and the requests in flight at once,
 * measured from the server's own arrival and end times.
 */
import assert from 'node:assert/strict'
import { crawl, type CrawlOptions } from '../../node/crawl.js'
import { anchors, html, routes, send, TestServer, type Hit, type Route } from '../utils/fixture-web.js'
import { useTempDirs } from '../utils/tmp.js'

/** Timer slack allowed below a configured gap, ms. */
const SLACK = 10

interface Site {
  server: TestServer
  /** Every URL a crawl of it fetches (robots.txt excluded). */
  pages: string[]
}

/** One host: a home page linking `pages - 1` leaves; each response held `holdMs` before it is sent. */
async function startSite (pages: number, robotsTxt: string, holdMs = 0): Promise<Site> {
  const table: Record<string, Route> = {}
  const leaves = Array.from({ length: pages - 1 }, (_, i) => `/p${i + 1}.html`)
  table['/robots.txt'] = { type: 'text/plain', body: robotsTxt }
  table['/'] = { body: html('home', anchors(...leaves)) }
  for (const p of leaves) table[p] = { body: html(p, 'leaf') }
  const serve = routes(table)
  const server = await TestServer.start('polite', holdMs === 0
    ? serve
    : (req, res, hit) => {
        const t = setTimeout(() => { serve(req, res, hit) }, holdMs)
        res.once('close', () => { clearTimeout(t) })
      })
  return { server, pages: ['/', ...leaves].map(p => server.origin + p) }
}

/** Gaps between the arrivals of consecutive requests, ms. */
function startGaps (hits: Hit[]): number[] {
  const starts = hits.map(h => h.start).sort((x, y) => x - y)
  return starts.slice(1).map((s, i) => s - starts[i])
}

/** The most requests the server had open at one time. */
function maxInFlight (hits: Hit[]): number {
  const events: Array<[number, number]> = []
  for (const h of hits) {
    assert.ok(h.end !== undefined, `${h.url} never ended`)
    events.push([h.start, 1], [h.end, -1])
  }
  // An end before a start at the same instant: back to back is not overlap.
  events.sort((x, y) => x[0] - y[0] || x[1] - y[1])
  let open = 0
  let max = 0
  for (const [, d] of events) {
    open += d
    max = Math.max(max, open)
  }
  return max
}

describe('e2e: politeness', function () {
  const dirs = useTempDirs()
  const servers: TestServer[] = []

  afterEach(async () => {
    await Promise.all(servers.splice(0).map(async s => { await s.close() }))
  })

  async function crawlSite (site: Site, opts: Partial<CrawlOptions>): Promise<Hit[]> {
    servers.push(site.server)
    const report = await crawl({ allowPrivate: true, maxRetries: 0, seeds: [site.server.origin + '/'], dataDir: await dirs.make(), ...opts })
    const hits = site.server.hits
    // The crawl itself was complete: every page once, robots.txt once and first.
    assert.equal(report.pagesFetched, site.pages.length)
    assert.deepEqual(hits.map(h => h.url).sort(), [site.server.origin + '/robots.txt', ...site.pages].sort())
    assert.equal(hits.slice().sort((x, y) => x.start - y.start)[0].path, '/robots.txt')
    return hits
  }

  it('delay 200 ms, one connection: requests start ≥ 200 ms apart and never overlap', async function () {
    const site = await startSite(15, 'User-agent: *\nDisallow:\n')
    const hits = await crawlSite(site, { delay: 200, hostConcurrency: 1 })
    assert.equal(hits.length, 16)
    const gaps = startGaps(hits)
    for (const [i, gap] of gaps.entries()) assert.ok(gap >= 200 - SLACK, `gap ${i}: ${gap.toFixed(1)} ms`)
    const byStart = hits.slice().sort((x, y) => x.start - y.start)
    for (let i = 1; i < byStart.length; i++) {
      assert.ok(byStart[i].start >= (byStart[i - 1].end as number), `${byStart[i].url} began before ${byStart[i - 1].url} ended`)
    }
    assert.equal(maxInFlight(hits), 1)
  })

  it('hostConcurrency 2, delay 0, slow responses: two requests in flight at most, and two reached', async function () {
    const site = await startSite(12, 'User-agent: *\nDisallow:\n', 50)
    const hits = await crawlSite(site, { delay: 0, hostConcurrency: 2 })
    assert.equal(maxInFlight(hits), 2)
  })

  it('hostConcurrency 1, delay 0, slow responses: one request in flight at most', async function () {
    const site = await startSite(6, 'User-agent: *\nDisallow:\n', 50)
    const hits = await crawlSite(site, { delay: 0, hostConcurrency: 1 })
    assert.equal(maxInFlight(hits), 1)
  })

  it('robots.txt Crawl-delay 0.3 with delay 0: requests start ≥ 300 ms apart', async function () {
    const site = await startSite(5, 'User-agent: *\nCrawl-delay: 0.3\nDisallow:\n')
    const hits = await crawlSite(site, { delay: 0 })
    const gaps = startGaps(hits)
    assert.equal(gaps.length, 5)
    for (const [i, gap] of gaps.entries()) assert.ok(gap >= 300 - SLACK, `gap ${i}: ${gap.toFixed(1)} ms`)
  })

  it('a Crawl-delay for another crawler does not slow us down', async function () {
    const site = await startSite(5, 'User-agent: otherbot\nCrawl-delay: 0.3\n\nUser-agent: *\nDisallow:\n')
    const hits = await crawlSite(site, { delay: 0 })
    const gaps = startGaps(hits)
    // Were the delay applied every gap would be ≥ 300 ms; unhindered they are a few ms.
    const mean = gaps.reduce((x, y) => x + y, 0) / gaps.length
    assert.ok(mean < 100, `mean gap ${mean.toFixed(1)} ms`)
  })

  it('ignoreCrawlDelay: true with delay 0: the Crawl-delay is not applied', async function () {
    const site = await startSite(5, 'User-agent: *\nCrawl-delay: 0.3\nDisallow:\n')
    const hits = await crawlSite(site, { delay: 0, ignoreCrawlDelay: true })
    const gaps = startGaps(hits)
    assert.equal(gaps.length, 5)
    const mean = gaps.reduce((x, y) => x + y, 0) / gaps.length
    assert.ok(mean < 100, `mean gap ${mean.toFixed(1)} ms`)
  })

  it('ignoreCrawlDelay: true still keeps the configured delay', async function () {
    const site = await startSite(4, 'User-agent: *\nCrawl-delay: 0.3\nDisallow:\n')
    const hits = await crawlSite(site, { delay: 100, ignoreCrawlDelay: true })
    const gaps = startGaps(hits)
    for (const [i, gap] of gaps.entries()) {
      assert.ok(gap >= 100 - SLACK, `gap ${i}: ${gap.toFixed(1)} ms`)
      assert.ok(gap < 300 - SLACK, `gap ${i}: ${gap.toFixed(1)} ms: the Crawl-delay was applied`)
    }
  })
})

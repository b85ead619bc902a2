/**
 * One peer crawls the fixture web (test/utils/fixture-web.ts): real HTTP servers on 127.0.0.1, a
 * real LevelDB in a temp dir. The servers' request logs are the judge of what was fetched.
 */
import assert from 'node:assert/strict'
import { cidOf } from '../../node/blocks.js'
import { DEFAULT_CONTACT_URL, VERSION } from '../../node/constants.js'
import { crawl, readStored, type CrawlReport } from '../../node/crawl.js'
import { startFixtureWeb, type FixtureWeb, type Hit } from '../utils/fixture-web.js'
import { tempDir, type TempDir } from '../utils/tmp.js'

/** How many times each URL was asked for. */
function countByUrl (hits: Hit[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const h of hits) counts.set(h.url, (counts.get(h.url) ?? 0) + 1)
  return counts
}

function sorted (urls: Iterable<string>): string[] {
  return [...urls].sort()
}

describe('e2e: single-peer crawl of the fixture web', function () {
  let web: FixtureWeb
  let dir: TempDir
  let report: CrawlReport
  /** The hit log right after the first crawl. */
  let hits: Hit[]

  before(async function () {
    web = await startFixtureWeb({ maxDepth: 4, maxRetries: 2 })
    dir = await tempDir()
    report = await crawl({ ...web.crawlOptions, seeds: web.seeds, dataDir: dir.path })
    hits = web.hits()
  })

  after(async function () {
    await web?.close()
    await dir?.remove()
  })

  it('requests exactly the expected URLs, and robots.txt once per seed host', () => {
    const pages = hits.filter(h => !h.path.startsWith('/robots.txt'))
    assert.deepEqual(sorted(new Set(pages.map(h => h.url))), sorted(web.expected))
    const robots = hits.filter(h => h.path.startsWith('/robots.txt'))
    assert.deepEqual(sorted(robots.map(h => h.url)), sorted(web.robots))
  })

  it('requests each URL once; the 500 page 1 + maxRetries times, the flaky one twice', () => {
    const counts = countByUrl(hits.filter(h => !h.path.startsWith('/robots.txt')))
    const want = new Map(web.requests)
    assert.equal(want.get(`${web.originA}/error-500.html`), 3)
    assert.equal(want.get(`${web.originA}/flaky.html`), 2)
    assert.deepEqual(new Map([...counts].sort()), new Map([...want].sort()))
  })

  it('fetches robots.txt of a host before any of its pages', () => {
    for (const server of [web.a, web.b]) {
      assert.ok(server.hits.length > 1, server.name)
      assert.equal(server.hits[0].path, '/robots.txt', `first request to ${server.name}`)
    }
  })

  it('never requests disallowed, nofollow, out-of-scope or too-deep URLs', () => {
    const asked = new Set(hits.map(h => h.url))
    for (const url of [...web.blocked, ...web.never]) assert.ok(!asked.has(url), `requested ${url}`)
    assert.equal(web.c.hits.length, 0, 'the out-of-scope server was contacted')
    // Nothing outside the map either: every request was to a page the fixture serves.
    for (const h of hits) assert.ok(h.path === '/robots.txt' || web.expected.has(h.url), `unexpected request ${h.url}`)
  })

  it('spaces the requests to B by its robots.txt Crawl-delay (20 ms)', () => {
    const starts = web.b.hits.map(h => h.start)
    assert.equal(starts.length, 5)
    // 1 ms of slack: the engine's clock is Date.now(), the servers' performance.now().
    for (let i = 1; i < starts.length; i++) assert.ok(starts[i] - starts[i - 1] >= 19, `gap ${i}: ${starts[i] - starts[i - 1]} ms`)
  })

  it('bounds the calendar trap by maxDepth', () => {
    const months = hits.filter(h => h.path.startsWith('/calendar')).map(h => h.path)
    assert.deepEqual(months.sort(), [1, 2, 3, 4].map(m => `/calendar?month=${m}`))
  })

  it('reports the pages it fetched and expected', () => {
    assert.equal(report.pagesFetched, web.expected.size)
    assert.equal(report.pagesExpected, web.expected.size + web.blocked.size)
    assert.equal(report.coverage, 1)
    assert.equal(report.queued, 0)
    assert.equal(report.lostUrls, 0)
    assert.deepEqual(report.invariants, { noLostUrls: true, frontierDrained: true })
    const byStatus: Record<string, number> = {}
    for (const r of web.records.values()) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1
    assert.deepEqual(report.byStatus, byStatus)
    // Requests the fetcher made: every page request, the retries and the two robots.txt.
    assert.equal(report.requests, hits.length)
  })

  it('sends the shoal User-Agent with its peer id on every request', () => {
    const peerId = report.perPeer[0].peerId
    assert.match(peerId, /^[0-9a-f]{32}$/)
    const ua = `shoal/${VERSION} (peer ${peerId.slice(-8)}; +${DEFAULT_CONTACT_URL})`
    for (const h of hits) assert.equal(h.userAgent, ua, h.url)
  })

  it('stores a record for every fetched URL, with status, HTTP status, depth, attempts and redirect target', async () => {
    for (const url of web.expected) {
      const want = web.records.get(url)
      assert.ok(want != null, `fixture lacks an expected record for ${url}`)
      const { record } = await readStored(dir.path, url)
      assert.ok(record != null, `no record for ${url}`)
      assert.equal(record.url, url)
      assert.equal(record.status, want.status, url)
      assert.equal(record.httpStatus, want.httpStatus, url)
      assert.equal(record.depth, want.depth, url)
      if (want.attempts !== undefined) assert.equal(record.attempts, want.attempts, url)
      assert.equal(record.redirectTo, want.redirectTo, url)
      if (want.contentType !== undefined) assert.equal(record.contentType, want.contentType, url)
      if (want.error !== undefined) assert.ok(record.error?.includes(want.error), `${url}: error ${record.error} lacks "${want.error}"`)
      if (want.links !== undefined) assert.equal(record.links, want.links, url)
      if (want.noindex !== undefined) assert.equal(record.noindex === true, want.noindex, url)
      if (want.status !== 'fetched') assert.equal(record.cid, undefined, `${url} has a body`)
    }
  })

  it("records each URL robots.txt disallows as 'blocked', never requested", async () => {
    assert.equal(web.blocked.size, 2)
    for (const url of web.blocked) {
      const { record } = await readStored(dir.path, url)
      assert.ok(record != null, `no record for ${url}`)
      assert.equal(record.status, 'blocked', url)
      assert.equal(record.depth, web.records.get(url)?.depth, url)
      assert.equal(record.httpStatus, undefined, url)
      assert.equal(record.cid, undefined, url)
    }
  })

  it('stores no record for URLs it must not fetch', async () => {
    for (const url of web.never) {
      const { record } = await readStored(dir.path, url)
      assert.equal(record, undefined, url)
    }
  })

  it('stores each body byte for byte, under its CID', async () => {
    assert.ok(web.bodies.size > 30)
    for (const [url, sent] of web.bodies) {
      const { record, body } = await readStored(dir.path, url, { body: true })
      assert.equal(record?.cid, cidOf(sent), url)
      assert.equal(record?.size, sent.byteLength, url)
      assert.ok(body != null, `no body for ${url}`)
      assert.ok(Buffer.from(body).equals(Buffer.from(sent)), `body of ${url} differs`)
    }
  })

  it('reads a record back by any spelling of its URL', async () => {
    const { record } = await readStored(dir.path, `${web.originA.toUpperCase()}/a.html#top`)
    assert.equal(record?.url, `${web.originA}/a.html`)
    assert.equal(record?.status, 'fetched')
  })

  it('fetches nothing on a second crawl of the same data dir with the same seeds', async () => {
    const before = web.hits().length
    const { record: home } = await readStored(dir.path, `${web.originA}/`)
    const again = await crawl({ ...web.crawlOptions, seeds: web.seeds, dataDir: dir.path })
    assert.equal(web.hits().length, before, 'a server was asked for something')
    assert.equal(again.requests, 0)
    assert.equal(again.pagesFetched, report.pagesFetched)
    assert.equal(again.queued, 0)
    assert.deepEqual(again.byStatus, report.byStatus)
    assert.equal(again.perPeer[0].peerId, report.perPeer[0].peerId)
    const { record: homeAgain } = await readStored(dir.path, `${web.originA}/`)
    assert.deepEqual(homeAgain, home)
  })
})

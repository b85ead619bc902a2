/**
 * One shoal peer (node/crawl.ts) crawls a realistic synthetic web: redirects, broken links, flaky
 * and stalling URLs, bodies over the caps, compressed and legacy-charset pages, broken markup,
 * aliases, traps, robots.txt with its own group and a Crawl-delay, offsite links. The web's ground
 * truth (sim/web/truth.ts) says which URLs a correct crawl requests and how often; the servers'
 * counters say what this one did.
 *
 * The crawl uses the simulator's settings (allowPrivate, delay 0) and shoal's defaults otherwise,
 * except timing: a 1 s request timeout (a stalled URL costs 1 + maxRetries of them) and a 10 ms
 * retry back-off. Web and crawler share one event loop, so a timeout much shorter than the loop's
 * worst pause would give up on answers that were on time; the web counts such answers apart
 * (`abortedAnswers`) so that the retry after one is not taken for a duplicate.
 */
import assert from 'node:assert/strict'
import { crawl, readStored, type CrawlReport } from '../../node/crawl.js'
import { startSyntheticWeb, type CrawlSummary, type RequestLogEntry, type SyntheticWeb } from '../../sim/web.js'
import { tempDir, type TempDir } from '../utils/tmp.js'

/** Timer slack allowed below a gap the crawler must keep, ms. */
const SLACK = 3
const CRAWL_DELAY_HOST = 1
const CRAWL_DELAY = 0.01
const RETRY_AFTER = 1

describe('sim/web: one shoal peer crawls a realistic web', function () {
  this.timeout(60_000)
  let web: SyntheticWeb
  let dir: TempDir
  let report: CrawlReport
  let summary: CrawlSummary
  let log: readonly RequestLogEntry[]

  before(async function () {
    // Seed 6: every kind of resource, two stalling URLs on different hosts, failures of each status.
    web = await startSyntheticWeb({
      seed: 6,
      hosts: 3,
      pages: 240,
      realistic: true,
      features: {
        transient: 0.01,
        timeouts: 0.005,
        retryAfter: RETRY_AFTER,
        crawlDelay: h => h === CRAWL_DELAY_HOST ? CRAWL_DELAY : undefined
      },
      log: true
    })
    dir = await tempDir()
    report = await crawl({ seeds: [...web.rootUrls], dataDir: dir.path, allowPrivate: true, delay: 0, requestTimeout: 1000, retryBaseDelay: 10 })
    summary = web.summary()
    log = web.stats().log ?? []
  })

  after(async function () {
    await web?.close()
    await dir?.remove()
  })

  it('the web has every feature in it', function () {
    const { byKind } = summary
    for (const [kind, k] of Object.entries(byKind)) assert.ok(k.expected > 0, `no ${kind} URL expected`)
    assert.ok(byKind.timeout.expected >= 2 && summary.trapPagesExpected === 3 * (39 + 20 + 3))
    for (const status of ['301', '302', '307', '308', '404', '410', '429', '500', '503', '0']) assert.ok((summary.byStatus[status] ?? 0) > 0, `no ${status} answer`)
  })

  it('requests every expected URL, as often as a correct crawl does, and nothing else', function () {
    assert.equal(summary.coverage, 1)
    assert.equal(summary.unexpectedRequests, 0)
    assert.equal(summary.imagesFetched, summary.imagesExpected)
    const stats = web.stats()
    const wrong: string[] = []
    for (const e of web.truth().urls) {
      const c = stats.urls[e.host].get(e.target)
      const count = (c?.count ?? 0) - (c?.aborted ?? 0)
      if (count !== e.requests) wrong.push(`${e.kind} ${web.absolute(e.host, e.target)}: ${count} requests, ${e.requests} expected`)
    }
    assert.deepEqual(wrong, [])
    assert.equal(summary.extraRequests, 0)
  })

  it('fetches nothing twice: every request after the first is a retry of a transient failure', function () {
    assert.equal(summary.duplicateFetches, 0)
    assert.ok(summary.retries > 0)
    assert.equal(summary.retries + summary.abortedAnswers, summary.pageRequests - summary.pagesFetched)
  })

  it('obeys robots.txt: fetched once per host and first, the group that names shoal, no disallowed URL', function () {
    assert.equal(summary.robotsRequests, 3)
    assert.equal(summary.disallowedRequests, 0)
    for (let h = 0; h < 3; h++) assert.equal(log.find(e => e.host === h)?.target, '/robots.txt', `host ${h}`)
    // URLs robots.txt disallows were met (links to them exist) and recorded as blocked, unrequested.
    assert.ok((report.byStatus.blocked ?? 0) > 0)
  })

  it('keeps the Crawl-delay between two requests to its host', function () {
    const arrivals = log.filter(e => e.host === CRAWL_DELAY_HOST).map(e => e.at)
    assert.ok(arrivals.length > 100)
    const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i])
    assert.ok(Math.min(...gaps) >= CRAWL_DELAY * 1000 - SLACK, `smallest gap ${Math.min(...gaps)} ms`)
  })

  it('waits as long as Retry-After says (seconds on a 429, an HTTP-date on a 503)', function () {
    let checked = 0
    for (let i = 0; i < log.length; i++) {
      const e = log[i]
      if (e.status !== 429 && e.status !== 503) continue
      const next = log.slice(i + 1).find(x => x.host === e.host && x.target === e.target)
      assert.ok(next !== undefined, `${e.target} retried`)
      assert.ok(next.at - e.at >= RETRY_AFTER * 1000 - SLACK, `${e.status} ${e.target} retried after ${next.at - e.at} ms`)
      checked++
    }
    assert.ok(checked >= 2)
  })

  it('never touches an offsite host, though pages and redirects link to it', function () {
    assert.equal(summary.offsiteRequests, 0)
    assert.ok((report.outOfScope['out-of-scope'] ?? 0) > 0)
  })

  it('stops in each trap where its limits say: maxDepth for the calendar and the session ids, maxPathRepeats for /files/files/…', function () {
    assert.equal(summary.trapPagesFetched, summary.trapPagesExpected)
    assert.equal(summary.byKind.trap.requests, summary.trapPagesExpected + web.truth().urls.filter(u => u.kind === 'trap').reduce((s, u) => s + u.requests - 1, 0))
    assert.ok((report.outOfScope['path-repeats'] ?? 0) > 0)
  })

  it('records each URL as the server answered it', function () {
    const { byKind } = summary
    assert.equal(report.byStatus.redirect, byKind.redirect.expected)
    assert.equal(report.byStatus['http-error'], byKind.error.expected + web.truth().urls.filter(u => !u.ok && u.kind !== 'error' && u.kind !== 'timeout' && u.kind !== 'oversize').length)
    assert.equal(report.byStatus.failed, byKind.timeout.expected + byKind.oversize.expected)
    assert.equal(report.byStatus.fetched, byKind.page.expected + byKind.alias.expected + byKind.trap.expected + byKind.image.expected)
    assert.equal(report.lostUrls, 0)
  })

  it('stores bodies as served, with gzip and br undone and legacy charsets left as bytes', async function () {
    await web.close()
    const site = web.site
    const picks = web.truth().urls.filter(u => {
      if (u.kind !== 'page') return false
      const r = site.resolveTarget(u.host, u.target)
      if (r.kind !== 'page') return false
      return site.pageStyle(u.host, r.page).charset !== 'utf-8' || site.wire(u.host, u.target).encoding !== 'identity'
    }).slice(0, 12)
    assert.ok(picks.length >= 6)
    for (const e of picks) {
      const url = web.absolute(e.host, e.target)
      const { record, body } = await readStored(dir.path, url, { body: true })
      assert.equal(record?.status, 'fetched', url)
      assert.deepEqual(Buffer.from(body ?? []), web.body(url), url)
    }
  })
})

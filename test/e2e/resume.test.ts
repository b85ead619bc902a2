import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readStored } from '../../node/crawl.js'
import { Store } from '../../node/db.js'
import { MetadataStore } from '../../node/metadata.js'
import { storePath } from '../../node/peer.js'
import { finished, killAllShoals, lastJson, startShoal } from '../utils/cli.js'

/** A site of `pages` pages, each answered after `latency` ms, counting requests per path. */
async function slowSite (pages: number, latency: number): Promise<{ base: string, hits: Map<string, number>, total: () => number, onHit: (n: number, fn: () => void) => void, close: () => Promise<void> }> {
  const hits = new Map<string, number>()
  let total = 0
  let waiter: { n: number, fn: () => void } | undefined
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/'
    hits.set(path, (hits.get(path) ?? 0) + 1)
    total++
    if (waiter != null && total >= waiter.n) { waiter.fn(); waiter = undefined }
    if (path === '/robots.txt') { res.writeHead(404).end(); return }
    const i = path === '/' ? 0 : Number(path.slice(3))
    let links = ''
    for (const j of [2 * i + 1, 2 * i + 2, i + 1]) if (j < pages) links += `<a href="/p/${j}">${j}</a>`
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><title>${i}</title>${links}`)
    }, latency)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    base: `http://127.0.0.1:${port}`,
    hits,
    total: () => total,
    onHit: (n, fn) => { if (total >= n) fn(); else waiter = { n, fn } },
    close: async () => { server.closeAllConnections(); await new Promise<void>((resolve) => server.close(() => resolve())) }
  }
}

describe('crash and resume (real process, SIGKILL)', function () {
  this.timeout(120_000)
  let dir: string

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'shoal-resume-')) })
  afterEach(async () => {
    killAllShoals()
    await rm(dir, { recursive: true, force: true })
  })

  it('finishes the crawl after SIGKILL, fetching again only what was in flight', async () => {
    const pages = 300
    const site = await slowSite(pages, 5)
    try {
      const data = join(dir, 'data')
      const args = ['crawl', site.base + '/', '--data', data, '--allow-private', '--delay', '0',
        '--host-concurrency', '4', '--concurrency', '4', '--json']
      const first = startShoal(args)
      const firstDone = finished(first)
      // Kill once a third of the site has been requested.
      await new Promise<void>((resolve) => { site.onHit(pages / 3, resolve) })
      first.kill("SIGKILL")
      const r1 = await firstDone
      assert.equal(r1.signal, 'SIGKILL', 'the first run was killed, not finished')

      // What was requested before the kill, and what the store had recorded as done.
      const requested = new Set([...site.hits.keys()].filter(p => p !== '/robots.txt'))
      const store = new Store(storePath(data))
      await store.open()
      const records = await new MetadataStore(store).getMany([...requested].map(p => site.base + p))
      await store.close()
      const notRecorded = [...requested].filter((_, i) => records[i] == null)
      assert.ok(requested.size < pages, 'killed mid-crawl')

      const r2 = await finished(startShoal(args))
      assert.equal(r2.code, 0, r2.stderr)
      const report = lastJson(r2.stdout)
      assert.equal(report.lostUrls, 0)
      assert.equal(report.queued, 0)
      assert.equal(report.pagesExpected, pages)

      // Every page was fetched; the only ones fetched twice were in flight (requested, not recorded) at the kill.
      for (let i = 0; i < pages; i++) assert.ok(site.hits.has(i === 0 ? '/' : `/p/${i}`), `page ${i} fetched`)
      const twice = [...site.hits.entries()].filter(([p, n]) => p !== '/robots.txt' && n > 1).map(([p]) => p)
      for (const p of twice) {
        assert.ok(notRecorded.includes(p), `${p} was fetched twice but had been recorded before the kill`)
        assert.equal(site.hits.get(p), 2)
      }
      // In flight at the kill: at most the fetch slots plus the pages waiting to be processed.
      assert.ok(notRecorded.length <= 4 + 8 + 4, `in flight at the kill: ${notRecorded.length}`)
      // robots.txt was answered (404 = allow all) and cached on disk: not fetched again after the restart.
      assert.equal(site.hits.get('/robots.txt'), 1)
      // The stored records read back.
      const { record } = await readStored(data, site.base + '/p/7')
      assert.equal(record?.status, 'fetched')
    } finally {
      await site.close()
    }
  })
})

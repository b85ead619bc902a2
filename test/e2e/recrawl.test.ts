import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { crawl, readStored } from '../../node/crawl.js'
import { useTempDirs } from '../utils/tmp.js'

interface Req { path: string, ifNoneMatch?: string, ifModifiedSince?: string }

describe('re-crawl with conditional GET (recrawlAfter)', () => {
  const dirs = useTempDirs('shoal-recrawl-')

  it('asks with If-None-Match / If-Modified-Since and keeps the stored body on 304', async () => {
    const requests: Req[] = []
    const server = http.createServer((req, res) => {
      requests.push({ path: req.url ?? '', ifNoneMatch: req.headers['if-none-match'], ifModifiedSince: req.headers['if-modified-since'] })
      if (req.url === '/robots.txt') { res.writeHead(404).end(); return }
      const etag = `"v1-${req.url}"`
      if (req.headers['if-none-match'] === etag) { res.writeHead(304).end(); return }
      res.writeHead(200, { 'content-type': 'text/html', etag, 'last-modified': 'Sat, 01 Jun 2024 00:00:00 GMT' })
      res.end(req.url === '/' ? '<a href="/a">a</a>' : '<p>leaf</p>')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const dataDir = await dirs.make()
      const first = await crawl({ seeds: [base + '/'], dataDir, allowPrivate: true, delay: 0 })
      assert.equal(first.pagesFetched, 2)
      const before = await readStored(dataDir, base + '/a')
      assert.equal(before.record?.status, 'fetched')

      requests.length = 0
      // Without recrawlAfter, nothing is fetched again.
      await crawl({ seeds: [base + '/'], dataDir, allowPrivate: true, delay: 0 })
      assert.deepEqual(requests, [])

      await crawl({ seeds: [base + '/'], dataDir, allowPrivate: true, delay: 0, recrawlAfter: 0 })
      const pages = (requests as Req[]).filter(r => r.path !== '/robots.txt')
      assert.deepEqual(pages.map(r => r.path).sort(), ['/', '/a'])
      for (const r of pages) {
        assert.equal(r.ifNoneMatch, `"v1-${r.path}"`)
        assert.equal(r.ifModifiedSince, 'Sat, 01 Jun 2024 00:00:00 GMT')
      }
      const after = await readStored(dataDir, base + '/a', { body: true })
      assert.equal(after.record?.status, 'not-modified')
      assert.equal(after.record?.cid, before.record?.cid)
      assert.equal(Buffer.from(after.body as Uint8Array).toString(), '<p>leaf</p>')
    } finally {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })
})

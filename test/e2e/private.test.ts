import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { crawl } from '../../node/crawl.js'
import { runShoal } from '../utils/cli.js'
import { useTempDirs } from '../utils/tmp.js'

describe('private targets are refused unless allowPrivate', () => {
  const dirs = useTempDirs('shoal-private-')
  let server: http.Server
  let base: string
  let hits = 0

  before(async () => {
    server = http.createServer((_req, res) => { hits++; res.writeHead(200, { 'content-type': 'text/html' }).end('<a href="/x">x</a>') })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => { server.closeAllConnections(); await new Promise<void>((resolve) => server.close(() => resolve())) })
  beforeEach(() => { hits = 0 })

  it('a loopback seed is rejected with the reason, and nothing is requested', async () => {
    await assert.rejects(crawl({ seeds: [base + '/'], dataDir: await dirs.make(), delay: 0 }),
      /no valid seed URL .*private, loopback or link-local address: set allowPrivate/)
    assert.equal(hits, 0)
  })

  it('the CLI says so and exits non-zero', async () => {
    const r = await runShoal(['crawl', base + '/', '--data', await dirs.make(), '--delay', '0'])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /allowPrivate \(--allow-private\)/)
    assert.equal(hits, 0)
  })

  it('with allowPrivate the same crawl runs', async () => {
    const report = await crawl({ seeds: [base + '/'], dataDir: await dirs.make(), delay: 0, allowPrivate: true })
    assert.equal(report.pagesFetched, 2)
    assert.equal(hits, 3) // robots.txt, /, /x
  })
})

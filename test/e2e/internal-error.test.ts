/**
 * A fetch that throws inside the peer — a bug or a storage error, not the server's answer — does not
 * leave its lease held (the crawl would never end): the page is fetched again like after a network
 * failure, then recorded as failed with the error; a robots.txt fetch that throws counts as
 * unavailable. The fetcher and robots are written never to throw: a stub makes them. Real HTTP
 * servers, a real LevelDB.
 */
import assert from 'node:assert/strict'
import { readStored } from '../../node/crawl.js'
import { Peer } from '../../node/peer.js'
import type { FetchRequest, Fetcher } from '../../node/fetcher.js'
import type { Robots } from '../../node/robots.js'
import { anchors, html, routes, TestServer } from '../utils/fixture-web.js'
import { useTempDirs } from '../utils/tmp.js'

describe('e2e: a fetch that throws inside the peer', () => {
  const dirs = useTempDirs()

  it('retries the page, records it as failed with the error, and the crawl goes on and ends', async () => {
    const server = await TestServer.start('p', routes({
      '/': { body: html('root', anchors('/a', '/b')) },
      '/a': { body: html('a', anchors('/c')) },
      '/b': { body: html('b', anchors('/d')) },
      '/d': { body: html('d', 'no links') }
    }))
    const origin = server.origin
    const dataDir = await dirs.make()
    const peer = new Peer({ dataDir, config: { allowPrivate: true, delay: 0, maxRetries: 2, retryBaseDelay: 1, parseWorkers: 0 } })
    try {
      await peer.start()
      const fetcher = (peer as any).fetcher as Fetcher
      const fetch = fetcher.fetch.bind(fetcher)
      let thrown = 0
      fetcher.fetch = async (req: FetchRequest) => {
        if (req.url.endsWith('/a')) { thrown++; throw new TypeError('a bug in the fetcher') }
        return await fetch(req)
      }
      await peer.seed([`${origin}/`])
      await peer.whenIdle()
      assert.equal(thrown, 3, 'tried 1 + maxRetries times')
      assert.deepEqual(peer.stats().byStatus, { fetched: 3, failed: 1 })
    } finally {
      await peer.stop()
      await server.close()
    }
    const a = await readStored(dataDir, `${origin}/a`)
    assert.equal(a.record?.status, 'failed')
    assert.match(a.record?.error ?? '', /internal error: a bug in the fetcher \(after 3 attempts\)/)
    assert.equal((await readStored(dataDir, `${origin}/d`)).record?.status, 'fetched')
  })

  it('a robots.txt fetch that throws counts as unavailable: the host\'s pages are blocked and the crawl ends', async () => {
    const server = await TestServer.start('p', routes({ '/': { body: html('root', anchors('/a')) } }))
    const dataDir = await dirs.make()
    const peer = new Peer({ dataDir, config: { allowPrivate: true, delay: 0, parseWorkers: 0 } })
    try {
      await peer.start()
      const robots = (peer as any).robots as Robots
      robots.fetch = async () => { throw new TypeError('a bug in robots') }
      await peer.seed([`${server.origin}/`])
      await peer.whenIdle()
      assert.deepEqual(peer.stats().byStatus, { blocked: 1 })
      assert.equal(server.hits.length, 0)
    } finally {
      await peer.stop()
      await server.close()
    }
  })
})

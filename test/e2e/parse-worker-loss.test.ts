/**
 * A peer whose parse worker dies in the middle of a crawl loses no page: the parse pool keeps no
 * body while a worker has it, so the pages the worker held are read back from the peer's block
 * store and parsed again (on the main thread, once no worker is left). Real HTTP servers, a real
 * LevelDB and pack files, a real worker thread.
 */
import assert from 'node:assert/strict'
import { Peer } from '../../node/peer.js'
import type { BlockStore } from '../../node/blocks.js'
import type { ParsePool } from '../../node/parse-pool.js'
import { startFixtureWeb } from '../utils/fixture-web.js'
import { tempDir } from '../utils/tmp.js'

describe('e2e: a parse worker that dies mid-crawl', function () {
  it('loses no page: the pages it held are read back from the block store and parsed again', async () => {
    const web = await startFixtureWeb({ maxDepth: 4, maxRetries: 2 })
    const dir = await tempDir()
    const peer = new Peer({ dataDir: dir.path, config: { ...web.crawlOptions, parseWorkers: 1 } })
    const warnings: string[] = []
    const onWarning = (w: Error): void => { warnings.push(w.message) }
    process.on('warning', onWarning)
    try {
      await peer.start()
      const pool = (peer as any).parser as ParsePool
      const blocks = (peer as any).blocks as BlockStore
      const reads: string[] = []
      const read = blocks.read.bind(blocks)
      blocks.read = async (cid, loc) => { reads.push(cid); return await read(cid, loc) }
      // The worker is told to stop just before it is handed the third page: it never answers that one.
      const parse = pool.parse.bind(pool)
      let handed = 0
      pool.parse = (...args) => {
        if (++handed === 3) void (pool as any).workers[0].worker.terminate()
        return parse(...args)
      }
      await peer.seed(web.seeds)
      await peer.whenIdle()
      assert.ok(reads.length >= 1, 'the lost pages were read back from the block store')
      const fetched = new Set(web.hits().filter(h => !h.path.startsWith('/robots.txt')).map(h => h.url))
      assert.deepEqual([...fetched].sort(), [...web.expected].sort())
      assert.ok(warnings.some(w => /parse worker 0 exited/.test(w)), warnings.join('; '))
    } finally {
      process.off('warning', onWarning)
      await peer.stop()
      await web.close()
      await dir.remove()
    }
  })
})

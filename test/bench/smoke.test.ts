import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { main } from '../../bench/single-peer.js'
import { useTempDirs } from '../utils/tmp.js'

// The benchmark scripts must not rot: run the single-peer one on a tiny site (shoal only; wget
// and Crawlee are installed by the benchmark itself, not by the tests).
describe('bench smoke', function () {
  this.timeout(120_000)
  const dirs = useTempDirs('shoal-bench-')

  it('bench/single-peer.ts crawls a tiny generated site and writes its results', async () => {
    const out = join(await dirs.make(), 'result.json')
    const code = await main(['--pages', '40', '--runs', '1', '--tools', 'shoal', '--profile', 'small', '--out', out])
    assert.equal(code, 0)
    const result = JSON.parse(await readFile(out, 'utf8'))
    assert.equal(result.summary.shoal.coverage, 1)
    assert.equal(result.summary.shoal.duplicateFetches, 0)
    assert.ok(result.summary.shoal.pagesPerSecond > 0)
  })
})

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
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

  it('bench/hot-path.ts crawls a site in memory and sets it against htmlparser2 alone', () => {
    const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'bench/hot-path.ts', '--pages', '200', '--profile', 'small'], { cwd: root, encoding: 'utf8' })
    assert.equal(run.status, 0, run.stderr)
    const result = JSON.parse(run.stdout.trim().split('\n').pop() as string)
    assert.equal(result.pages, 200)
    assert.equal(result.parseAlonePasses.length, 5)
    assert.ok(result.parseAloneMsPerPage > 0 && result.cpuMsPerPage > 0 && result.scanAloneMsPerPage > 0)
    // Both figures are rounded to 3 decimals before the ratio is taken of the unrounded ones.
    assert.ok(Math.abs(result.ratioToParse - result.cpuMsPerPage / result.parseAloneMsPerPage) < 0.05, `ratio ${result.ratioToParse}`)
  })

  it('bench/idle.ts reads what an idle cluster costs a second', () => {
    const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'bench/idle.ts', '--peers', '2', '--seconds', '1', '--settle', '0'], { cwd: root, encoding: 'utf8' })
    assert.equal(run.status, 0, run.stderr)
    const result = JSON.parse(run.stdout.trim().split('\n').pop() as string)
    assert.equal(result.cpuSecondsPerPeer.length, 2)
    assert.ok(result.cpuSecondsPerPeer.every((s: number) => s >= 0) && result.cpuMsPerSecondAllPeers >= 0)
  })
})

import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { main, parseOptions, runMemoryBench, svgPlot, table } from '../../bench/memory.js'
import { useTempDirs } from '../utils/tmp.js'

// bench/memory.ts must not rot: a peer discovers a few thousand URLs of the tree web, sampled every
// 100 ms, and the results, the table and the plot come out whole. No figure is judged here.
describe('bench memory smoke', function () {
  this.timeout(120_000)
  const dirs = useTempDirs('shoal-bench-memory-')

  it('runs a peer until it has discovered --urls URLs, sampling its memory', async () => {
    const o = parseOptions(['--urls', '3000', '--links', '40', '--repeats', '3', '--hosts', '3', '--interval', '100', '--every', '1000'])
    const r = await runMemoryBench(o, () => {})
    assert.equal(r.error, undefined)
    assert.equal(r.discovered, 3000, 'maxPages stops admission at exactly --urls')
    assert.ok(r.fetched > 0 && r.fetched < 3000, `fetched ${r.fetched}: discovering needs only a few pages`)
    assert.ok(r.samples.length > 0)
    for (const s of r.samples) {
      assert.ok(s.rssMB > 0 && s.hwmMB >= s.rssMB - 0.1, JSON.stringify(s))
      assert.ok(Math.abs(s.anonMB + s.fileMB - s.rssMB) < 5, 'RssAnon + RssFile ≈ VmRSS')
    }
    assert.ok(r.peakRssMB >= Math.max(...r.samples.map(s => s.rssMB)) - 0.1)
    assert.ok(r.cpuSeconds > 0, 'the peer\'s CPU time is read from /proc')
    assert.match(table(r), /\| peak \(VmHWM\) \| \*\*\d+\*\* \|/)
    const svg = svgPlot([r], 'smoke')
    assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
    assert.match(svg, /<polyline [^>]*points="[\d.]+,[\d.]+/)
    assert.match(svg, /aim: 400 MB/)
  })

  it('main writes the JSON and the SVG where it is told', async () => {
    const dir = await dirs.make()
    const out = join(dir, 'm.json')
    const svg = join(dir, 'm.svg')
    const code = await main(['--urls', '500', '--links', '30', '--hosts', '2', '--interval', '100', '--label', 'smoke', '--out', out, '--svg', svg])
    assert.equal(code, 0)
    const r = JSON.parse(await readFile(out, 'utf8'))
    assert.equal(r.label, 'smoke')
    assert.equal(r.discovered, 500)
    assert.match(await readFile(svg, 'utf8'), /smoke: RSS/)
  })
})

import assert from 'node:assert/strict'
import { lastJson, runShoal } from '../utils/cli.js'

describe('shoal sim (npm start)', function () {
  this.timeout(120_000)

  it('crawls the synthetic web with real peers and every invariant holds', async () => {
    const r = await runShoal(['sim', '--peers', '2', '--hosts', '3', '--pages', '90', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const report = lastJson(r.stdout)
    assert.equal(report.peers, 2)
    assert.equal(report.pagesExpected, 90)
    assert.equal(report.coverage, 1)
    assert.equal(report.duplicateFetches, 0)
    assert.deepEqual(Object.values(report.invariants).filter(v => v !== true), [])
  })

  it('--model: the same seed gives the same report, and a fault of the real mode is refused', async () => {
    const args = ['sim', '--model', '--peers', '60', '--pages', '6000', '--seed', '5', '--fault', 'kill:3@30%', '--fault', 'join:2@50%', '--json']
    const [a, b] = await Promise.all([runShoal(args), runShoal(args)])
    assert.equal(a.code, 0, a.stderr)
    const strip = (r: any): any => { const { wall: _w, wallSeconds: _s, pagesPerSecond: _p, ...rest } = r; return rest }
    const ra = lastJson(a.stdout)
    assert.equal(ra.mode, 'model')
    assert.equal(ra.peers, 60)
    assert.equal(ra.peersAtEnd, 59)
    assert.deepEqual(strip(ra), strip(lastJson(b.stdout)))
    const bad = await runShoal(['sim', '--model', '--kill', '1@30%'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /--kill is for real peers; the model takes --fault SPEC/)
    const badSpec = await runShoal(['sim', '--model', '--fault', 'explode@3s'])
    assert.equal(badSpec.code, 2)
    assert.match(badSpec.stderr, /kind must be one of/)
  })

  it('refuses a bad option with exit code 2', async () => {
    const r = await runShoal(['sim', '--peers', 'many'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--peers must be a positive integer, got "many"/)
  })
})

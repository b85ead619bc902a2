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

  it('refuses a bad option with exit code 2', async () => {
    const r = await runShoal(['sim', '--peers', 'many'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--peers must be a positive integer, got "many"/)
  })
})

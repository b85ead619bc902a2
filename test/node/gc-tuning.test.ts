import assert from 'node:assert/strict'
import { describe, it } from 'mocha'
import { DEFAULT_HEAP_GROWTH, heapGrowthFlag, userSetHeapGrowth } from '../../node/gc-tuning.js'
import { resolveConfig } from '../../node/config.js'

describe('gc-tuning: the heap growth a command sets', () => {
  it('maps a percent to V8\'s flag; 0 leaves V8\'s own rule', () => {
    assert.equal(heapGrowthFlag(50), '--heap-growing-percent=50')
    assert.equal(heapGrowthFlag(0), undefined)
    assert.equal(resolveConfig({}).heapGrowth, DEFAULT_HEAP_GROWTH)
  })

  it('refuses what V8 would not take, naming the option and the range', () => {
    for (const bad of [-1, 1.5, 1001, Number.NaN]) {
      assert.throws(() => heapGrowthFlag(bad), /heap growth \(--heap-growth, heapGrowth\) must be an integer from 0 .* to 1000 percent/)
    }
    assert.throws(() => resolveConfig({ heapGrowth: 5000 }), /to 1000 percent, got 5000/)
  })

  it('leaves the flag to a user who set it on node\'s command line', () => {
    assert.equal(userSetHeapGrowth([]), false)
    assert.equal(userSetHeapGrowth(['--heap-growing-percent=20']), true)
    assert.equal(userSetHeapGrowth(['--enable-source-maps', '--heap_growing_percent=80']), true)
    assert.equal(userSetHeapGrowth(['--max-semi-space-size=8']), false)
  })
})

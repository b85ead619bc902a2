import assert from 'node:assert/strict'
import { checkFaults, parseFault, parseWhen } from '../../sim/faults.js'

describe('sim fault schedule', () => {
  it('reads times in seconds and shares of pages fetched', () => {
    assert.deepEqual(parseWhen('12s', 'x'), { seconds: 12 })
    assert.deepEqual(parseWhen('1.5', 'x'), { seconds: 1.5 })
    assert.deepEqual(parseWhen('500ms', 'x'), { seconds: 0.5 })
    assert.deepEqual(parseWhen('30%', 'x'), { share: 0.3 })
    assert.throws(() => parseWhen('150%', 'x'), /at most 100%/)
    assert.throws(() => parseWhen('soon', '--kill 1@soon'), /--kill 1@soon: expected a time in seconds/)
  })

  it('parses each kind of fault', () => {
    assert.deepEqual(parseFault('kill', '2@30%'), { kind: 'kill', spec: 'kill 2@30%', peers: [2], at: { share: 0.3 } })
    assert.deepEqual(parseFault('join', '4@10s'), { kind: 'join', spec: 'join 4@10s', peers: [4], at: { seconds: 10 } })
    assert.deepEqual(parseFault('pause', '1@20%..40%'), { kind: 'pause', spec: 'pause 1@20%..40%', peers: [1], at: { share: 0.2 }, until: { share: 0.4 } })
    assert.deepEqual(parseFault('partition', '0,1|2,3@5s..15s'), { kind: 'partition', spec: 'partition 0,1|2,3@5s..15s', peers: [0, 1], others: [2, 3], at: { seconds: 5 }, until: { seconds: 15 } })
    assert.deepEqual(parseFault('partition', '0@5s').others, undefined)
  })

  it('refuses malformed faults with the flag and the reason', () => {
    assert.throws(() => parseFault('kill', '2'), /--kill 2: expected K@T/)
    assert.throws(() => parseFault('kill', 'x@3s'), /expected peer indexes/)
    assert.throws(() => parseFault('kill', '1,2@3s'), /one peer per --kill/)
    assert.throws(() => parseFault('kill', '1@3s..5s'), /only --pause and --partition take an end/)
    assert.throws(() => parseFault('pause', '1@5s..3s'), /the end must come after the start/)
    assert.throws(() => parseFault('partition', '0,1|1,2@3s'), /a peer is on both sides/)
    assert.throws(() => parseFault('partition', '|1@3s'), /expected sides/)
  })

  it('checks the schedule against the peers of the run', () => {
    checkFaults([parseFault('kill', '1@10%'), parseFault('join', '4@20%'), parseFault('kill', '4@50%')], 4)
    assert.throws(() => checkFaults([parseFault('kill', '7@10%')], 4), /there is no peer 7 \(peers 0–3\)/)
    assert.throws(() => checkFaults([parseFault('join', '2@10%')], 4), /peer 2 already runs from the start/)
    assert.throws(() => checkFaults([parseFault('join', '4@10%'), parseFault('join', '4@20%')], 4), /joins twice/)
  })
})

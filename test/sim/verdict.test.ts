import assert from 'node:assert/strict'
import { judgeDuplicates, judgePoliteness, peerOfUserAgent, type LoggedRequest } from '../../sim/verdict.js'

const req = (at: number, peer: string, target: string, status = 200, host = 0): LoggedRequest => ({ at, host, target, peer, status })

describe('sim verdict (from the request log)', () => {
  it('names the peer of a shoal User-Agent', () => {
    assert.equal(peerOfUserAgent('shoal/0.1.0 (peer abcd1234; +https://example.org)'), 'abcd1234')
    assert.equal(peerOfUserAgent('curl/8'), 'curl/8')
  })

  it('counts a repeat after a final answer as a duplicate, and a retry after 503 or 429 as none', () => {
    const v = judgeDuplicates([
      req(0, 'a', '/x', 503), req(10, 'a', '/x', 429), req(20, 'a', '/x'),
      req(30, 'a', '/y'), req(40, 'b', '/y'),
      req(50, 'a', '/robots.txt'), req(60, 'b', '/robots.txt')
    ], [])
    assert.equal(v.total, 1)
    assert.equal(v.unexplained, 1)
    assert.match(v.examples[0], /\/y \(peer a at 0.03s, then peer b at 0.04s\)/)
  })

  it('excuses what the faulted peer had in flight at a kill, and nothing it fetched earlier', () => {
    const windows = [{ spec: 'kill 1@50%', peer: 'dead', from: 1000, to: 4000 }]
    const v = judgeDuplicates([
      req(3900, 'dead', '/inflight'), req(6000, 'b', '/inflight'),
      req(500, 'dead', '/old'), req(6000, 'b', '/old'),
      req(3900, 'c', '/other'), req(6000, 'b', '/other')
    ], windows)
    assert.deepEqual({ total: v.total, atFault: v.atFault, unexplained: v.unexplained, byFault: v.byFault }, { total: 3, atFault: 1, unexplained: 2, byFault: { 'kill 1@50%': 1 } })
  })

  it('keeps repeats during a partition apart', () => {
    const v = judgeDuplicates([req(100, 'a', '/p'), req(200, 'b', '/p')], [{ spec: 'partition 0|1@1s', from: 0, to: 1000, partition: true }])
    assert.equal(v.duringPartition, 1)
    assert.equal(v.unexplained, 0)
  })

  it('flags requests to one host closer than the delay, per connection allowed, outside hand-offs', () => {
    const log = [req(0, 'a', '/1'), req(120, 'a', '/2'), req(150, 'b', '/3'), req(400, 'a', '/4', 200, 1), req(420, 'a', '/5', 200, 1)]
    const strict = judgePoliteness(log, 100, 1, [])
    assert.equal(strict.violations, 2)
    assert.equal(strict.unexplained, 2)
    assert.equal(judgePoliteness(log, 100, 2, []).violations, 0, 'two connections per host: two requests may overlap')
    const excused = judgePoliteness(log, 100, 1, [{ spec: 'join 2@1s', from: 140, to: 200 }])
    assert.deepEqual([excused.excused, excused.unexplained], [1, 1])
    assert.equal(judgePoliteness(log, 0, 1, []).violations, 0, 'no delay: nothing to check')
  })
})

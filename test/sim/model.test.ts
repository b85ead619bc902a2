import assert from 'node:assert/strict'
import { Ring } from '../../node/ring.js'
import { deterministicPart, formatFault, parseFault, runModel } from '../../sim/model/index.js'
import type { ModelOptions, ModelReport } from '../../sim/model/index.js'
import { resolveOptions } from '../../sim/model/options.js'
import { Universe } from '../../sim/model/views.js'
import { ModelWeb } from '../../sim/model/web.js'
import { Prng } from '../../sim/web/prng.js'

/** The invariants that do not hold, by name (empty when all hold). */
function failing (r: ModelReport): string[] {
  return Object.entries(r.invariants).filter(([, ok]) => !ok).map(([name]) => name)
}

describe('sim/model: fault specs', () => {
  it('parses every kind, amount and moment', () => {
    assert.deepEqual(parseFault('kill:3@20%'), { kind: 'kill', count: 3, at: { share: 0.2 } })
    assert.deepEqual(parseFault('mass-kill:20%@30s'), { kind: 'mass-kill', share: 0.2, at: { ms: 30_000 } })
    assert.deepEqual(parseFault('partition:50%@10s..40s'), { kind: 'partition', share: 0.5, at: { ms: 10_000 }, until: { ms: 40_000 } })
    assert.deepEqual(parseFault('rolling-restart@20%'), { kind: 'rolling-restart', at: { share: 0.2 } })
    assert.deepEqual(parseFault('restart:2@20%..+8s'), { kind: 'restart', count: 2, at: { share: 0.2 }, until: { afterMs: 8000 } })
    assert.deepEqual(parseFault('join:5@1.5m'), { kind: 'join', count: 5, at: { ms: 90_000 } })
    assert.deepEqual(parseFault('pause@500ms..+25s'), { kind: 'pause', at: { ms: 500 }, until: { afterMs: 25_000 } })
    assert.deepEqual(parseFault('kill@45'), { kind: 'kill', at: { ms: 45_000 } })
    // Peers by index, as the real mode's --kill K@T names them.
    assert.deepEqual(parseFault('kill:#2@30%'), { kind: 'kill', peers: [2], at: { share: 0.3 } })
    assert.deepEqual(parseFault('partition:#0,1,2@10s..+20s'), { kind: 'partition', peers: [0, 1, 2], at: { ms: 10_000 }, until: { afterMs: 20_000 } })
  })

  it('formats a fault back to its canonical spec', () => {
    for (const spec of ['kill:3@20%', 'kill:#2,7@30%', 'mass-kill:20%@30s', 'partition:50%@10s..40s', 'rolling-restart@20%', 'restart:2@20%..+8s', 'pause@0.5s..+25s']) {
      assert.equal(formatFault(parseFault(spec)), spec)
    }
  })

  it('refuses a malformed spec with a message that says what is wrong', () => {
    assert.throws(() => parseFault('explode@10s'), /kind must be one of kill, restart, join, pause, partition, rolling-restart, mass-kill/)
    assert.throws(() => parseFault('kill'), /must look like KIND\[:AMOUNT\]@START\[\.\.END\]/)
    assert.throws(() => parseFault('kill:0@10s'), /amount must be a positive number of peers or a share/)
    assert.throws(() => parseFault('mass-kill:120%@10s'), /share of peers must be between 0% and 100%/)
    assert.throws(() => parseFault('kill@soon'), /"soon" is not a time/)
    assert.throws(() => parseFault('kill@10s..20s'), /kill takes no end/)
    assert.throws(() => parseFault('pause@10s..50%'), /pause: the end must be a time/)
    assert.throws(() => parseFault('kill:#a@10s'), /peers by index look like #2 or #0,1,2/)
    assert.throws(() => parseFault('join:#3@10s'), /join takes no peer indexes/)
  })

  it('checks the options', () => {
    assert.throws(() => resolveOptions({ peers: 0 }), /peers must be an integer from 1 to 100000, got 0/)
    assert.throws(() => resolveOptions({ latency: [20, 2] }), /latency must be a number or a \[min, max\] pair/)
    assert.throws(() => resolveOptions({ pages: 10, hosts: 20 }), /hosts must be an integer from 1 to 10, got 20/)
    assert.throws(() => resolveOptions({ peers: 4, faults: ['kill:#4@10s'] }), /kill:#4@10s: there is no peer 4 \(peers are 0 to 3\)/)
  })
})

describe('sim/model: ring views', () => {
  it('give every host the owner and replicas that Ring.of(members) gives it, even with most peers out', () => {
    const ids = Array.from({ length: 120 }, (_, i) => `peer-${i}`)
    const hostKey = (h: number): string => `h${h}.sim.example:80`
    const u = new Universe(ids, 300, hostKey, 64, 3)
    const rng = new Prng(7)
    // Random halves, a tenth, and three peers (where the prefix of K peers runs out: the fallback).
    for (const keep of [0.5, 0.5, 0.1, 3 / 120]) {
      const m = Uint8Array.from(ids, () => rng.float() < keep ? 1 : 0)
      m[rng.int(ids.length)] = 1
      const v = u.view(m)
      const ring = Ring.of(ids.filter((_, i) => m[i] === 1))
      const out: number[] = []
      for (let h = 0; h < 300; h++) {
        assert.equal(ids[u.owner(v, h)], ring.owner(hostKey(h)), `owner of host ${h}`)
        const n = u.replicas(v, h, 3, out)
        assert.deepEqual(out.slice(0, n).map(i => ids[i]), ring.replicas(hostKey(h), 3), `replicas of host ${h}`)
      }
    }
    assert.ok(u.fallbacks > 0, 'the three-peer view needed the view\'s own ring')
  })
})

describe('sim/model: simulated web', () => {
  it('draws the same links for the same seed and page, and its ground truth is what a BFS reaches', () => {
    const a = new ModelWeb(resolveOptions({ pages: 20_000, seed: 3 }))
    const b = new ModelWeb(resolveOptions({ pages: 20_000, seed: 3 }))
    const c = new ModelWeb(resolveOptions({ pages: 20_000, seed: 4 }))
    const x = new Int32Array(a.maxLinks)
    const y = new Int32Array(a.maxLinks)
    let differ = 0
    for (let p = 0; p < 20_000; p += 97) {
      const n = a.linksOf(p, x)
      assert.equal(b.linksOf(p, y), n)
      assert.deepEqual(Array.from(y.subarray(0, n)), Array.from(x.subarray(0, n)))
      const m = c.linksOf(p, y)
      if (m !== n || y.subarray(0, n).some((t, i) => t !== x[i])) differ++
    }
    assert.ok(differ > 150, `another seed, other links (${differ} of 207 pages differ)`)
    assert.equal(a.expectedCount, b.expectedCount)
    // Check the ground truth from the outside: every expected page's links are expected, and every seed is.
    for (const s of a.seeds) assert.ok(a.isExpected(s))
    for (let p = 0; p < 20_000; p++) {
      if (!a.isExpected(p)) continue
      const n = a.linksOf(p, x)
      for (let i = 0; i < n; i++) assert.ok(a.isExpected(x[i]), `page ${x[i]}, linked from expected page ${p}`)
    }
    assert.ok(a.expectedCount > 19_000 && a.expectedCount <= 20_000, `expected ${a.expectedCount}`)
  })
})

describe('sim/model: runs (a few hundred peers, a few seeds)', function () {
  this.timeout(300_000)

  const faults = ['kill:2@20%', 'restart:2@40%', 'pause:1@60%..+15s', 'join:2@70%']
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: 300 peers, 30,000 pages, a kill, restarts, a freeze and joins: every invariant holds`, async () => {
      const r = await runModel({ peers: 300, pages: 30_000, seed, faults })
      assert.deepEqual(failing(r), [])
      assert.equal(r.peers, 300)
      assert.equal(r.peersAtEnd, 300 - 2 + 2)
      assert.equal(r.coverage, 1)
      assert.equal(r.lostUrls, 0)
      assert.equal(r.duplicateFetches, 0)
      assert.equal(r.politenessViolations, 0)
      assert.equal(r.underReplicated, 0)
      assert.equal(r.faults.length, 4)
      // The kill and the restarts were noticed and their hosts taken over within seconds.
      for (const f of r.faults.slice(0, 2)) {
        assert.equal(f.hostsResumed, f.hostsWatched, f.spec)
        if (f.failoverMaxSeconds !== undefined) assert.ok(f.failoverMaxSeconds < 3, `${f.spec}: ${f.failoverMaxSeconds} s`)
      }
      assert.ok(r.messagesRouted > 0 && r.bytesPerLink > 40 && r.bytesPerLink < 200, `bytes per link ${r.bytesPerLink}`)
    })
  }

  it('gives a byte-identical report for the same seed, and another for another seed', async () => {
    const options: ModelOptions = { peers: 120, pages: 12_000, seed: 'twice', loss: 0.001, faults: ['kill:1@25%', 'partition:30%@40%..+20s', 'join:1@60%'] }
    const a = JSON.stringify(deterministicPart(await runModel(options)))
    const b = JSON.stringify(deterministicPart(await runModel(options)))
    assert.equal(a, b)
    const c = JSON.stringify(deterministicPart(await runModel({ ...options, seed: 'other' })))
    assert.notEqual(a, c)
  })

  it('flags lost URLs when a peer dies with no replica (r = 1), and none with r = 2', async () => {
    // Hosts without links between them: a host's unfetched pages are known only to its owner.
    const options: ModelOptions = { peers: 100, pages: 20_000, crossHostLinks: 0, seedHosts: 200, faults: ['kill:2@30%'] }
    const single = await runModel({ ...options, replicas: 1 })
    assert.ok(single.lostUrls > 0, `lost URLs: ${single.lostUrls}`)
    assert.equal(single.pagesFetched + single.lostUrls, single.pagesExpected)
    assert.ok(single.lostRecords > 0)
    assert.deepEqual(failing(single), ['allPagesFetched', 'fullyReplicated'])
    const double = await runModel({ ...options, replicas: 2 })
    assert.equal(double.lostUrls, 0)
    assert.deepEqual(failing(double), [])
  })

  it('hits the peers a fault names by index', async () => {
    const r = await runModel({ peers: 20, pages: 5000, seed: 9, faults: ['kill:#3@30%', 'pause:#5,6@40%..+15s'] })
    assert.deepEqual(r.faults.map(f => f.peers.map(id => id.split('.')[0])), [['p3'], ['p5', 'p6']])
    assert.equal(r.peersAtEnd, 19)
    assert.deepEqual(failing(r), [])
  })

  it('counts re-fetches after a mass kill as in flight or as data loss, not as duplicates', async () => {
    const r = await runModel({ peers: 200, pages: 30_000, seed: 5, faults: ['mass-kill:20%@30%'] })
    assert.equal(r.peersAtEnd, 160)
    assert.equal(r.duplicateFetches, 0)
    assert.ok(r.inFlightAtFault + r.duplicatesAfterDataLoss > 0)
    assert.deepEqual(failing(r), [])
  })
})

/**
 * Bugs of shoal's protocol (node/daemon.ts, node/replicas.ts) that the model found; each seed
 * reproduces its bug. The model follows the daemon as it is, so these are pending until the daemon
 * is fixed (then the fix becomes the model's behaviour and they must pass as they are). Each fix is
 * modelled too (`fixes`), and the tests after them show it makes the same seed pass.
 */
describe('sim/model: regressions found by the model', function () {
  this.timeout(300_000)

  const rejoin: ModelOptions = { peers: 200, pages: 40_000, seed: 1, faults: ['rolling-restart@10%'] }
  const heal: ModelOptions = { peers: 200, pages: 40_000, seed: 1, faults: ['partition:50%@20%..+30s'] }
  const flap: ModelOptions = { peers: 30, pages: 20_000, seed: 1, faults: ['rolling-restart:10%@10%'] }

  // daemon.owns waits for a host's hand-off only while previousRing is the ring from before the
  // host moved: the next ring change (another peer of the wave coming back) replaces it, and the
  // rejoined peer crawls the host before its records arrive.
  it.skip('a rejoined peer keeps waiting for its hand-off when the ring changes again (rolling restart, seed 1)', async () => {
    assert.equal((await runModel(rejoin)).duplicateFetches, 0)
  })

  it('… and does with the handoff-hold fix modelled', async () => {
    assert.equal((await runModel({ ...rejoin, fixes: ['handoff-hold'] })).duplicateFetches, 0)
  })

  // ReplicaStore.apply writes a handed-over record on the owner only: the owner's replicas never get
  // the records the other side of a healed partition fetched, and keep stale queued entries.
  it.skip('records handed to an owner reach its replicas (partition healing, seed 1)', async () => {
    assert.equal((await runModel(heal)).underReplicated, 0)
  })

  it('… and do with the replicate-handed-records fix modelled', async () => {
    assert.equal((await runModel({ ...heal, fixes: ['replicate-handed-records'] })).underReplicated, 0)
  })

  // daemon.rebalance coalesces the ring changes made during a pass into one pass from the first
  // ring: a replica that left and came back meanwhile is no "gained" replica, and never gets the
  // copies made while it was away.
  it.skip('a replica that leaves and rejoins during one rebalance pass gets the copies it missed (rolling restart, seed 1)', async () => {
    assert.equal((await runModel(flap)).underReplicated, 0)
  })

  it('… and does with the rebalance-flapping fix modelled', async () => {
    assert.equal((await runModel({ ...flap, fixes: ['rebalance-flapping'] })).underReplicated, 0)
  })

  // The links transport gives up on a batch only at its ack timeout (30 s), though membership drops
  // a silent peer after 10 s: in a partition every page with a link to the other side waits in a
  // processor loop, the mailbox fills, and the fetch loops stop on both sides until the timeouts.
  const split: ModelOptions = { peers: 50, pages: 100_000, seed: 1, faults: ['partition:50%@30%..+30s'] }
  const stalled = (r: ModelReport): boolean => Math.min(...r.timeline.slice(4, 7)) < r.timeline[3] / 2

  it.skip('a partition does not stop the crawl on either side (seed 1)', async () => {
    assert.equal(stalled(await runModel(split)), false)
  })

  it('… and does not with the reroute-on-leave fix modelled', async () => {
    const r = await runModel({ ...split, fixes: ['reroute-on-leave'] })
    assert.ok(r.faults[0].at >= 30 && r.faults[0].at < 40, `the partition began at ${r.faults[0].at} s`)
    assert.equal(stalled(r), false, r.timeline.join(' '))
  })

  // Not fixed in the model: a host's hand-off leaves out the URLs in flight at the old owner (they
  // finish there), and sends `handed` before they are done; the new owner admits such a URL when
  // another page links to it, and fetches it again. Message loss (a 30 s ack timeout) widens the window.
  it.skip('a URL in flight at a host\'s old owner is not fetched again by the new one (join with 1 % loss, seed 1)', async () => {
    const r = await runModel({ peers: 100, pages: 20_000, seed: 1, loss: 0.01, faults: ['kill:2@30%', 'join:2@50%'] })
    assert.equal(r.duplicateFetches, 0)
  })

  // Not fixed in the model either: a restarted owner whose interim owner is restarted before it has
  // handed the host back crawls with its stale state, though the interim replica holds the records.
  it.skip('a returning owner gets the records its interim owner made, even when that one goes down (rolling restart, seed 1)', async () => {
    const r = await runModel({ ...flap, fixes: ['handoff-hold', 'replicate-handed-records', 'rebalance-flapping'] })
    assert.equal(r.duplicateFetches, 0)
  })
})

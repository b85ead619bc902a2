import assert from 'node:assert/strict'
import { parseFault } from '../../sim/faults.js'
import { runReal, type RealSimOptions, type SimReport } from '../../sim/run.js'

/** Small and quick: short heartbeats and silence timeout, a small per-host delay that is still checked. */
const quick: RealSimOptions = { peers: 4, hosts: 8, pages: 800, seed: 3, delay: 20, heartbeat: 500, silence: 3000, sample: 40 }

function failed (r: SimReport): string[] {
  return Object.entries(r.invariants).filter(([, ok]) => !ok).map(([k]) => k)
}

function explain (r: SimReport): string {
  return JSON.stringify({ failed: failed(r), duplicates: r.duplicates, politeness: r.politeness, sample: r.sample, faults: r.faults }, null, 1)
}

describe('shoal sim, real mode: real peers, staged faults, invariants', function () {
  this.timeout(180_000)

  it('kill, join, restart and pause during one crawl: every invariant holds', async () => {
    const r = await runReal({
      ...quick,
      // Early enough that the joiner's hosts still have pages left once it has started and settled.
      delay: 40,
      faults: [parseFault('kill', '1@10%'), parseFault('join', '4@15%'), parseFault('restart', '1@40%'), parseFault('pause', '2@60%..+5s')]
    })
    assert.deepEqual(failed(r), [], explain(r))
    assert.equal(r.coverage, 1)
    assert.equal(r.peersAtEnd, 5)
    for (const f of r.faults) assert.equal(f.note, undefined, `${f.spec} fired on time`)
    const [kill, join, restart, pause] = r.faults
    // Ownership depends on the peers' random ids: with 8 hosts a peer may own none.
    if (kill.hosts! > 0) assert.ok(kill.recoverySeconds !== undefined, 'the killed peer\'s hosts were fetched again by others')
    // …and the joiner's hosts may have been finished before it settled (the crawl is quick).
    if (join.hostsBusyAfterSettle! > 0) assert.ok(join.recoverySeconds !== undefined, `the joiner took over ${join.hosts} hosts, ${join.hostsBusyAfterSettle} of them still crawled after it settled, and fetched pages`)
    assert.ok(restart.settleSeconds !== undefined && pause.endedAt !== undefined)
    assert.equal(r.duplicates.unexplained, 0)
    assert.equal(r.sample.urls, 40)
    assert.equal(r.sample.peers, 5)
  })

  it('a partition that heals: nothing lost, every peer answers alike at the end', async () => {
    const r = await runReal({ ...quick, faults: [parseFault('partition', '0,1|2,3@20%..+4s')] })
    assert.deepEqual(failed(r), [], explain(r))
    assert.equal(r.lostUrls, 0)
    assert.ok(r.faults[0].endedAt !== undefined && r.faults[0].settleSeconds !== undefined)
  })

  it('the checks can fail: without replication a kill loses URLs, and the report says so', async () => {
    // r = 1 and no links between hosts: what the killed peers had queued exists nowhere else. Two
    // of four peers die and there are 16 hosts, so that whatever the random peer ids make of the
    // ring the dead own some hosts (with 8 hosts both owned none in ~0.4 % of rings: it happened).
    const r = await runReal({ ...quick, hosts: 16, replicas: 1, web: { crossHostLinkRatio: 0 }, faults: [parseFault('kill', '1@25%'), parseFault('kill', '2@25%')], sample: 10 })
    assert.ok(r.faults[0].hosts! + r.faults[1].hosts! > 0, 'the killed peers owned hosts')
    assert.ok(r.lostUrls > 0, `URLs lost: ${r.lostUrls}`)
    assert.equal(r.invariants.noLostUrls, false)
    assert.equal(r.invariants.fullCoverage, false)
    assert.ok(r.coverage < 1)
  })
})

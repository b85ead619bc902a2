import assert from 'node:assert/strict'
import { Store } from '../../node/db.js'
import { Frontier, type Lease } from '../../node/frontier.js'
import { ReplicaStore } from '../../node/replicas.js'
import { useTempDirs } from '../utils/tmp.js'

const A = 'http://a.test'
const HOST = 'a.test:80'

describe('replica store', () => {
  const dirs = useTempDirs('shoal-replicas-')

  it('keeps an owner\'s entries apart from its own frontier, and takes them over when promoted, skipping what was done', async () => {
    const dir = await dirs.make()
    let store = new Store(dir)
    await store.open()
    let owned = false
    let frontier = new Frontier({ store, ownership: { owns: () => owned } }, { delay: 0 })
    await frontier.start()
    let replicas = new ReplicaStore(store, frontier)
    await replicas.apply([
      { k: 'entry', h: HOST, key: 'k1', u: `${A}/1`, d: 1 },
      { k: 'entry', h: HOST, key: 'k2', u: `${A}/2`, d: 1, r: `${A}/` },
      { k: 'entry', h: HOST, key: 'k3', u: `${A}/3`, d: 2 },
      { k: 'done', h: HOST, key: 'k1', rec: { url: `${A}/1`, status: 'fetched', fetchedAt: 1234, depth: 1 } },
      { k: 'seen', u: `${A}/3`, at: 99 },
      { k: 'record', rec: { url: `${A}/x`, status: 'http-error', httpStatus: 404, fetchedAt: 5, depth: 3 } }
    ])
    assert.equal(frontier.queued, 0, 'copies are not queued in this peer\'s frontier')
    assert.deepEqual(await replicas.hosts(), [HOST])
    assert.deepEqual((await replicas.entries(HOST)).map(e => e.entry.url), [`${A}/2`, `${A}/3`])
    assert.equal((await store.get('meta', `${A}/1`)).status, 'fetched', 'the record is answered here')
    assert.equal((await store.get('meta', `${A}/x`)).httpStatus, 404)
    await frontier.stop()
    await store.close()

    // After a restart (the owner died meanwhile), the ring makes this peer the owner.
    store = new Store(dir)
    await store.open()
    owned = true
    frontier = new Frontier({ store, ownership: { owns: () => owned } }, { delay: 0 })
    await frontier.start()
    replicas = new ReplicaStore(store, frontier)
    assert.equal(await replicas.promote(() => true), 1, '/3 was done (seen at 99), only /2 is taken over')
    assert.deepEqual(await replicas.hosts(), [])
    const l = await frontier.take() as Lease
    assert.equal(l.entry.url, `${A}/2`)
    assert.equal(l.entry.referrer, `${A}/`)
    await frontier.stop()
    await store.close()
  })

  it('never turns a URL fetched here back into a queued one when a copy of its entry comes late', async () => {
    const store = new Store(await dirs.make())
    await store.open()
    const frontier = new Frontier({ store, ownership: { owns: () => true } }, { delay: 0 })
    await frontier.start()
    const replicas = new ReplicaStore(store, frontier)
    // This peer took the host over and fetched /1; the host's owner comes back (restarted on its
    // data dir) and copies what it had queued when it died.
    await replicas.apply([{ k: 'record', rec: { url: `${A}/1`, status: 'fetched', fetchedAt: 1234, depth: 1 } }])
    await replicas.apply([{ k: 'entry', h: HOST, key: 'k1', u: `${A}/1`, d: 1 }, { k: 'entry', h: HOST, key: 'k2', u: `${A}/2`, d: 1 }])
    assert.deepEqual(await frontier.seen.lookup([`${A}/1`, `${A}/2`]), [1234, 0])
    assert.equal(await replicas.promote(() => true), 1, 'only /2 is taken over')
    await frontier.stop()
    await store.close()
  })

  // Regression: the meta protocol applies one batch at a time per stream. An apply that waited for
  // its own copies to reach a peer applying a batch of ours at that moment (both believing they
  // owned the host, during a hand-off) waited for the ack timeout on both sides: the join stall.
  it('takes entries of a host it owns into its frontier without waiting for their copies to reach other peers', async () => {
    const store = new Store(await dirs.make())
    await store.open()
    let acknowledge!: () => void
    const acked = new Promise<void>((resolve) => { acknowledge = resolve })
    const replicator = { entries: async () => { await acked }, done: async () => {} }
    const frontier = new Frontier({ store, replicator, ownership: { owns: () => true } }, { delay: 0 })
    await frontier.start()
    const replicas = new ReplicaStore(store, frontier, () => true)
    const applied = replicas.apply([{ k: 'entry', h: HOST, key: 'k1', u: `${A}/1`, d: 1 }])
    const late = new Promise(resolve => setTimeout(() => resolve('waited on the replicas'), 1000))
    assert.equal(await Promise.race([applied.then(() => 'applied'), late]), 'applied')
    assert.equal(frontier.queued, 1, 'queued here')
    assert.equal(frontier.idle, false, 'an admission under way until its copies are acknowledged')
    acknowledge()
    const l = await frontier.take() as Lease
    frontier.fetched(l)
    await frontier.complete(l, [], 'fetched', Date.now())
    await frontier.whenIdle()
    assert.equal(frontier.idle, true)
    await frontier.stop()
    await store.close()
  })

  it('drops a host it no longer holds', async () => {
    const store = new Store(await dirs.make())
    await store.open()
    const frontier = new Frontier({ store }, { delay: 0 })
    await frontier.start()
    const replicas = new ReplicaStore(store, frontier)
    await replicas.apply([{ k: 'entry', h: HOST, key: 'k1', u: `${A}/1`, d: 1 }, { k: 'entry', h: 'b.test:80', key: 'k1', u: 'http://b.test/1', d: 1 }])
    await replicas.apply([{ k: 'drop', h: HOST }])
    assert.deepEqual(await replicas.hosts(), ['b.test:80'])
    await frontier.stop()
    await store.close()
  })
})

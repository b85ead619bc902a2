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

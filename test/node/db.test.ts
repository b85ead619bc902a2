import assert from 'node:assert/strict'
import { Store } from '../../node/db.js'
import { useTempDirs } from '../utils/tmp.js'

describe('store and write batcher', () => {
  const dirs = useTempDirs('shoal-db-')

  it('groups concurrent writers into few batches, keeps their order, and reads missing keys as undefined', async () => {
    const store = new Store(await dirs.make())
    await store.open()
    let batches = 0
    const writeNow = store.writeNow.bind(store)
    store.writeNow = async (ops) => { batches++; await writeNow(ops) }
    // 500 writers at once, two of them writing the same key: the later one wins.
    await Promise.all(Array.from({ length: 500 }, async (_, i) => {
      await store.write([{ type: 'put', sublevel: 'meta', key: i === 499 ? 'k0' : `k${i}`, value: { i } }])
    }))
    assert.ok(batches <= 3, `500 writes went out in ${batches} batches`)
    assert.deepEqual(await store.get('meta', 'k0'), { i: 499 })
    assert.deepEqual(await store.get('meta', 'k498'), { i: 498 })
    assert.equal(await store.get('meta', 'nope'), undefined)
    await store.close()
  })
})

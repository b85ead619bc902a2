import assert from 'node:assert/strict'
import { Store } from '../../node/db.js'
import { BloomFilter, SeenSet } from '../../node/seen.js'
import { useTempDirs } from '../utils/tmp.js'

describe('seen set', () => {
  const dirs = useTempDirs('shoal-seen-')

  it('the Bloom filter has no false negatives and few false positives at its design load', () => {
    const f = new BloomFilter(2 ** 20, 7)
    const n = 100_000 // ~10 bits per entry
    for (let i = 0; i < n; i++) f.add(`http://h${i % 97}.test/p/${i}`)
    for (let i = 0; i < n; i++) assert.ok(f.has(`http://h${i % 97}.test/p/${i}`))
    let fp = 0
    for (let i = 0; i < n; i++) if (f.has(`http://other.test/q/${i}`)) fp++
    assert.ok(fp / n < 0.02, `false positive rate ${fp / n}`)
  })

  it('answers from disk what the filter and cache cannot, and survives a restart', async () => {
    const dir = await dirs.make()
    let store = new Store(dir)
    await store.open()
    let seen = new SeenSet(store, { filterBits: 1024, cacheSize: 2 })
    const urls = Array.from({ length: 20 }, (_, i) => `http://a.test/${i}`)
    assert.deepEqual(await seen.lookup(urls), urls.map(() => undefined))
    const ops = urls.map((u, i) => seen.mark(u, i))
    assert.equal(seen.peek(urls[3]), 3, 'a mark not yet written is known from memory')
    await store.write(ops)
    seen.landed(urls)
    assert.deepEqual(await seen.lookup(urls), urls.map((_, i) => i))
    assert.ok(seen.diskReads > 0, 'a cache of 2 cannot answer for 20 URLs: the disk did')
    await store.close()

    store = new Store(dir)
    await store.open()
    seen = new SeenSet(store, { filterBits: 1024, cacheSize: 2 })
    assert.equal(await seen.load(), 20)
    assert.deepEqual(await seen.lookup([urls[5], 'http://a.test/new']), [5, undefined])
    await store.close()
  })
})

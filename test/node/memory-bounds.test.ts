/**
 * The memory of a peer is bounded by its configuration, not by the size of its crawl: what the seen
 * set, the frontier and the write batcher keep in memory stays within their limits however many URLs
 * go through them (bench/memory.ts measures the whole process; these check each bound).
 */
import assert from 'node:assert/strict'
import { Store, type BatchOp } from '../../node/db.js'
import { Frontier, type Lease } from '../../node/frontier.js'
import { BloomFilter, SeenSet } from '../../node/seen.js'
import { parseRobotsTxt } from '../../node/robots-txt.js'
import * as C from '../../node/constants.js'
import { ManualClock } from '../utils/clock.js'
import { useTempDirs } from '../utils/tmp.js'

describe('memory bounds', function () {
  this.timeout(60_000)
  const dirs = useTempDirs('shoal-memory-')
  let store: Store

  beforeEach(async () => {
    store = new Store(await dirs.make())
    await store.open()
  })
  afterEach(async () => { await store.close() })

  it('the seen set caches fewer than seenCacheSize answers after 20,000 marks and lookups', async () => {
    const cacheSize = 1000
    const seen = new SeenSet(store, { filterBits: 2 ** 16, cacheSize })
    let maxCached = 0
    for (let batch = 0; batch < 20; batch++) {
      const urls = Array.from({ length: 1000 }, (_, i) => `http://h${i % 7}.test/${batch}/${i}`)
      assert.deepEqual(await seen.lookup(urls), urls.map(() => undefined))
      await store.write(urls.map(u => seen.mark(u, 0)))
      assert.equal(seen.memory.pending, 1000, 'marks are pending until their write has landed')
      seen.landed(urls)
      // Hits on the old generation move answers to the young one: still within the bound.
      await seen.lookup(urls.slice(0, 300))
      maxCached = Math.max(maxCached, seen.memory.cached)
      assert.ok(seen.memory.cached < cacheSize, `${seen.memory.cached} answers cached after batch ${batch}`)
      assert.equal(seen.memory.pending, 0)
    }
    assert.ok(maxCached > cacheSize / 2, 'the cache was used')
  })

  it('a Bloom filter false positive never loses a URL: every "maybe" is confirmed on disk', async () => {
    // 64 bits and 500 URLs: every bit is set, the filter says "maybe" for everything.
    const seen = new SeenSet(store, { filterBits: 64, filterHashes: 3, cacheSize: 0 })
    const known = Array.from({ length: 500 }, (_, i) => `http://a.test/known/${i}`)
    await store.write(known.map(u => seen.mark(u, 7)))
    seen.landed(known)
    const fresh = Array.from({ length: 500 }, (_, i) => `http://a.test/fresh/${i}`)
    const readsBefore = seen.diskReads
    assert.deepEqual(await seen.lookup(fresh), fresh.map(() => undefined), 'every new URL is new')
    assert.equal(seen.diskReads - readsBefore, 500, 'the saturated filter sent each one to the disk')
    assert.deepEqual(await seen.lookup(known), known.map(() => 7))
  })

  it('the default Bloom filter keeps false positives under 0.01 % at 5 million URLs and 1.1 % at 14 million', () => {
    const f = new BloomFilter(C.DEFAULT_SEEN_FILTER_BITS, C.DEFAULT_SEEN_FILTER_HASHES)
    assert.ok(f.falsePositiveRate(5_000_000) < 1e-4, String(f.falsePositiveRate(5_000_000)))
    assert.ok(f.falsePositiveRate(14_000_000) < 0.011, String(f.falsePositiveRate(14_000_000)))
    assert.throws(() => new BloomFilter(2 ** 33, 7), /at most 2\^32/)
  })

  it('the frontier buffers at most maxBufferedUrls over 200 hosts, and still drains every URL', async () => {
    const clock = new ManualClock()
    const maxBufferedUrls = 300
    const f = new Frontier({ store }, { clock, delay: 0, hostConcurrency: 1, hostBuffer: 128, maxBufferedUrls, seenCacheSize: 500 })
    await f.start()
    const hosts = 200
    const perHost = 20
    const links = []
    for (let i = 0; i < perHost; i++) for (let h = 0; h < hosts; h++) links.push({ url: `http://h${h}.test/p/${i}`, depth: 1 })
    for (let i = 0; i < links.length; i += 500) await f.add(links.slice(i, i + 500))
    assert.equal(f.queued, hosts * perHost)
    assert.ok(f.memory.buffered <= maxBufferedUrls, `${f.memory.buffered} buffered after admission`)
    // Drain it all: hosts past the bound load a few at a time when their turn comes.
    let maxBuffered = 0
    let done = 0
    while (done < hosts * perHost) {
      // One connection per host: take one URL from each of up to 64 hosts, then finish them.
      const leases: Lease[] = []
      const ready = Math.min(64, f.hostsWithWork().length)
      for (let i = 0; i < ready; i++) leases.push(await f.take() as Lease)
      for (const l of leases) {
        f.fetched(l)
        await f.complete(l, [], 'fetched', clock.now())
      }
      done += leases.length
      maxBuffered = Math.max(maxBuffered, f.memory.buffered)
    }
    await f.whenIdle()
    assert.equal(f.counters.done, hosts * perHost, 'every admitted URL was handed out once')
    assert.ok(maxBuffered <= maxBufferedUrls + C.MIN_HOST_REFILL * hosts, `at most ${maxBuffered} buffered while draining`)
    assert.deepEqual({ ...f.memory, seen: undefined }, { hosts, buffered: 0, leasedHosts: 0, seen: undefined })
    assert.ok(f.memory.seen.cached < 500)
    await f.stop()
  })

  it('a host with nothing left lets go of its robots rules, and gets them back for its next URL', async () => {
    const clock = new ManualClock()
    const rules = parseRobotsTxt('User-agent: *\nDisallow: /private/\n', 'shoal')
    let asked = 0
    const f = new Frontier({ store, robots: { cached: () => { asked++; return rules }, load: async () => rules } }, { clock, delay: 0 })
    await f.start()
    const finish = async (l: Lease): Promise<void> => {
      f.fetched(l)
      await f.complete(l, [], 'fetched', clock.now())
    }
    await f.add([{ url: 'http://a.test/one', depth: 1 }])
    await finish(await f.take() as Lease)
    await f.whenIdle()
    const before = asked
    await f.add([{ url: 'http://a.test/private/x', depth: 1 }, { url: 'http://a.test/two', depth: 1 }])
    const next = await f.take() as Lease
    assert.equal(next.entry.url, 'http://a.test/two', 'the disallowed URL was not handed out')
    await finish(next)
    await f.whenIdle()
    assert.equal(f.counters.byStatus.blocked, 1, 'the rules were applied again')
    assert.ok(asked > before, 'and asked for again, not kept with the idle host')
    await f.stop()
  })

  it('the write batcher makes writers wait once batchMaxQueued operations wait for the disk', async () => {
    await store.close()
    store = new Store(await dirs.make(), { batchMaxOps: 10, batchMaxQueued: 100 })
    await store.open()
    // Hold every batch until released: the disk is slower than the writers.
    const held: Array<() => void> = []
    const writeNow = store.writeNow.bind(store)
    store.writeNow = async (ops) => {
      await new Promise<void>((resolve) => { held.push(resolve) })
      await writeNow(ops)
    }
    let landed = 0
    let maxQueued = 0
    const writers = Array.from({ length: 50 }, async (_, w) => {
      const ops: BatchOp[] = Array.from({ length: 10 }, (_, i) => ({ type: 'put', sublevel: 'meta', key: `k${w}-${i}`, value: w }))
      await store.write(ops)
      landed++
    })
    // Let the batcher take what it will while nothing lands.
    for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => { setImmediate(resolve) })
    maxQueued = store.queuedOps
    assert.equal(landed, 0)
    assert.ok(maxQueued <= 100, `${maxQueued} operations queued with nothing written`)
    assert.ok(maxQueued >= 90, `the queue filled up to its bound (${maxQueued})`)
    // Release batches one at a time until every writer is through; the bound holds throughout.
    while (landed < 50) {
      const next = held.shift()
      if (next != null) next()
      await new Promise<void>((resolve) => { setImmediate(resolve) })
      assert.ok(store.queuedOps <= 100, `${store.queuedOps} operations queued`)
    }
    await Promise.all(writers)
    assert.equal(store.queuedOps, 0)
    assert.equal(await store.get('meta', 'k49-9'), 49)
    store.writeNow = writeNow
  })

  it('a write larger than batchMaxQueued waits its turn and is not overtaken by smaller ones', async () => {
    await store.close()
    store = new Store(await dirs.make(), { batchMaxOps: 10, batchMaxQueued: 100 })
    await store.open()
    const held: Array<() => void> = []
    const writeNow = store.writeNow.bind(store)
    store.writeNow = async (ops) => {
      await new Promise<void>((resolve) => { held.push(resolve) })
      await writeNow(ops)
    }
    const order: string[] = []
    const put = (name: string, n: number): Promise<void> => store.write(Array.from({ length: n }, (_, i) => ({ type: 'put' as const, sublevel: 'meta' as const, key: `${name}-${i}`, value: 1 }))).then(() => { order.push(name) })
    const writes = [put('small1', 10), put('small2', 10), put('big', 150), put('small3', 10), put('small4', 10)]
    for (let i = 0; i < 10; i++) await new Promise<void>((resolve) => { setImmediate(resolve) })
    assert.equal(store.queuedOps, 20, 'the big write waits for an empty queue; the small ones after it wait behind it')
    while (order.length < 5) {
      held.shift()?.()
      await new Promise<void>((resolve) => { setImmediate(resolve) })
    }
    await Promise.all(writes)
    assert.deepEqual(order, ['small1', 'small2', 'big', 'small3', 'small4'])
    assert.equal(store.queuedOps, 0)
    store.writeNow = writeNow
  })
})

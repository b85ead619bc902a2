import assert from 'node:assert/strict'
import { Store } from '../../node/db.js'
import { Frontier, type Lease } from '../../node/frontier.js'
import { parseRobotsTxt } from '../../node/robots-txt.js'
import type { RobotsRules } from '../../node/robots-txt.js'
import { ManualClock } from '../utils/clock.js'
import { useTempDirs } from '../utils/tmp.js'

const A = 'http://a.test'
const B = 'http://b.test'


describe('frontier', () => {
  const dirs = useTempDirs('shoal-frontier-')
  let store: Store
  let clock: ManualClock
  const frontiers: Frontier[] = []

  async function open (init: ConstructorParameters<typeof Frontier>[1] = {}, robots?: RobotsRules, owns?: (host: string) => boolean): Promise<Frontier> {
    const f = new Frontier({
      store,
      robots: robots == null ? undefined : { cached: () => robots, load: async () => robots },
      ownership: owns == null ? undefined : { owns }
    }, { clock, delay: 0, hostConcurrency: 1, ...init })
    await f.start()
    frontiers.push(f)
    return f
  }

  beforeEach(async () => {
    store = new Store(await dirs.make())
    await store.open()
    clock = new ManualClock()
  })
  afterEach(async () => {
    for (const f of frontiers.splice(0)) await f.stop()
    await store.close()
  })

  async function done (f: Frontier, l: Lease): Promise<void> {
    f.fetched(l)
    await f.complete(l, [], 'fetched', clock.now())
  }

  it('hands out the URLs of a host in the order they were admitted, each once', async () => {
    const f = await open()
    assert.equal(await f.add([1, 2, 3].map(i => ({ url: `${A}/${i}`, depth: 1 }))), 3)
    assert.equal(await f.add([{ url: `${A}/2`, depth: 1 }, { url: `${A}/4`, depth: 1 }]), 1, 'a seen URL is not admitted again')
    const got: string[] = []
    for (let i = 0; i < 4; i++) {
      const l = await f.take() as Lease
      got.push(l.entry.url)
      await done(f, l)
    }
    assert.deepEqual(got, [`${A}/1`, `${A}/2`, `${A}/3`, `${A}/4`])
    assert.equal(f.idle, true)
    assert.equal(f.counters.admitted, 4)
    assert.equal(f.counters.done, 4)
  })

  it('drops links past maxDepth, maxPagesPerHost and maxPages, and counts why', async () => {
    const f = await open({ maxDepth: 2, maxPagesPerHost: 2, maxPages: 3 })
    await f.add([
      { url: `${A}/deep`, depth: 3 },
      { url: `${A}/1`, depth: 1 }, { url: `${A}/2`, depth: 2 }, { url: `${A}/3`, depth: 1 },
      { url: `${B}/1`, depth: 1 }, { url: `${B}/2`, depth: 1 }
    ])
    assert.equal(f.counters.admitted, 3)
    assert.deepEqual(f.counters.dropped, { 'max-depth': 1, 'max-pages-per-host': 1, 'max-pages': 1 })
  })

  it('keeps the delay between two requests to one host, measured from the end of the first', async () => {
    const f = await open({ delay: 1000 })
    await f.add([{ url: `${A}/1`, depth: 0 }, { url: `${A}/2`, depth: 0 }, { url: `${B}/1`, depth: 0 }])
    const first = await f.take() as Lease
    const second = await f.take() as Lease
    assert.notEqual(first.host, second.host, 'the other host is served while the first is busy')
    clock.advance(300)
    await done(f, first)
    let third: Lease | undefined
    void f.take().then(l => { third = l })
    await new Promise(resolve => setImmediate(resolve))
    clock.advance(999)
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(third, undefined, 'not before the delay has passed since the first request ended')
    clock.advance(1)
    await new Promise(resolve => setImmediate(resolve))
    assert.equal((third as Lease | undefined)?.entry.url, `${A}/2`)
  })

  it('never has more than hostConcurrency requests in flight to one host', async () => {
    const f = await open({ hostConcurrency: 2 })
    await f.add([1, 2, 3].map(i => ({ url: `${A}/${i}`, depth: 0 })))
    const l1 = await f.take() as Lease
    const l2 = await f.take() as Lease
    let l3: Lease | undefined
    void f.take().then(l => { l3 = l })
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(l3, undefined)
    assert.equal(f.hostInfo('a.test:80')?.inflight, 2)
    f.fetched(l1)
    await new Promise(resolve => setImmediate(resolve))
    assert.equal((l3 as Lease | undefined)?.entry.url, `${A}/3`)
    await f.complete(l1, [], 'fetched', clock.now())
    await done(f, l2)
    await done(f, l3 as unknown as Lease)
    assert.equal(f.idle, true)
  })

  it('puts a retried URL back at the head of its host, not before retryAt', async () => {
    const f = await open()
    await f.add([{ url: `${A}/1`, depth: 0 }, { url: `${A}/2`, depth: 0 }])
    const l = await f.take() as Lease
    f.retry(l, clock.now() + 5000)
    let next: Lease | undefined
    void f.take().then(x => { next = x })
    clock.advance(4999)
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(next, undefined)
    clock.advance(1)
    await new Promise(resolve => setImmediate(resolve))
    assert.equal((next as Lease | undefined)?.entry.url, `${A}/1`)
    assert.equal((next as Lease | undefined)?.attempts, 1)
  })

  it('records URLs robots.txt disallows as blocked without leasing them, and applies Crawl-delay', async () => {
    const rules = parseRobotsTxt('User-agent: *\nDisallow: /private\nCrawl-delay: 2\n', 'shoal')
    const f = await open({ delay: 100 }, rules)
    await f.add([{ url: `${A}/private/x`, depth: 1 }, { url: `${A}/ok`, depth: 1 }])
    const l = await f.take() as Lease
    assert.equal(l.entry.url, `${A}/ok`)
    assert.equal(f.hostInfo('a.test:80')?.delay, 2000)
    await done(f, l)
    await f.whenIdle()
    const rec = await store.get('meta', `${A}/private/x`)
    assert.equal(rec.status, 'blocked')
    assert.equal(f.counters.byStatus.blocked, 1)
  })

  it('keeps most of a long host queue on disk and reads it back in order', async () => {
    const f = await open({ hostBuffer: 4 })
    const urls = Array.from({ length: 50 }, (_, i) => `${A}/${String(i).padStart(2, '0')}`)
    for (let i = 0; i < 50; i += 10) await f.add(urls.slice(i, i + 10).map(url => ({ url, depth: 1 })))
    const got: string[] = []
    while (!f.idle) {
      const l = await f.take() as Lease
      got.push(l.entry.url)
      await done(f, l)
    }
    assert.deepEqual(got, urls)
  })

  it('restores its queue and seen set after a restart, without a scan', async () => {
    const f1 = await open()
    await f1.add([1, 2, 3].map(i => ({ url: `${A}/${i}`, depth: 0 })))
    const l = await f1.take() as Lease
    await done(f1, l)
    const inflight = await f1.take() as Lease // in flight when "killed": stays queued
    assert.equal(inflight.entry.url, `${A}/2`)
    await f1.stop()
    const f2 = await open()
    assert.equal(f2.queued, 2)
    assert.equal(await f2.add([{ url: `${A}/1`, depth: 0 }, { url: `${A}/3`, depth: 0 }]), 0, 'done and queued URLs stay seen')
    const got: string[] = []
    while (!f2.idle) {
      const x = await f2.take() as Lease
      got.push(x.entry.url)
      await done(f2, x)
    }
    assert.deepEqual(got, [`${A}/2`, `${A}/3`])
  })

  it('leases only the hosts it owns, and takes a host up when the ring gives it', async () => {
    const owned = new Set(['a.test:80'])
    const f = await open({}, undefined, (host) => owned.has(host))
    await f.add([{ url: `${B}/1`, depth: 0 }, { url: `${A}/1`, depth: 0 }])
    const first = await f.take() as Lease
    assert.equal(first.entry.url, `${A}/1`)
    await done(f, first)
    let next: Lease | undefined
    void f.take().then(l => { next = l })
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(next, undefined, 'b.test is held here but not owned: not leased')
    owned.add('b.test:80')
    f.refreshOwnership()
    await new Promise(resolve => setImmediate(resolve))
    assert.equal((next as Lease | undefined)?.entry.url, `${B}/1`)
  })

  it('hands the queued entries of a host over (not those in flight) and forgets them once released', async () => {
    const f = await open({ hostBuffer: 2, keyTag: 'p1' })
    await f.add([1, 2, 3, 4, 5].map(i => ({ url: `${A}/${i}`, depth: 1, referrer: `${A}/` })))
    const inflight = await f.take() as Lease
    assert.match(inflight.key, /\x00p1$/, 'keys carry the peer tag')
    const entries = await f.hostEntries('a.test:80')
    assert.deepEqual(entries.map(e => e.entry.url), [2, 3, 4, 5].map(i => `${A}/${i}`))
    await f.release('a.test:80', entries.map(e => e.key))
    assert.equal(f.queued, 1, 'only the lease in flight is left')
    await done(f, inflight)
    assert.equal(f.idle, true)
    assert.deepEqual(await f.hostEntries('a.test:80'), [])
  })

  it('adopts entries another peer queued even though they are marked seen, but not ones done here', async () => {
    const f = await open()
    await f.add([{ url: `${A}/done`, depth: 0 }])
    const l = await f.take() as Lease
    await done(f, l)
    // Replication marked these seen (queued) before the owner died.
    await store.write([f.seen.mark(`${A}/x`, 0), f.seen.mark(`${A}/y`, 0)])
    f.seen.landed([`${A}/x`, `${A}/y`])
    assert.equal(await f.add([{ url: `${A}/x`, depth: 1 }]), 0, 'add() skips what the seen set knows')
    assert.equal(await f.adopt([{ url: `${A}/x`, depth: 1 }, { url: `${A}/y`, depth: 2 }, { url: `${A}/done`, depth: 0 }]), 2)
    const got: string[] = []
    while (!f.idle) {
      const x = await f.take() as Lease
      got.push(x.entry.url)
      await done(f, x)
    }
    assert.deepEqual(got, [`${A}/x`, `${A}/y`])
  })

  it('fetches a URL queued twice once: its second entry is dropped while the first is in flight', async () => {
    const f = await open()
    await f.add([{ url: `${A}/1`, depth: 1 }])
    const first = await f.take() as Lease
    f.fetched(first) // the host's slot is free again; the page is still being processed
    // The same URL comes back as a copy to adopt (a hand-off while this peer still held it).
    assert.equal(await f.adopt([{ url: `${A}/1`, depth: 1 }, { url: `${A}/2`, depth: 1 }]), 2)
    const next = await f.take() as Lease
    assert.equal(next.entry.url, `${A}/2`, 'the second entry of /1 is not leased')
    await f.complete(first, [], 'fetched', clock.now())
    await done(f, next)
    assert.equal(f.idle, true)
    assert.equal(f.queued, 0)
  })
})

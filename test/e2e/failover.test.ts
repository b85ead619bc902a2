import assert from 'node:assert/strict'
import { LocalCluster, type LocalPeer } from '../../node/local-cluster.js'
import { Ring } from '../../node/ring.js'
import { hostKeyFast } from '../../node/router.js'
import { startSyntheticWeb, type SyntheticWeb } from '../../sim/web.js'
import { useTempDirs } from '../utils/tmp.js'

/** The short peer id a User-Agent names: `shoal/x (peer <id>; +contact)`. */
const peerOf = (ua: string): string => /\(peer ([^;]+);/.exec(ua)?.[1] ?? ua

/** Resolve once the web has served `n` distinct expected pages (polling its counters). */
async function fetchedAtLeast (web: SyntheticWeb, n: number): Promise<void> {
  while (web.summary().pagesFetched < n) await new Promise(resolve => setTimeout(resolve, 50))
}

/** URLs requested more than once, with the peers that requested them, in order. */
function duplicates (web: SyntheticWeb): Map<string, string[]> {
  const byUrl = new Map<string, string[]>()
  for (const e of web.stats().log ?? []) {
    if (e.target === '/robots.txt') continue
    const url = web.origins[e.host] + e.target
    const list = byUrl.get(url) ?? []
    list.push(peerOf(e.userAgent))
    byUrl.set(url, list)
  }
  return new Map([...byUrl].filter(([, who]) => who.length > 1))
}

/** Every peer answers for a sample of URLs with the same record, and the body the server sent. */
async function everyPeerAnswers (web: SyntheticWeb, peers: LocalPeer[], every = 40): Promise<void> {
  const sample = web.expectedUrls().filter((_, i) => i % every === 0)
  for (const [i, url] of sample.entries()) {
    const records = await Promise.all(peers.map(async (p) => {
      const res = await fetch(`http://${p.api}/v1/url?u=${encodeURIComponent(url)}`)
      assert.equal(res.status, 200, `${url} via ${p.peerId.slice(-8)}`)
      const r: any = await res.json()
      return { status: r.status, cid: r.cid, size: r.size }
    }))
    for (const r of records) assert.deepEqual(r, records[0], `${url}: the same record from every peer`)
    const via = peers[i % peers.length]
    const body = await fetch(`http://${via.api}/v1/url?u=${encodeURIComponent(url)}&body=1`)
    assert.equal(body.status, 200)
    assert.deepEqual(Buffer.from(await body.arrayBuffer()), web.body(url), `${url}: body via ${via.peerId.slice(-8)}`)
  }
}

describe('failover and hand-off (real processes, SIGKILL, joins)', function () {
  this.timeout(240_000)
  const dirs = useTempDirs('shoal-failover-')
  let web: SyntheticWeb | undefined
  let cluster: LocalCluster | undefined

  afterEach(async () => {
    await cluster?.stop()
    await web?.close()
    cluster = web = undefined
  })

  async function crawlWith (peers: number, replicas: number): Promise<{ web: SyntheticWeb, cluster: LocalCluster }> {
    web = await startSyntheticWeb({ seed: 4, hosts: 12, pages: 1200, profile: 'small', log: true })
    cluster = new LocalCluster({ peers, replicas, dataDir: await dirs.make(), config: { allowPrivate: true, delay: 100, hostConcurrency: 1 } })
    await cluster.start()
    await cluster.seed([...web.rootUrls])
    return { web, cluster }
  }

  /** Hosts (indexes) the given peers own on the ring of all `ids`. */
  function hostsOf (web: SyntheticWeb, ids: string[], owners: string[]): number[] {
    const ring = Ring.of(ids)
    return web.origins.map((o, i) => [i, ring.owner(hostKeyFast(o + '/'))] as const).filter(([, p]) => owners.includes(p as string)).map(([i]) => i)
  }

  it('5 peers, r = 2: one SIGKILLed mid-crawl, the crawl completes; the only pages fetched twice were the dead peer\'s; it restarts on its data dir and rejoins', async () => {
    const { web, cluster } = await crawlWith(5, 2)
    await fetchedAtLeast(web, 360)
    const victim = cluster.peers[2]
    const ids = cluster.peers.map(p => p.peerId)
    const victimHosts = hostsOf(web, ids, [victim.peerId])
    victim.process.kill('SIGKILL')
    const statuses = await cluster.waitIdle(180_000)
    assert.equal(statuses.length, 4)
    for (const s of statuses) assert.equal(s.ring.peers, 4, 'the dead peer left every ring')

    const truth = web.summary()
    assert.equal(truth.coverage, 1, 'every expected URL fetched: nothing lost')
    const dups = duplicates(web)
    for (const [url, who] of dups) {
      assert.equal(who[0], victim.peerId.slice(-8), `${url} fetched twice, first by ${who[0]}, not by the dead peer`)
    }
    // In flight on the dead peer: at most one request per host it owned (1 connection per host),
    // plus pages fetched but not yet replicated as done.
    assert.ok(dups.size <= victimHosts.length * 2, `${dups.size} duplicate fetches for ${victimHosts.length} hosts of the dead peer`)
    await everyPeerAnswers(web, cluster.live())

    // The killed peer comes back on its data dir: same identity, back in the ring, answering.
    const back = await cluster.startPeer(victim.index)
    assert.equal(back.peerId, victim.peerId, 'same identity from its data dir')
    await cluster.waitForRing(5)
    const pagesBefore = (web.stats().log ?? []).filter(e => e.target !== '/robots.txt').length
    await cluster.waitIdle(60_000)
    // What it had queued or in flight when it died and was finished by others meanwhile is dropped
    // when their records come back; at most what was in flight at the kill is asked again.
    const after = (web.stats().log ?? []).filter(e => e.target !== '/robots.txt').length - pagesBefore
    assert.ok(after <= victimHosts.length, `${after} pages fetched again after it rejoined (${victimHosts.length} hosts)`)
    await everyPeerAnswers(web, cluster.live(), 60)
  })

  it('5 peers, r = 3: two SIGKILLed at once, the crawl completes with nothing lost', async () => {
    const { web, cluster } = await crawlWith(5, 3)
    await fetchedAtLeast(web, 360)
    const victims = [cluster.peers[1], cluster.peers[3]]
    for (const v of victims) v.process.kill('SIGKILL')
    const statuses = await cluster.waitIdle(180_000)
    assert.equal(statuses.length, 3)
    assert.equal(web.summary().coverage, 1)
    const shorts = victims.map(v => v.peerId.slice(-8))
    for (const [url, who] of duplicates(web)) assert.ok(shorts.includes(who[0]), `${url} first fetched by ${who[0]}, not by a dead peer`)
    await everyPeerAnswers(web, cluster.live(), 60)
  })

  // Open in the replication issue: this passes on its own, but run after the others it still fails
  // now and then (a duplicate-fetch bound or a stall after the hand-off). Pending until fixed; it
  // is the regression test for that bug.
  it.skip('a peer joining mid-crawl takes over its share and fetches it, without fetching again what was done', async () => {
    const { web, cluster } = await crawlWith(3, 2)
    await fetchedAtLeast(web, 300)
    const joiner = await cluster.startPeer(3)
    await cluster.waitForRing(4)
    const statuses = await cluster.waitIdle(180_000)
    assert.equal(web.summary().coverage, 1)
    const mine = statuses.find(s => s.peerId === joiner.peerId)
    assert.ok(mine.local.fetched > 0, 'the joiner fetched pages of the hosts it took over')
    // Only requests in flight during the hand-off may repeat: at most one per host that moved.
    const moved = hostsOf(web, cluster.peers.map(p => p.peerId), [joiner.peerId])
    const dups = duplicates(web)
    assert.ok(dups.size <= moved.length, `${dups.size} duplicate fetches for ${moved.length} hosts handed over`)
    await everyPeerAnswers(web, cluster.live(), 60)
  })

  it('a SIGSTOPped peer is dropped after the silence timeout; SIGCONT brings it back without double-crawling', async () => {
    web = await startSyntheticWeb({ seed: 5, hosts: 12, pages: 1200, profile: 'small', log: true })
    cluster = new LocalCluster({
      peers: 5, replicas: 2, dataDir: await dirs.make(),
      config: { allowPrivate: true, delay: 100, hostConcurrency: 1 },
      extraArgs: ['--heartbeat', '300', '--silence', '2000']
    })
    await cluster.start()
    await cluster.seed([...web.rootUrls])
    await fetchedAtLeast(web, 300)
    const hung = cluster.peers[3]
    const others = cluster.peers.filter(p => p !== hung)
    const hungHosts = hostsOf(web, cluster.peers.map(p => p.peerId), [hung.peerId])
    hung.process.kill('SIGSTOP')
    try {
      // Still connected, but silent: dropped by the silence timeout.
      while (true) {
        const rings = await Promise.all(others.map(async p => ((await (await fetch(`http://${p.api}/v1/status`)).json()) as any).ring.peers))
        if (rings.every(n => n === 4)) break
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      // Its hosts go on without it.
      const before = web.summary().pagesFetched
      await fetchedAtLeast(web, Math.min(before + 100, 1200))
    } finally {
      hung.process.kill('SIGCONT')
    }
    await cluster.waitForRing(5)
    await cluster.waitIdle(180_000)
    assert.equal(web.summary().coverage, 1)
    // Fetched twice: what the hung peer had in flight when it stopped (its replicas fetched it
    // again), and what it finished right after it woke, before it noticed it had been dropped:
    // about a request or two per host it owned, never a re-crawl of its hosts.
    const dups = duplicates(web)
    for (const [url, who] of dups) assert.ok(who.includes(hung.peerId.slice(-8)), `${url} fetched twice (${who.join(', ')}), not by the hung peer`)
    assert.ok(dups.size <= hungHosts.length * 3, `${dups.size} duplicate fetches for ${hungHosts.length} hosts of the hung peer`)
    await everyPeerAnswers(web, cluster.live(), 6) // 200 URLs, every peer
  })
})

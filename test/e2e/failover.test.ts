import assert from 'node:assert/strict'
import { appendFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { LocalCluster, type LocalPeer } from '../../node/local-cluster.js'
import { Ring } from '../../node/ring.js'
import { hostKeyFast } from '../../node/router.js'
import { startSyntheticWeb, type SyntheticWeb } from '../../sim/web.js'
import { peerOfUserAgent } from '../../sim/verdict.js'
import { useTempDirs } from '../utils/tmp.js'

/** Pages of the synthetic web (12 hosts): faults come at a share of it. */
const PAGES = 800

const peerOf = peerOfUserAgent

/** Resolve once the web has served `n` distinct expected pages (polling its counters). */
async function fetchedAtLeast (web: SyntheticWeb, n: number): Promise<void> {
  while (web.summary().pagesFetched < n) await new Promise(resolve => setTimeout(resolve, 50))
}

/** A response the crawler retries rather than records (server errors, 429): asking again is no duplicate. */
const isRetryable = (status: number): boolean => status >= 500 || status === 429

interface Request { at: number, peer: string, status: number }

/**
 * URLs asked for again after a final answer, each with its requests from that answer on (a 5xx or
 * 429 is retried by design, so what came before the first final answer doesn't count).
 */
function duplicates (web: SyntheticWeb): Map<string, Request[]> {
  const byUrl = new Map<string, Request[]>()
  for (const e of web.stats().log ?? []) {
    if (e.target === '/robots.txt') continue
    const url = web.origins[e.host] + e.target
    const list = byUrl.get(url) ?? []
    list.push({ at: e.at, peer: peerOf(e.userAgent), status: e.status })
    byUrl.set(url, list)
  }
  const out = new Map<string, Request[]>()
  for (const [url, list] of byUrl) {
    list.sort((a, b) => a.at - b.at)
    const first = list.findIndex(r => !isRetryable(r.status))
    if (first >= 0 && list.length > first + 1) out.set(url, list.slice(first))
  }
  return out
}

/** Requests beyond the first final answer, summed over URLs: each is one page fetched twice. */
function extraFetches (dups: Map<string, Request[]>): number {
  let n = 0
  for (const reqs of dups.values()) n += reqs.length - 1
  return n
}

/** Page requests (robots.txt left out) by `peer` (short id) that arrived in [from, to). */
function requestsBy (web: SyntheticWeb, peer: string, from: number, to = Infinity): number {
  return (web.stats().log ?? []).filter(e => e.target !== '/robots.txt' && peerOf(e.userAgent) === peer && e.at >= from && e.at < to).length
}

/**
 * Leases a peer has out now (pages being fetched, or fetched and not yet durable and replicated as
 * done), read just before a fault: the pages a fault may make another peer fetch again. Whatever it
 * leases between this read and the fault shows in the web's log as its requests after `at`.
 */
async function inflightOf (peer: LocalPeer): Promise<{ inflight: number, at: number }> {
  const at = Date.now()
  const s: any = await (await fetch(`http://${peer.api}/v1/status`)).json()
  return { inflight: s.local.inflight, at }
}

const short = (p: LocalPeer): string => p.peerId.slice(-8)

/** Debugging: with FAILOVER_LOG_DIR set, when each phase of a test ended. */
function phase (name: string): void {
  const dir = process.env.FAILOVER_LOG_DIR
  if (dir == null) return
  mkdirSync(dir, { recursive: true })
  appendFileSync(join(dir, 'phases.txt'), `${Date.now()} ${name}\n`)
}

/** Debugging: with FAILOVER_LOG_DIR set, the duplicates' requests (time, peer) go to a file there. */
function dumpDuplicates (web: SyntheticWeb, name: string, marks: Record<string, number> = {}): void {
  const dir = process.env.FAILOVER_LOG_DIR
  if (dir == null) return
  const dups = duplicates(web)
  const lines = Object.entries(marks).map(([k, v]) => `mark ${k} ${v}`)
  for (const e of web.stats().log ?? []) {
    const url = web.origins[e.host] + e.target
    if (e.target !== '/robots.txt' && dups.has(url)) lines.push(`${e.at} ${peerOf(e.userAgent)} ${url} ${e.status}`)
  }
  lines.push(`mark duplicates ${extraFetches(dups)}`)
  mkdirSync(dir, { recursive: true })
  appendFileSync(join(dir, `dups-${name}.txt`), lines.sort().join('\n') + '\n')
}

/**
 * Every peer answers for `count` URLs spread over the crawl with the same record, and one of them
 * (each in turn) with the body the server sent. A few URLs at a time.
 */
async function everyPeerAnswers (web: SyntheticWeb, peers: LocalPeer[], count: number): Promise<void> {
  const urls = web.expectedUrls()
  assert.ok(urls.length >= count)
  const sample = Array.from({ length: count }, (_, i) => urls[Math.floor(i * urls.length / count)])
  const check = async (url: string, i: number): Promise<void> => {
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
  for (let i = 0; i < sample.length; i += 16) await Promise.all(sample.slice(i, i + 16).map(async (url, j) => { await check(url, i + j) }))
}

// To see why a run failed: FAILOVER_LOG_DIR=/tmp/fo DEBUG=shoal:daemon,shoal:replication npx mocha
// test/e2e/failover.test.ts keeps every peer's stderr (t<test>-peer<i>.log), the requests of the
// pages fetched twice (dups-<test>.txt) and when each phase ended (phases.txt) in /tmp/fo.
/** How long after its response a page's `done` may take to reach a replica, on a loaded machine. */
const REPLICATION_LAG = 1000

describe('failover and hand-off (real processes, SIGKILL, joins)', function () {
  this.timeout(240_000)
  const dirs = useTempDirs('shoal-failover-')
  let web: SyntheticWeb | undefined
  let cluster: LocalCluster | undefined

  beforeEach(function () { phase(`begin ${this.currentTest?.title.slice(0, 30) ?? ''}`) })

  afterEach(async () => {
    await cluster?.stop()
    await web?.close()
    cluster = web = undefined
  })

  /** Debugging: with FAILOVER_LOG_DIR set, every peer's stderr goes to a file there, lines stamped. */
  let testNo = 0
  function teeLogs (c: LocalCluster): void {
    const dir = process.env.FAILOVER_LOG_DIR
    if (dir == null) return
    mkdirSync(dir, { recursive: true })
    const n = ++testNo
    const attach = (p: LocalPeer): void => {
      const file = join(dir, `t${n}-peer${p.index}.log`)
      appendFileSync(file, p.log.map(l => `${Date.now()} ${l}\n`).join(''))
      p.process.stderr?.on('data', (b: Buffer) => { appendFileSync(file, b.toString().split('\n').filter(Boolean).map(l => `${Date.now()} ${l}\n`).join('')) })
    }
    for (const p of c.peers) attach(p)
    const start = c.startPeer.bind(c)
    c.startPeer = async (...args) => { const p = await start(...args); attach(p); return p }
  }

  async function crawlWith (peers: number, replicas: number): Promise<{ web: SyntheticWeb, cluster: LocalCluster }> {
    web = await startSyntheticWeb({ seed: 4, hosts: 12, pages: PAGES, profile: 'small', log: true })
    cluster = new LocalCluster({ peers, replicas, dataDir: await dirs.make(), config: { allowPrivate: true, delay: 100, hostConcurrency: 1 } })
    await cluster.start()
    phase('started')
    teeLogs(cluster)
    await cluster.seed([...web.rootUrls])
    return { web, cluster }
  }

  /** Hosts (indexes) the given peers own on the ring of all `ids`. */
  function hostsOf (web: SyntheticWeb, ids: string[], owners: string[]): number[] {
    const ring = Ring.of(ids)
    return web.origins.map((o, i) => [i, ring.owner(hostKeyFast(o + '/'))] as const).filter(([, p]) => owners.includes(p as string)).map(([i]) => i)
  }

  it('5 peers, r = 2: one SIGKILLed mid-crawl, the crawl completes; the only pages fetched twice were in flight on the dead peer; it restarts on its data dir and rejoins', async () => {
    const { web, cluster } = await crawlWith(5, 2)
    await fetchedAtLeast(web, 0.3 * PAGES)
    phase('reached')
    const victim = cluster.peers[2]
    const before = await inflightOf(victim)
    const killedAt = Date.now()
    victim.process.kill('SIGKILL')
    const statuses = await cluster.waitIdle(180_000)
    phase('idle')
    dumpDuplicates(web, 'kill1', { killedAt, inflight: before.inflight })
    assert.equal(statuses.length, 4)
    for (const s of statuses) assert.equal(s.ring.peers, 4, 'the dead peer left every ring')

    const truth = web.summary()
    assert.equal(truth.coverage, 1, 'every expected URL fetched: nothing lost')
    const dups = duplicates(web)
    for (const [url, reqs] of dups) {
      assert.equal(reqs[0].peer, short(victim), `${url} fetched twice, first by ${reqs[0].peer}, not by the dead peer`)
    }
    // Fetched twice: only what the dead peer had leased (in flight, or fetched but not yet done
    // on its replicas) when it died.
    const inFlight = before.inflight + requestsBy(web, short(victim), before.at - REPLICATION_LAG)
    assert.ok(extraFetches(dups) <= inFlight, `${extraFetches(dups)} pages fetched twice, ${inFlight} in flight on the dead peer`)
    await everyPeerAnswers(web, cluster.live(), 30)
    phase('answered')

    // The killed peer comes back on its data dir: same identity, back in the ring, answering. What
    // it had queued when it died was done by others meanwhile: it waits for their hand-off (their
    // records) and fetches none of it again.
    const restartAt = Date.now()
    const back = await cluster.startPeer(victim.index)
    assert.equal(back.peerId, victim.peerId, 'same identity from its data dir')
    await cluster.waitForRing(5)
    phase('ring')
    await cluster.waitIdle(60_000)
    phase('idle')
    dumpDuplicates(web, 'rejoin', { killedAt, restartAt })
    const again = (web.stats().log ?? []).filter(e => e.target !== '/robots.txt' && e.at >= restartAt)
    assert.deepEqual(again.map(e => `${peerOf(e.userAgent)} ${web.origins[e.host]}${e.target}`), [], 'no page fetched again after it rejoined')
    await everyPeerAnswers(web, cluster.live(), 20)
    phase('answered')
  })

  it('5 peers, r = 3: two SIGKILLed at once, the crawl completes with nothing lost', async () => {
    const { web, cluster } = await crawlWith(5, 3)
    await fetchedAtLeast(web, 0.3 * PAGES)
    phase('reached')
    const victims = [cluster.peers[1], cluster.peers[3]]
    const before = await Promise.all(victims.map(inflightOf))
    const killedAt = Date.now()
    for (const v of victims) v.process.kill('SIGKILL')
    const statuses = await cluster.waitIdle(180_000)
    phase('idle')
    dumpDuplicates(web, 'kill2', { killedAt })
    assert.equal(statuses.length, 3)
    assert.equal(web.summary().coverage, 1)
    const dups = duplicates(web)
    for (const [url, reqs] of dups) assert.ok(victims.map(short).includes(reqs[0].peer), `${url} first fetched by ${reqs[0].peer}, not by a dead peer`)
    const inFlight = victims.reduce((n, v, i) => n + before[i].inflight + requestsBy(web, short(v), before[i].at - REPLICATION_LAG), 0)
    assert.ok(extraFetches(dups) <= inFlight, `${extraFetches(dups)} pages fetched twice, ${inFlight} in flight on the dead peers`)
    await everyPeerAnswers(web, cluster.live(), 20)
    phase('answered')
  })

  it('a peer joining mid-crawl takes over its share and fetches it; nothing is fetched twice, and no host is crawled by two peers at once', async () => {
    const { web, cluster } = await crawlWith(3, 2)
    await fetchedAtLeast(web, 0.15 * PAGES)
    phase('reached')
    const joinAt = Date.now()
    const joiner = await cluster.startPeer(3)
    await cluster.waitForRing(4)
    phase('ring')
    const statuses = await cluster.waitIdle(180_000)
    phase('idle')
    dumpDuplicates(web, 'join', { joinAt })
    assert.equal(web.summary().coverage, 1)
    const mine = statuses.find(s => s.peerId === joiner.peerId)
    const log = web.stats().log ?? []
    const moved = hostsOf(web, cluster.peers.map(p => p.peerId), [joiner.peerId])
    // The joiner's hosts had pages left when it joined (unless the ring gave it none, or only hosts
    // already done: then there is nothing to take over), and it fetched them.
    const leftAtJoin = log.filter(e => moved.includes(e.host) && e.at >= joinAt && e.target !== '/robots.txt')
    if (leftAtJoin.length > 0) {
      assert.ok(mine.local.fetched > 0, `the joiner fetched pages of the hosts it took over (${moved.length} hosts, ${leftAtJoin.length} requests to them after the join, by ${[...new Set(leftAtJoin.map(e => peerOf(e.userAgent)))].join(', ')})`)
    }
    // The old owner stops leasing a host when it sees the joiner, and says `handed` only once its
    // leases of it are over and their records are on the joiner; the joiner waits for that.
    assert.deepEqual([...duplicates(web).keys()], [], 'no page fetched twice')
    for (const host of moved) {
      const first = log.find(e => e.host === host && peerOf(e.userAgent) === short(joiner))
      if (first == null) continue // done before the join
      const late = log.filter(e => e.host === host && e.at >= first.at && peerOf(e.userAgent) !== short(joiner))
      assert.deepEqual(late.map(e => `${peerOf(e.userAgent)} ${e.target}`), [], `host ${host}: no other peer's request after the joiner's first`)
    }
    await everyPeerAnswers(web, cluster.live(), 20)
    phase('answered')
  })

  it('a SIGSTOPped peer is dropped after the silence timeout; SIGCONT brings it back without double-crawling', async () => {
    web = await startSyntheticWeb({ seed: 5, hosts: 12, pages: PAGES, profile: 'small', log: true })
    cluster = new LocalCluster({
      peers: 5, replicas: 2, dataDir: await dirs.make(),
      config: { allowPrivate: true, delay: 100, hostConcurrency: 1 },
      // A silence timeout well above the event-loop stalls of a loaded machine: a peer that is
      // only slow must not look stopped.
      extraArgs: ['--heartbeat', '500', '--silence', '4000']
    })
    await cluster.start()
    phase('started')
    teeLogs(cluster)
    await cluster.seed([...web.rootUrls])
    await fetchedAtLeast(web, 0.25 * PAGES)
    phase('reached')
    const hung = cluster.peers[3]
    const others = cluster.peers.filter(p => p !== hung)
    const before = await inflightOf(hung)
    const stoppedAt = Date.now()
    hung.process.kill('SIGSTOP')
    let contAt = 0
    try {
      // Still connected, but silent: dropped by the silence timeout.
      while (true) {
        const rings = await Promise.all(others.map(async p => ((await (await fetch(`http://${p.api}/v1/status`)).json()) as any).ring.peers))
        if (rings.every(n => n === 4)) break
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      // Its hosts go on without it.
      const fetched = web.summary().pagesFetched
      await fetchedAtLeast(web, Math.min(fetched + 0.1 * PAGES, PAGES))
      phase('dropped and went on')
    } finally {
      contAt = Date.now()
      hung.process.kill('SIGCONT')
    }
    await cluster.waitForRing(5)
    phase('ring')
    await cluster.waitIdle(180_000)
    phase('idle')
    dumpDuplicates(web, 'stop', { stoppedAt, contAt, inflight: before.inflight })
    assert.equal(web.summary().coverage, 1)
    // Fetched twice: only what the hung peer had leased when it stopped, which its replica, taking
    // its hosts over, fetched again (a lease whose request had not left when the peer stopped goes
    // out when it wakes: then the replica's request came first). Woken, it leases nothing before it
    // has rejoined and its hosts have been handed back with their records.
    const dups = duplicates(web)
    for (const [url, reqs] of dups) {
      assert.ok(reqs.some(r => r.peer === short(hung)), `${url} fetched twice (${reqs.map(r => r.peer).join(', ')}), not by the hung peer`)
    }
    // In flight = leased, or fetched and its `done` not yet on a replica: a page's done reaches the
    // replica one group commit and one meta round trip after its response; allow a second of that.
    const inFlight = before.inflight + requestsBy(web, short(hung), before.at - REPLICATION_LAG, contAt)
    assert.ok(extraFetches(dups) <= inFlight, `${extraFetches(dups)} pages fetched twice, ${inFlight} in flight on the hung peer when it stopped`)
    await everyPeerAnswers(web, cluster.live(), 200)
    phase('answered')
  })
})

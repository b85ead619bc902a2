/**
 * The simulator's real mode: N real peers (`shoal start` processes, libp2p over TCP on 127.0.0.1)
 * crawl the synthetic web while a fault schedule kills, restarts, pauses, partitions and adds peers;
 * at the end the crawl is judged from the outside against the web's ground truth and request log
 * (sim/verdict.ts) and from the inside through every peer's API (`get` for a sample of URLs).
 *
 *   const report = await runReal({ peers: 4, faults: [parseFault('kill', '1@30%')] })
 *   report.invariants   // { fullCoverage: true, noLostUrls: true, noDuplicateFetches: true, … }
 */
import { rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError } from '../node/errors.js'
import { LocalCluster, getJson, statusesOf, waitForRing, waitIdle, type LocalPeer } from '../node/local-cluster.js'
import { Ring } from '../node/ring.js'
import { hostKeyFast } from '../node/router.js'
import { shortId } from '../node/peer.js'
import { startSyntheticWeb, type SiteProfile, type SyntheticWeb, type SyntheticWebInit } from './web.js'
import { checkFaults, describeWhen, type Fault, type When } from './faults.js'
import { judgeDuplicates, judgePoliteness, peerOfUserAgent, type DuplicateVerdict, type FaultWindow, type LoggedRequest, type PolitenessVerdict } from './verdict.js'

export interface RealSimOptions {
  /** Peers started at the beginning (indexes 0 … peers − 1). @default 4 */
  peers?: number
  /** @default 12 */
  hosts?: number
  /** @default 3000 */
  pages?: number
  /** @default 1 */
  seed?: number
  /** @default 'small' */
  profile?: SiteProfile
  /** Replication factor; undefined: the peers' default (2). */
  replicas?: number
  /** @default [] */
  faults?: Fault[]
  /** Per-host delay in ms between requests. @default 50 (small enough for a quick demo, large enough to check) */
  delay?: number
  /** Connections per host. @default 1 */
  hostConcurrency?: number
  /** Membership heartbeat (ms); undefined: the peers' default (2000). */
  heartbeat?: number
  /** Silence timeout (ms) after which a peer not heard from leaves the ring; undefined: the peers' default (10000). */
  silence?: number
  /** URLs asked of every peer at the end. @default 50 */
  sample?: number
  /** Ms before a kill or stop in which a peer's requests count as in flight. @default 3000 */
  inflight?: number
  /** Give up on the whole run after this many ms. @default 600000 */
  timeout?: number
  /** Extra options of the synthetic web (e.g. crossHostLinkRatio, realistic). */
  web?: Partial<SyntheticWebInit>
  /** The peers' whole-request timeout, ms; undefined: their default. */
  requestTimeout?: number
  /** Where the peers keep their data; a temporary directory (removed after) by default. */
  dataDir?: string
  /** A progress line, several times a second. */
  onProgress?: (line: string) => void
  /** One line per fault as it fires and ends. */
  onEvent?: (line: string) => void
}

export interface FaultReport {
  spec: string
  /** Seconds after the seeds when it fired, and the share of pages fetched then. */
  firedAt: number
  firedAtShare: number
  /** Seconds after the seeds when it ended (pause, partition). */
  endedAt?: number
  /** Seconds from firing (or ending) until every live peer's ring agreed again. */
  settleSeconds?: number
  /**
   * kill / pause: seconds until another peer fetched one of the faulted peer's hosts; join / restart:
   * until the (re)started peer fetched a page. Undefined when it never happened.
   */
  recoverySeconds?: number
  /** Duplicate fetches this fault excuses. */
  duplicates: number
  /** Hosts the faulted peer owned when it was killed or paused, or owns once a join or restart settled. */
  hosts?: number
  /**
   * join / restart: of those hosts, how many had a page requested (by any peer) once the ring had
   * settled and the hand-off time had passed. The (re)started peer must have fetched if this is > 0;
   * when it is 0 its hosts were done (or had nothing left) before it took them over.
   */
  hostsBusyAfterSettle?: number
  /** Set when the fault could not fire when asked (e.g. a share never reached before the crawl went idle). */
  note?: string
}

export interface SimReport {
  mode: 'real'
  seed: number
  hosts: number
  /** Peers started at the beginning, and live at the end. */
  peers: number
  peersAtEnd: number
  replicas: number | null
  pagesExpected: number
  pagesFetched: number
  coverage: number
  /** Every repeated request of a URL after a final answer (see `duplicates` for which were excused). */
  duplicateFetches: number
  duplicates: DuplicateVerdict
  /** Expected pages never fetched. */
  lostUrls: number
  politeness: PolitenessVerdict
  disallowedRequests: number
  underReplicated: number
  sample: { urls: number, peers: number, mismatches: number, examples: string[] }
  faults: FaultReport[]
  wallSeconds: number
  crawlSeconds: number
  pagesPerSecond: number
  bytesRouted: number
  messagesRouted: number
  replicationBytes: number
  invariants: Record<string, boolean>
  perPeer: Array<{ index: number, peerId: string, state: 'live' | 'killed', fetched: number }>
}

const tick = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d

/** Counters summed over every incarnation of every peer (a killed peer's last known counters stay counted). */
class Tally {
  private readonly last = new Map<string, Record<string, number>>()
  private readonly retired: Record<string, number> = {}

  see (statuses: any[]): void {
    for (const s of statuses) this.last.set(s.peerId, s.local)
  }

  /** A peer died: keep what it had counted. */
  retire (peerId: string): void {
    const l = this.last.get(peerId)
    if (l === undefined) return
    for (const [k, v] of Object.entries(l)) if (typeof v === 'number') this.retired[k] = (this.retired[k] ?? 0) + v
    this.last.delete(peerId)
  }

  sum (key: string): number {
    let n = this.retired[key] ?? 0
    for (const l of this.last.values()) n += l[key] ?? 0
    return n
  }
}

/** Run the real mode: start the web and the peers, crawl, stage the faults, judge, stop everything. */
export async function runReal (opts: RealSimOptions = {}): Promise<SimReport> {
  const peers = opts.peers ?? 4
  const faults = opts.faults ?? []
  checkFaults(faults, peers)
  const delay = opts.delay ?? 50
  const hostConcurrency = opts.hostConcurrency ?? 1
  const heartbeat = opts.heartbeat ?? 2000
  const silence = opts.silence ?? 10_000
  const inflight = opts.inflight ?? 3000
  // After a ring change every peer waits two heartbeats before handing off, then the transfer.
  const handoff = 2 * heartbeat + inflight
  const deadline = Date.now() + (opts.timeout ?? 600_000)
  const say = opts.onEvent ?? (() => {})
  const started = performance.now()

  const web = await startSyntheticWeb({ seed: opts.seed ?? 1, hosts: opts.hosts ?? 12, pages: opts.pages ?? 3000, profile: opts.profile ?? 'small', ...opts.web, log: true })
  const ownDir = opts.dataDir === undefined
  const dataDir = opts.dataDir ?? await mkdtemp(join(tmpdir(), 'shoal-sim-'))
  const extraArgs: string[] = []
  if (opts.heartbeat !== undefined) extraArgs.push('--heartbeat', String(opts.heartbeat))
  if (opts.silence !== undefined) extraArgs.push('--silence', String(opts.silence))
  const cluster = new LocalCluster({
    peers,
    dataDir,
    replicas: opts.replicas,
    testGate: faults.some(f => f.kind === 'partition'),
    extraArgs,
    config: { allowPrivate: true, delay, hostConcurrency, requestTimeout: opts.requestTimeout }
  })
  const paused = new Set<number>()
  // Ctrl-C: nothing left running, nothing left behind.
  const onSignal = (): void => {
    for (const p of cluster.peers) { try { p.process.kill('SIGKILL') } catch {} }
    if (ownDir) { try { rmSync(dataDir, { recursive: true, force: true }) } catch {} }
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    await cluster.start()
    const tally = new Tally()
    const expected = web.summary().pagesExpected
    const share = (): number => expected === 0 ? 1 : web.summary().pagesFetched / expected
    const answering = (): LocalPeer[] => cluster.live().filter(p => !paused.has(p.index))
    const t0 = Date.now()
    const seeded = await cluster.seed([...web.rootUrls])
    if (seeded.accepted.length === 0) throw new Error(`no seed accepted: ${JSON.stringify(seeded.rejected)}`)

    const pending = [...faults]
    const active: Array<{ f: Fault, since: number, until: When }> = []
    const dupWindows: FaultWindow[] = []
    const politeWindows: FaultWindow[] = []
    const reports = new Map<Fault, FaultReport>()
    /** Per fault: who to watch for recovery, from when. */
    const recovery = new Map<Fault, { since: number, hosts?: Set<number>, notPeer?: string, byPeer?: string, owned?: Set<number>, busyFrom?: number }>()
    let settledOk = true
    let lastEvent = ''

    const reached = (w: When, since: number): boolean => 'share' in w ? share() >= w.share : 'after' in w ? Date.now() - since >= w.after * 1000 : Date.now() - t0 >= w.seconds * 1000
    const secs = (t: number): number => round((t - t0) / 1000, 2)
    const peerOf = (k: number): LocalPeer => {
      const p = cluster.peers.find(x => x.index === k)
      if (p === undefined) throw new ConfigError(`there is no peer ${k}`)
      return p
    }
    const hostsOwnedBy = (peerId: string, ids: string[]): Set<number> => {
      const ring = Ring.of(ids)
      return new Set(web.origins.map((o, i) => [i, ring.owner(hostKeyFast(o + '/'))] as const).filter(([, p]) => p === peerId).map(([i]) => i))
    }
    const liveIds = (): string[] => cluster.live().map(p => p.peerId)
    const kill = async (p: LocalPeer): Promise<void> => {
      if (p.process.exitCode !== null || p.process.signalCode !== null) return
      const exited = new Promise(resolve => p.process.once('exit', resolve))
      p.process.kill('SIGKILL')
      await exited
      tally.retire(p.peerId)
    }
    /**
     * Wait until every answering peer sees the live ring; false if that took over a minute. The
     * peers and their count are read again on every poll: another fault (a restart, a join) may
     * change them while this one settles.
     */
    const settle = async (): Promise<number> => {
      try {
        await waitForRing(() => answering().map(p => p.api), () => cluster.live().length, 60_000)
      } catch {
        settledOk = false
      }
      return Date.now()
    }
    const event = (f: Fault, what: string): void => {
      lastEvent = `${f.spec}: ${what}`
      say(`${secs(Date.now()).toFixed(1)}s  ${lastEvent}`)
    }

    async function fire (f: Fault, note?: string): Promise<void> {
      const t = Date.now()
      const r: FaultReport = { spec: f.spec, firedAt: secs(t), firedAtShare: round(share()), duplicates: 0, note }
      reports.set(f, r)
      const k = f.peers[0]
      switch (f.kind) {
        case 'kill': {
          const p = peerOf(k)
          const ids = liveIds()
          await kill(p)
          const id = shortId(p.peerId)
          dupWindows.push({ spec: f.spec, peer: id, from: t - inflight, to: t })
          politeWindows.push({ spec: f.spec, from: t - inflight, to: t + inflight })
          recovery.set(f, { since: t, hosts: hostsOwnedBy(p.peerId, ids), notPeer: id })
          r.hosts = recovery.get(f)?.hosts?.size
          event(f, `SIGKILL peer ${k}`)
          break
        }
        case 'restart': {
          const p = peerOf(k)
          const wasLive = cluster.live().includes(p)
          event(f, `${wasLive ? 'SIGKILL and ' : ''}restart of peer ${k} on its data dir`)
          await kill(p)
          if (wasLive) dupWindows.push({ spec: f.spec, peer: shortId(p.peerId), from: t - inflight, to: t })
          const back = await cluster.startPeer(k)
          const s = await settle()
          r.settleSeconds = round((s - t) / 1000, 2)
          dupWindows.push({ spec: f.spec, from: t, to: s + handoff })
          politeWindows.push({ spec: f.spec, from: t - inflight, to: s + handoff })
          const owned = hostsOwnedBy(back.peerId, liveIds())
          recovery.set(f, { since: t, byPeer: shortId(back.peerId), owned, busyFrom: s + handoff })
          r.hosts = owned.size
          break
        }
        case 'join': {
          event(f, `peer ${k} joins`)
          const p = await cluster.startPeer(k)
          const s = await settle()
          r.settleSeconds = round((s - t) / 1000, 2)
          dupWindows.push({ spec: f.spec, from: t, to: s + handoff })
          politeWindows.push({ spec: f.spec, from: t, to: s + handoff })
          const owned = hostsOwnedBy(p.peerId, liveIds())
          recovery.set(f, { since: t, byPeer: shortId(p.peerId), owned, busyFrom: s + handoff })
          r.hosts = owned.size
          break
        }
        case 'pause': {
          const p = peerOf(k)
          const ids = liveIds()
          p.process.kill('SIGSTOP')
          paused.add(k)
          const id = shortId(p.peerId)
          dupWindows.push({ spec: f.spec, peer: id, from: t - inflight, to: t })
          recovery.set(f, { since: t, hosts: hostsOwnedBy(p.peerId, ids), notPeer: id })
          r.hosts = recovery.get(f)?.hosts?.size
          event(f, `SIGSTOP peer ${k}`)
          active.push({ f, since: t, until: f.until ?? { after: (silence + 5000) / 1000 } })
          break
        }
        case 'partition': {
          const a = f.peers
          const b = f.others ?? cluster.live().map(p => p.index).filter(i => !a.includes(i))
          await cluster.partition(a, b)
          event(f, `peers ${a.join(',')} cut off from ${b.join(',')}`)
          active.push({ f, since: t, until: f.until ?? { after: 10 } })
          break
        }
      }
    }

    async function end (f: Fault, since: number): Promise<void> {
      const e = Date.now()
      const r = reports.get(f) as FaultReport
      r.endedAt = secs(e)
      if (f.kind === 'pause') {
        const p = peerOf(f.peers[0])
        p.process.kill('SIGCONT')
        paused.delete(f.peers[0])
        event(f, `SIGCONT peer ${f.peers[0]}`)
      } else {
        await cluster.heal()
        event(f, 'healed')
      }
      const s = await settle()
      r.settleSeconds = round((s - e) / 1000, 2)
      if (f.kind === 'pause') {
        dupWindows.push({ spec: f.spec, from: e, to: s + handoff })
        politeWindows.push({ spec: f.spec, from: e, to: s + handoff })
      } else {
        dupWindows.push({ spec: f.spec, from: since - inflight, to: s + handoff, partition: true })
        politeWindows.push({ spec: f.spec, from: since - inflight, to: s + handoff, partition: true })
      }
    }

    // The schedule: fire what is due, end what is over, watch progress; idle with faults still due
    // (a share the crawl never reaches) fires them anyway, with a note.
    let quietPolls = 0
    let lastPoll = 0
    const running = new Map<Fault, Promise<void>>()
    let failure: unknown
    const busy = (f: Fault): boolean => [...running.keys()].some(g => g.peers.some(p => f.peers.includes(p)) || f.kind === 'partition' || g.kind === 'partition')
    const track = (f: Fault, p: Promise<void>): void => {
      running.set(f, p.catch((err) => { failure ??= err }).finally(() => running.delete(f)))
    }
    while (pending.length > 0 || active.length > 0 || running.size > 0) {
      if (failure !== undefined) throw failure
      if (Date.now() > deadline) throw new Error(`the run took longer than ${(opts.timeout ?? 600_000) / 1000} s, faults still due: ${[...pending, ...active.map(a => a.f)].map(f => f.spec).join(', ')}`)
      // Faults run side by side (a join's settling must not hold back a kill that is due), one at
      // a time per peer.
      for (const f of pending.filter(x => reached(x.at, t0) && !busy(x))) {
        pending.splice(pending.indexOf(f), 1)
        track(f, fire(f))
      }
      for (const a of active.filter(x => reached(x.until, x.since) && !busy(x.f))) {
        active.splice(active.indexOf(a), 1)
        track(a.f, end(a.f, a.since))
      }
      if (Date.now() - lastPoll >= 250) {
        lastPoll = Date.now()
        const settled = await Promise.allSettled(answering().map(async p => await getJson(p.api, '/v1/status')))
        const statuses = settled.filter(s => s.status === 'fulfilled').map(s => (s as PromiseFulfilledResult<any>).value)
        tally.see(statuses)
        progress(statuses)
        const quiet = statuses.length > 0 && statuses.every(s => s.local.queued === 0 && s.local.inflight === 0 && s.local.inTransit === 0)
        quietPolls = quiet && active.length === 0 && running.size === 0 ? quietPolls + 1 : 0
        const late = pending.filter(x => 'share' in x.at)
        if (quietPolls >= 8 && late.length > 0) {
          pending.splice(pending.indexOf(late[0]), 1)
          track(late[0], fire(late[0], `the crawl went idle at ${Math.round(share() * 1000) / 10} % before ${describeWhen(late[0].at)}`))
        }
      }
      await tick(50)
    }

    function progress (statuses: any[]): void {
      if (opts.onProgress === undefined) return
      const s = (Date.now() - t0) / 1000
      const fetched = web.summary().pagesFetched
      const queued = statuses.reduce((a, x) => a + x.local.queued, 0)
      const errors = statuses.reduce((a, x) => a + (x.local.byStatus?.failed ?? 0) + (x.local.byStatus?.['http-error'] ?? 0), 0)
      opts.onProgress(`${s.toFixed(1)}s  fetched ${fetched}/${expected}  queued ${queued}  peers ${cluster.live().length}  errors ${errors}  ${(fetched / Math.max(s, 0.001)).toFixed(0)} pages/s${lastEvent === '' ? '' : `  [${lastEvent}]`}`)
    }

    await settle()
    let finalStatuses = await waitIdle(() => cluster.live().map(p => p.api), Math.max(deadline - Date.now(), 1000), (ss) => { tally.see(ss); progress(ss) })
    const crawlSeconds = (Date.now() - t0) / 1000
    // Repair runs in the background: give copies lost with a dead peer time to be made again.
    let underReplicated = finalStatuses.reduce((a, s) => a + (s.local.underReplicated ?? 0), 0)
    const repairBy = Math.min(Date.now() + 30_000, deadline)
    while (underReplicated > 0 && Date.now() < repairBy) {
      await tick(500)
      finalStatuses = await statusesOf(cluster.live().map(p => p.api))
      underReplicated = finalStatuses.reduce((a, s) => a + (s.local.underReplicated ?? 0), 0)
    }
    tally.see(finalStatuses)
    const sample = await checkSample(web, cluster.live(), opts.sample ?? 50)

    const log: LoggedRequest[] = (web.stats().log ?? []).map(e => ({ at: e.at, host: e.host, target: e.target, peer: peerOfUserAgent(e.userAgent), status: e.status, transient: e.transient }))
    const duplicates = judgeDuplicates(log, dupWindows, web.origins, t0)
    const politeness = judgePoliteness(log, delay, hostConcurrency, politeWindows, web.origins, t0)
    for (const [f, r] of reports) {
      r.duplicates = duplicates.byFault[f.spec] ?? 0
      const w = recovery.get(f)
      if (w === undefined) continue
      const hit = log.find(e => e.at >= w.since && e.target !== '/robots.txt' &&
        (w.byPeer !== undefined ? e.peer === w.byPeer : (w.hosts?.has(e.host) === true && e.peer !== w.notPeer)))
      if (hit !== undefined) r.recoverySeconds = round((hit.at - w.since) / 1000, 2)
      if (w.owned !== undefined && w.busyFrom !== undefined) {
        const busy = new Set<number>()
        for (const e of log) if (e.at >= (w.busyFrom as number) && e.target !== '/robots.txt' && w.owned.has(e.host)) busy.add(e.host)
        r.hostsBusyAfterSettle = busy.size
      }
    }
    const truth = web.summary()
    const queued = finalStatuses.reduce((a, s) => a + s.local.queued, 0)
    const lostUrls = truth.pagesExpected - truth.pagesFetched
    const invariants: Record<string, boolean> = {
      fullCoverage: truth.coverage === 1,
      noLostUrls: lostUrls === 0,
      noDuplicateFetches: duplicates.unexplained === 0,
      politeness: politeness.unexplained === 0,
      robotsObeyed: truth.disallowedRequests === 0,
      fullyReplicated: underReplicated === 0,
      everyPeerAnswers: sample.mismatches === 0,
      ringConverged: settledOk && finalStatuses.every(s => s.ring.peers === cluster.live().length),
      frontierDrained: queued === 0
    }
    const fetchedBy = new Map<string, number>()
    for (const e of log) if (e.target !== '/robots.txt') fetchedBy.set(e.peer, (fetchedBy.get(e.peer) ?? 0) + 1)
    const live = new Set(cluster.live())
    return {
      mode: 'real',
      seed: opts.seed ?? 1,
      hosts: web.origins.length,
      peers,
      peersAtEnd: live.size,
      replicas: opts.replicas ?? null,
      pagesExpected: truth.pagesExpected,
      pagesFetched: truth.pagesFetched,
      coverage: round(truth.coverage, 6),
      duplicateFetches: duplicates.total,
      duplicates,
      lostUrls,
      politeness,
      disallowedRequests: truth.disallowedRequests,
      underReplicated,
      sample,
      faults: faults.map(f => reports.get(f) as FaultReport),
      wallSeconds: round((performance.now() - started) / 1000),
      crawlSeconds: round(crawlSeconds),
      pagesPerSecond: round(truth.pagesFetched / Math.max(crawlSeconds, 0.001), 1),
      bytesRouted: tally.sum('bytesRouted'),
      messagesRouted: tally.sum('messagesRouted'),
      replicationBytes: tally.sum('replicationBytes'),
      invariants,
      perPeer: cluster.peers.map(p => ({ index: p.index, peerId: p.peerId, state: live.has(p) ? 'live' as const : 'killed' as const, fetched: fetchedBy.get(shortId(p.peerId)) ?? 0 }))
    }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    for (const k of paused) cluster.peers.find(p => p.index === k)?.process.kill('SIGCONT')
    await cluster.stop()
    await web.close()
    if (ownDir) await rm(dataDir, { recursive: true, force: true })
  }
}

/**
 * Ask every peer for a sample of expected URLs: the same record everywhere, and for a page the body
 * the server sent.
 */
async function checkSample (web: SyntheticWeb, peers: LocalPeer[], n: number): Promise<SimReport['sample']> {
  const urls = web.expectedUrls()
  const every = Math.max(1, Math.floor(urls.length / Math.max(n, 1)))
  const sample = urls.filter((_, i) => i % every === 0).slice(0, n)
  const out = { urls: sample.length, peers: peers.length, mismatches: 0, examples: [] as string[] }
  const miss = (msg: string): void => {
    out.mismatches++
    if (out.examples.length < 10) out.examples.push(msg)
  }
  for (const [i, url] of sample.entries()) {
    const records = await Promise.all(peers.map(async (p) => {
      const res = await fetch(`http://${p.api}/v1/url?u=${encodeURIComponent(url)}`, { signal: AbortSignal.timeout(10_000) })
      const r: any = await res.json()
      return { http: res.status, status: r.status, cid: r.cid, size: r.size }
    }))
    const first = JSON.stringify(records[0])
    const bad = records.findIndex(r => r.http !== 200 || JSON.stringify(r) !== first)
    if (bad >= 0) {
      miss(`${url}: peer ${peers[bad].index} answers ${JSON.stringify(records[bad])}, peer ${peers[0].index} ${first}`)
      continue
    }
    const truth = web.body(url)
    if (truth === undefined) continue // a redirect, an error page: its record is all there is to compare
    const via = peers[i % peers.length]
    const res = await fetch(`http://${via.api}/v1/url?u=${encodeURIComponent(url)}&body=1`, { signal: AbortSignal.timeout(10_000) })
    const body = Buffer.from(await res.arrayBuffer())
    if (res.status !== 200 || !body.equals(truth)) miss(`${url}: body via peer ${via.index} (HTTP ${res.status}, ${body.length} bytes) is not what the server sent (${truth?.length ?? 'no'} bytes)`)
  }
  return out
}

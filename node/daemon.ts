import './polyfills.js'
import debug from 'debug'
import { Api } from './api.js'
import type { CrawlConfig } from './config.js'
import { Membership } from './membership.js'
import { createNetwork, type Network } from './net.js'
import { Peer, shortId } from './peer.js'
import { Ring } from './ring.js'
import { hostKeyFast } from './router.js'
import type { Link, UrlRecord } from './types.js'
import { VERSION } from './constants.js'
import { LinksTransport } from '../protocols/links/transport.js'
import { SeedGossip } from './seed-gossip.js'
import { QueryService } from '../protocols/query/service.js'
import { MetaTransport } from '../protocols/meta/transport.js'
import { BlockService } from '../protocols/blocks/service.js'
import { BlockClient } from '../protocols/blocks/client.js'
import { Replication, type MetaOp } from './replication.js'
import { ReplicaStore } from './replicas.js'
import { queryPeer } from '../protocols/query/client.js'

const log = debug('shoal:daemon')
const stateLog = debug('shoal:daemon:state')

export interface DaemonInit {
  /** Everything of this peer: its key, its LevelDB. */
  dataDir: string
  /** Multiaddrs to listen on. @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /** Multiaddrs (with /p2p/<id>) of peers to join through. */
  bootstrap?: string[]
  /** Cluster name: names the DHT protocol and the membership topic. @default 'shoal' */
  cluster?: string
  /** HOST:PORT of the HTTP API. @default '127.0.0.1:0' */
  api?: string
  seeds?: string[]
  config?: CrawlConfig
  vnodes?: number
  /** Peers holding each host's entries, records and bodies: its owner and r − 1 successors. @default 2 */
  replicas?: number
  heartbeatInterval?: number
  silenceTimeout?: number
  /** Lines an operator should see. */
  log?: (line: string) => void
}

/**
 * A shoal peer in a cluster: the crawl engine (Peer) plus the libp2p node, membership, the ring and
 * the links protocol, and the HTTP API. Started in this order, stopped in reverse:
 *
 *   network → links transport → peer (storage, frontier, fetch loops) → membership → API
 *
 * The ring is rebuilt from the member list on every membership change; the router asks it who owns
 * each discovered link's host and sends the link there over /shoal/links/1.0.0.
 */
export class Daemon {
  network!: Network
  membership!: Membership
  links!: LinksTransport
  peer!: Peer
  api!: Api
  ring!: Ring
  seedGossip!: SeedGossip
  query!: QueryService
  meta!: MetaTransport
  blockService!: BlockService
  blockClient!: BlockClient
  replication!: Replication
  replicaStore?: ReplicaStore
  peerId = ''
  private readonly init: DaemonInit
  private readonly say: (line: string) => void

  constructor (init: DaemonInit) {
    this.init = init
    this.say = init.log ?? ((line) => { log(line) })
  }

  async start (): Promise<void> {
    const { init } = this
    const allowLoopback = init.config?.allowPrivate ?? false
    this.network = await createNetwork({
      dataDir: init.dataDir,
      listen: init.listen,
      bootstrap: init.bootstrap,
      cluster: init.cluster,
      allowLoopback,
      log: this.say
    })
    this.peerId = this.network.peerId
    this.ring = Ring.of([this.peerId], { vnodes: init.vnodes })
    this.links = new LinksTransport({ libp2p: this.network.libp2p }, {
      onLinks: async (from, links, hops) => await this.receive(from, links, hops)
    })
    await this.links.start()
    this.query = new QueryService({ libp2p: this.network.libp2p }, {
      lookup: async (url) => await this.lookup(url),
      body: async (record) => record.cid == null ? undefined : await this.peer.blocks.get(record.cid)
    })
    await this.query.start()
    const r = init.replicas ?? DEFAULT_REPLICAS
    this.blockClient = new BlockClient({ libp2p: this.network.libp2p })
    await this.blockClient.start()
    this.blockService = new BlockService({ libp2p: this.network.libp2p }, {
      store: {
        put: async (bytes) => await this.peer.blocks.put(bytes),
        get: async (cid) => await this.peer.blocks.get(cid),
        has: async (cid) => await this.peer.blocks.has(cid)
      }
    })
    await this.blockService.start()
    this.meta = new MetaTransport({ libp2p: this.network.libp2p }, {
      onApply: async (from, ops) => {
        if (this.replicaStore == null) throw new Error('this peer is still starting')
        if (ops.some(op => op.k === 'handed' && op.h === HANDED_ALL)) {
          this.handedAll.set(from, Date.now())
          log('%s handed over every host it held', shortId(from))
          this.peer.frontier.refreshOwnership()
          ops = ops.filter(op => !(op.k === 'handed' && op.h === HANDED_ALL))
        }
        await this.replicaStore.apply(ops as MetaOp[])
      }
    })
    await this.meta.start()
    this.replication = new Replication({
      self: this.peerId,
      ring: () => this.ring,
      sendMeta: async (peer, ops) => { await this.meta.send(peer, ops as any) },
      putBlock: async (peer, bytes) => await this.blockClient.put(peer, bytes),
      blocks: () => this.peer.blocks
    }, r)
    this.peer = new Peer({
      dataDir: init.dataDir,
      config: init.config,
      peerId: this.peerId,
      ownership: (self) => ({ self, owner: (host: string) => this.ring.owner(host) ?? self }),
      owns: (host: string) => this.owns(host),
      transport: this.links,
      replicator: this.replication
    })
    await this.peer.start()
    this.replicaStore = new ReplicaStore(this.peer.store, this.peer.frontier,
      (host) => this.settled && (this.ring.owner(host) ?? this.peerId) === this.peerId)
    this.replicaStore.onHanded = (host) => {
      log('%s handed over', host)
      this.handed.set(host, Date.now())
      this.peer.frontier.refreshOwnership()
      this.copyHandedToReplicas(host)
    }
    this.membership = new Membership({ libp2p: this.network.libp2p }, {
      cluster: init.cluster,
      heartbeatInterval: init.heartbeatInterval,
      silenceTimeout: init.silenceTimeout,
      getCounters: () => this.counters(),
      info: { version: VERSION },
      log: this.say
    })
    this.seedGossip = new SeedGossip(this.network.libp2p, init.cluster ?? 'shoal', (urls) => {
      this.peer.addScopeSeeds(urls).catch((err: any) => { this.say(`storing seeds: ${err.message}`) })
    })
    this.seedGossip.start()
    this.membership.addEventListener('change', (e) => {
      const members = e.detail
      const previous = this.ring
      // A peer joined: tell it the seeds (the scope) it missed.
      if (members.some(m => !this.ring.has(m)) && this.peer.seedList.length > 0) this.seedGossip.publish([...this.peer.seedList])
      this.ring = Ring.of(members, { vnodes: init.vnodes })
      this.membershipChangedAt = Date.now()
      // Batches out to a peer that left fail now and go to the new owners (a hung peer would hold
      // them until the ack timeout, 30 s, long after the silence timeout dropped it).
      for (const gone of previous.peers.filter(p => !this.ring.has(p))) {
        this.links.abandon(gone, 'it left the ring')
        this.meta.abandon(gone, 'it left the ring')
      }
      this.say(`ring: ${members.length} peers (${members.map(shortId).join(' ')})`)
      if (!this.settled) return
      this.moved(previous)
      this.peer.frontier.refreshOwnership()
      this.rebalance(previous)
    })
    this.membership.start()
    // Until it has heard the cluster, a joining peer's ring holds only itself: it would own every
    // host. It decides nothing (leases no host, takes over nothing) until it has joined and its
    // member list has stopped growing; the first peer of a cluster settles at once.
    const startRing = this.ring
    void this.network.joined().then(async () => {
      const alone = (init.bootstrap ?? []).every(a => a.endsWith(this.peerId))
      if (alone) this.settle(startRing, false)
      else await this.settleWhenStable(startRing)
    })
    this.watchForFreeze()
    this.repairTimer = setInterval(() => { this.repair() }, REPAIR_INTERVAL)
    this.repairTimer.unref()
    this.api = new Api({
      status: async () => this.status(),
      seed: async (urls) => {
        const r = await this.peer.seed(urls)
        this.seedGossip.publish(r.accepted)
        return r
      },
      lookup: async (url, opts) => await this.lookupAnywhere(url, opts?.body === true),
      body: async (record: UrlRecord) => record.cid == null ? undefined : await this.peer.blocks.get(record.cid),
      metrics: () => this.counters()
    }, { listen: init.api })
    const api = await this.api.start()
    this.membership.setApi(api)
    if (init.seeds != null && init.seeds.length > 0) {
      const r = await this.peer.seed(init.seeds)
      this.seedGossip.publish(r.accepted)
      for (const x of r.rejected) this.say(`seed ${x.url} rejected: ${x.reason}`)
    }
  }

  async stop (): Promise<void> {
    this.stopping = true
    if (this.freezeTimer != null) clearInterval(this.freezeTimer)
    if (this.holdTimer != null) clearTimeout(this.holdTimer)
    if (this.repairTimer != null) clearInterval(this.repairTimer)
    await this.api?.stop()
    this.seedGossip?.stop()
    this.membership?.stop()
    await this.peer?.stop()
    await this.meta?.stop()
    await this.blockService?.stop()
    await this.blockClient?.stop()
    await this.query?.stop()
    await this.links?.stop()
    await this.network?.stop()
  }

  private get heartbeatInterval (): number {
    return this.init.heartbeatInterval ?? 2000
  }

  private get silenceTimeout (): number {
    return this.init.silenceTimeout ?? 10_000
  }

  /**
   * Act on the ring: take over, hand over, crawl. `rejoining`: the cluster went on without this
   * peer (it was restarted, or frozen), so hosts it owns again wait for their hand-off from the
   * peers that held them meanwhile.
   */
  private settle (from: Ring, rejoining: boolean): void {
    log('settled (%s) on a ring of %d', rejoining ? 'rejoining' : 'first', this.ring.size)
    this.settled = true
    this.transitions = []
    // The others went on without this peer: what it owns now, they held.
    if (rejoining) this.moved(this.ring.without(this.peerId))
    this.peer.frontier.refreshOwnership()
    this.rebalance(from)
  }

  private stopping = false
  private membershipChangedAt = 0
  /** Bumped each time this peer un-settles (a freeze): an older wait to settle gives up. */
  private settleRound = 0

  /**
   * Settle as a peer joining a cluster that runs (started, restarted or woken from a freeze) once
   * its ring shows the cluster: it has heard another member and no member has come or gone for
   * 1.5 heartbeat intervals (every live peer beats once an interval, and a joining peer's
   * subscription makes them beat at once). A fixed wait was not enough: a peer that settled on a
   * ring of one, under load, owned every host at once, without waiting for their hand-off. Past the
   * silence timeout it settles on what it has.
   */
  private async settleWhenStable (from: Ring): Promise<void> {
    const round = this.settleRound
    const began = Date.now()
    const quiet = 1.5 * this.heartbeatInterval
    while (true) {
      await new Promise(resolve => setTimeout(resolve, this.heartbeatInterval / 4).unref())
      if (this.stopping || this.settled || round !== this.settleRound) return
      const now = Date.now()
      const heard = this.ring.size > 1 && now - this.membershipChangedAt >= quiet && now - began >= quiet
      if (heard || now - began >= this.silenceTimeout + quiet) break
    }
    this.settle(from, true)
  }

  private freezeTimer?: NodeJS.Timeout
  private repairTimer?: NodeJS.Timeout
  private repairing = false

  /**
   * Copies a replica failed to acknowledge are repaired in the background: every host this peer
   * owns sends its state to its replicas again (idempotent on their side).
   */
  private repair (): void {
    if (stateLog.enabled) {
      for (const host of this.peer.frontier.hostsWithWork()) {
        stateLog('%s owner %s owns %s %o', host, shortId(this.ring.owner(host) ?? this.peerId), this.owns(host), this.peer.frontier.hostInfo(host))
      }
    }
    // Queued URLs of hosts this peer does not own: hand them over (self-healing after ring churn).
    if (this.settled && this.peer.frontier.hostsWithWork().some(h => (this.ring.owner(h) ?? this.peerId) !== this.peerId)) {
      this.rebalance(this.ring)
    }
    if (this.repairing || !this.settled || this.replication.stats.underReplicated === 0) return
    this.repairing = true
    const missing = this.replication.stats.underReplicated
    this.replication.stats.underReplicated = 0
    void (async () => {
      for (const { host, origin } of this.peer.frontier.knownHosts()) {
        if ((this.ring.owner(host) ?? this.peerId) !== this.peerId) continue
        for (const peer of this.replication.replicasOf(host)) await this.sendHostState(peer, host, origin, true)
      }
      this.say(`repaired ${missing} missing copies`)
    })().catch((err: any) => { this.say(`repair: ${err.message}`) }).finally(() => { this.repairing = false })
  }

  /**
   * A peer that was stopped (SIGSTOP, a VM paused) has been dropped from the others' rings while
   * its own still shows them all. When its timers fire far too late, it un-settles: it stops
   * leasing, waits until its ring shows the cluster again, and settles as a rejoining peer.
   */
  private watchForFreeze (): void {
    this.lastTick = Date.now()
    this.freezeTimer = setInterval(() => {
      this.frozen()
      this.lastTick = Date.now()
    }, this.heartbeatInterval)
    this.freezeTimer.unref()
  }

  private lastTick = 0

  /**
   * Was this peer frozen (its timer a silence timeout late)? Then it un-settles. Asked by the
   * watchdog timer and before every lease (`owns`): after a SIGCONT, a response or a timer of the
   * fetcher can come before the watchdog's, and a lease then would fetch a page of a host that
   * another peer crawls meanwhile.
   */
  private frozen (): boolean {
    const now = Date.now()
    const gap = now - this.lastTick
    if (gap < this.silenceTimeout) return false
    this.lastTick = now
    if (!this.settled) return true
    this.say(`this peer was frozen for ${(gap / 1000).toFixed(1)} s; rejoining`)
    this.settled = false
    this.settleRound++
    this.transitions = []
    this.peer.frontier.refreshOwnership()
    const from = this.ring.without(this.peerId)
    void this.settleWhenStable(from)
    return true
  }

  /** The ring is known well enough to act on (see start). */
  private settled = false
  /**
   * The ring changes of the last HANDOFF_TIMEOUT, each with the ring before it, oldest first. A
   * host that moved here in any of them from a peer still alive waits for that peer's `handed`:
   * only the last change would not do, since a second change (a peer flapping under load) would
   * make a host look as if it had been here all along.
   */
  private transitions: Array<{ before: Ring, at: number }> = []
  /** Hosts whose previous owner said it handed everything over, and when. */
  private readonly handed = new Map<string, number>()
  /**
   * Peers that said they handed over every host they held when this peer joined, and when: a host
   * they never knew (first met after the join) has nothing to wait for.
   */
  private readonly handedAll = new Map<string, number>()

  /** The ring changed (or this peer rejoined): remember what it was before, for `owns`. */
  private moved (before: Ring): void {
    const now = Date.now()
    this.transitions = this.transitions.filter(t => now - t.at < HANDOFF_TIMEOUT)
    this.transitions.push({ before, at: now })
    for (const [host, at] of this.handed) if (now - at > 2 * HANDOFF_TIMEOUT) this.handed.delete(host)
  }

  /**
   * Does this peer crawl `host` now? Its owner on the ring, once settled and not frozen; and for a
   * host that moved here in the last HANDOFF_TIMEOUT from a peer still alive, only once that peer
   * has handed it over (its queue, then, once what it had in flight is finished, its records), so
   * no page that peer fetched is fetched again and two peers never crawl the host at once. The
   * timeout covers a previous owner that never knew the host, or could not reach this peer.
   */
  private owns (host: string): boolean {
    if (!this.settled || this.frozen()) return false
    if ((this.ring.owner(host) ?? this.peerId) !== this.peerId) return false
    if (this.transitions.length === 0) return true
    const now = Date.now()
    for (const t of this.transitions) {
      if (now - t.at >= HANDOFF_TIMEOUT) continue
      const before = t.before.owner(host)
      if (before == null || before === this.peerId || !this.ring.has(before)) continue
      const handedAt = this.handed.get(host)
      if (handedAt != null && handedAt >= t.at - HANDOFF_TIMEOUT) continue
      const allAt = this.handedAll.get(before)
      if (allAt != null && allAt >= t.at - HANDOFF_TIMEOUT) continue
      this.scheduleHoldEnd(t.at + HANDOFF_TIMEOUT)
      return false
    }
    return true
  }

  private holdTimer?: NodeJS.Timeout
  private holdUntil = Infinity
  private scheduleHoldEnd (at: number): void {
    if (this.holdTimer != null && this.holdUntil <= at) return
    if (this.holdTimer != null) clearTimeout(this.holdTimer)
    this.holdUntil = at
    this.holdTimer = setTimeout(() => {
      this.holdTimer = undefined
      this.holdUntil = Infinity
      this.peer?.frontier.refreshOwnership()
    }, Math.max(0, at - Date.now()) + 10)
    this.holdTimer.unref()
  }

  private rebalancing = false
  private rebalanceFrom?: Ring

  /**
   * The ring changed. In order, one pass at a time (a change during a pass starts another after
   * it, from the ring the first pass started with):
   * 1. hosts this peer held copies of and now owns (their owner died or left): their queued URLs
   *    enter its frontier (and are copied to their new replicas on the way);
   * 2. hosts it lost (a peer joined or came back), and hosts it holds queued URLs of without
   *    owning them: handed to their owner (see `handOff`);
   * 3. hosts it owns whose replica set gained a peer: that peer gets their queued URLs, records
   *    and bodies.
   */
  private rebalance (previous: Ring): void {
    this.rebalanceFrom ??= previous
    if (this.rebalancing) return
    this.rebalancing = true
    void (async () => {
      while (this.rebalanceFrom != null) {
        const old = this.rebalanceFrom
        this.rebalanceFrom = undefined
        await this.rebalancePass(old)
      }
    })().catch((err: any) => { this.say(`rebalancing: ${err.message}`) }).finally(() => { this.rebalancing = false })
  }

  private async rebalancePass (old: Ring): Promise<void> {
    const now = this.ring
    const self = this.peerId
    const owns = (host: string): boolean => (now.owner(host) ?? self) === self
    const taken = await this.replicaStore?.promote(owns) ?? 0
    if (taken > 0) this.say(`took over ${taken} queued URLs of peers that left`)
    const hosts = this.peer.frontier.knownHosts()
    const withWork = new Set(this.peer.frontier.hostsWithWork())
    // Hosts lost first, a few at a time: their new owner waits for them before it crawls them.
    // Hosts it owned, and any host it holds queued URLs of without owning it (links it kept past
    // the hop limit, copies it took over under a ring that has changed since).
    const lost = hosts.filter(({ host }) => (now.owner(host) ?? self) !== self && ((old.owner(host) ?? self) === self || withWork.has(host)))
    let next = 0
    let allHanded = true
    await Promise.all(Array.from({ length: Math.min(HANDOFFS_AT_ONCE, lost.length) }, async () => {
      while (next < lost.length) {
        const { host, origin } = lost[next++]
        if (!await this.handOff(host, origin, now.owner(host) ?? self)) allHanded = false
      }
    }))
    // Peers new on the ring wait for the hosts they took from this one; the hosts it held are
    // handed one by one above, and this says there is no other (a host it never knew, first met
    // after the join, need not wait out HANDOFF_TIMEOUT). Only when every hand-off went through.
    if (allHanded) {
      await Promise.all(now.peers.filter(p => p !== self && !old.has(p)).map(async p => { await this.sendHandedAll(p) }))
    }
    for (const { host, origin } of hosts) {
      const ownerBefore = old.owner(host) ?? self
      if ((now.owner(host) ?? self) !== self) continue
      const before = new Set(ownerBefore === self ? this.replication.replicasOf(host, old) : [])
      const gained = this.replication.replicasOf(host).filter(p => !before.has(p))
      for (const peer of gained) await this.sendHostState(peer, host, origin, true)
    }
  }

  /**
   * Hand a host this peer no longer owns to its owner: its queued URLs as links (the owner admits
   * what it has not seen), then, once the leases out here have finished (this peer stopped leasing
   * the host when its ring changed), its records and bodies, then `handed`. The owner crawls the
   * host only after `handed` (see `owns`), so nothing this peer fetched, or had in flight, is
   * fetched again, and the host's politeness is never kept by both at once.
   */
  private async handOff (host: string, origin: string, owner: string): Promise<boolean> {
    const self = this.peerId
    const entries = await this.peer.frontier.hostEntries(host)
    try {
      if (entries.length > 0 && (this.ring.owner(host) ?? self) !== self) {
        await this.peer.router.route(entries.map(({ entry }) => ({
          url: entry.url, depth: entry.depth, referrer: entry.referrer, redirects: entry.redirects
        })), { skipScope: true })
        if ((this.ring.owner(host) ?? self) === self) {
          // The ring gave the host back meanwhile: the links came home and were already queued.
          this.peer.frontier.keep(host)
          return true
        }
        await this.peer.frontier.release(host, entries.map(e => e.key))
      } else {
        this.peer.frontier.keep(host)
      }
    } catch (err: any) {
      this.peer.frontier.keep(host)
      this.say(`hand-off of ${host} failed (${err.message}); kept here`)
      return false
    }
    const until = Date.now() + DRAIN_TIMEOUT
    while (this.peer.frontier.inflightOf(host) > 0 && Date.now() < until && !this.stopping) {
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    // Records, then `handed`, tried again with backoff: a peer that just restarted is often dialled
    // first at the address it had before. Without the records the owner would fetch again what was
    // done here, so there is no `handed` without them; past the retries the owner waits out
    // HANDOFF_TIMEOUT (an owner that can't be reached leaves the ring meanwhile).
    for (let attempt = 0; ; attempt++) {
      if ((this.ring.owner(host) ?? self) !== owner || this.stopping) return false // a later pass hands it on
      if (await this.sendHostState(owner, host, origin, false) &&
          await this.replication.sendAll(new Map([[owner, [{ k: 'handed', h: host }]]]))) break
      if (attempt === HANDOFF_RETRIES) {
        this.say(`hand-off of ${host} to ${shortId(owner)}: not acknowledged`)
        return false
      }
      log('hand-off of %s to %s not acknowledged; again', host, shortId(owner))
      await new Promise(resolve => setTimeout(resolve, HANDOFF_RETRY_DELAY * 2 ** attempt))
    }
    this.say(`handed ${host} to ${shortId(owner)} (${entries.length} queued URLs)`)
    return true
  }

  /**
   * The records of a host handed here arrived after this peer's rebalance pass copied the host to
   * its replicas: copy them again now that they are all here, or the replicas would lack them
   * (a later failover of this peer would fetch those pages again). Failures count as
   * under-replicated, which the repair timer retries.
   */
  private copyHandedToReplicas (host: string): void {
    if ((this.ring.owner(host) ?? this.peerId) !== this.peerId) return
    const origin = this.peer.frontier.knownHosts().find(h => h.host === host)?.origin
    if (origin == null) return
    const replicas = this.replication.replicasOf(host).filter(p => p !== this.peerId)
    void Promise.all(replicas.map(async peer => await this.sendHostState(peer, host, origin, false)))
      .catch((err: any) => { this.say(`copying ${host} to its replicas: ${err.message}`) })
  }

  /** Tell a peer new on the ring that every host it took from this one was handed over (with retries). */
  private async sendHandedAll (peer: string): Promise<void> {
    for (let attempt = 0; attempt <= HANDOFF_RETRIES; attempt++) {
      if (!this.ring.has(peer) || this.stopping) return
      if (await this.replication.sendAll(new Map([[peer, [{ k: 'handed', h: HANDED_ALL }]]]))) return
      await new Promise(resolve => setTimeout(resolve, HANDOFF_RETRY_DELAY * 2 ** attempt))
    }
  }

  /**
   * What a peer needs to hold a host: its records (and bodies, first, up to BLOCK_COPIES at once)
   * and, for a replica, its queued URLs. Resolves true once the peer has acknowledged them all.
   */
  private async sendHostState (peer: string, host: string, origin: string, withEntries: boolean): Promise<boolean> {
    const ops: MetaOp[] = []
    let ok = true
    let bodies: Array<Promise<void>> = []
    const copy = async (cid: string): Promise<void> => {
      const bytes = await this.peer.blocks.get(cid).catch(() => undefined)
      if (bytes == null) return
      await this.blockClient.put(peer, bytes).then(() => {}, () => {
        ok = false
        this.replication.stats.underReplicated++
      })
    }
    for await (const rec of this.peer.metadata.recordsOf(origin)) {
      if (rec.cid != null) bodies.push(copy(rec.cid))
      if (bodies.length >= BLOCK_COPIES) {
        await Promise.all(bodies)
        bodies = []
      }
      ops.push({ k: 'record', rec })
    }
    await Promise.all(bodies)
    if (withEntries) {
      for (const { key, entry } of await this.peer.frontier.allHostEntries(host)) {
        const op: MetaOp = { k: 'entry', h: host, key, u: entry.url, d: entry.depth }
        if (entry.referrer != null) op.r = entry.referrer
        if (entry.redirects != null) op.x = entry.redirects
        ops.push(op)
      }
    }
    if (ops.length === 0) return ok
    return await this.replication.sendAll(new Map([[peer, ops]])) && ok
  }

  /**
   * Links sent to us. Those whose host we own go into our frontier (the ack waits until they are on
   * disk); the rest — our ring view differs from the sender's — are forwarded to the owner we see,
   * up to the hop limit, past which we keep them rather than lose them.
   */
  private async receive (_from: string, links: Link[], hops: number): Promise<number> {
    const mine: Link[] = []
    const elsewhere = new Map<string, Link[]>()
    // Depth 0 means a seed: it widens the scope here before its page is fetched and parsed here.
    const seeds = links.filter(l => l.depth === 0).map(l => l.url)
    if (seeds.length > 0) await this.peer.addScopeSeeds(seeds)
    for (const l of links) {
      const owner = this.ring.owner(hostKeyFast(l.url)) ?? this.peerId
      if (owner === this.peerId || hops >= MAX_FORWARD_HOPS) {
        mine.push(l)
      } else {
        let batch = elsewhere.get(owner)
        if (batch == null) elsewhere.set(owner, batch = [])
        batch.push(l)
      }
    }
    const forwards = [...elsewhere].map(async ([owner, batch]) => {
      try {
        await this.links.send(owner, batch, { hops: hops + 1 })
        return 0
      } catch {
        return await this.peer.frontier.add(batch)
      }
    })
    const [admitted, ...forwarded] = await Promise.all([this.peer.frontier.add(mine), ...forwards])
    return admitted + forwarded.reduce((a, b) => a + b, 0)
  }

  /**
   * Any peer answers for any URL: from its own store when it owns the host, else from the owner
   * over /shoal/query/1.0.0, else (owner unreachable) from the next peers of the ring, else from
   * what it holds itself.
   */
  private async lookupAnywhere (url: string, body: boolean): Promise<{ record?: UrlRecord, verdict: string, body?: Uint8Array }> {
    const candidates = this.ring.replicas(hostKeyFast(url), Math.min(3, this.ring.size))
    const failures: string[] = []
    for (const peer of candidates) {
      if (peer === this.peerId) return await this.lookup(url)
      try {
        return await queryPeer(this.network.libp2p, peer, url, { body })
      } catch (err: any) {
        failures.push(`${shortId(peer)}: ${err.message}`)
        if (err.retryable === false && err.name !== 'QueryBodyMismatchError') break
      }
    }
    const local = await this.lookup(url)
    if (local.record == null && failures.length > 0) local.verdict += ` (owner unreachable: ${failures.join('; ')})`
    return local
  }

  private async lookup (url: string): Promise<{ record?: UrlRecord, verdict: string }> {
    const record = await this.peer.metadata.get(url)
    if (record != null) return { record, verdict: record.status }
    const [seen] = await this.peer.frontier.seen.lookup([url])
    const owner = this.ring.owner(hostKeyFast(url)) ?? this.peerId
    const where = owner === this.peerId ? '' : ` (owner: ${owner})`
    const verdict = seen === undefined ? 'never seen' : this.peer.frontier.isInFlight(url) ? 'in flight' : 'queued'
    return { verdict: verdict + where }
  }

  /** This peer's counters: published in heartbeats, served at /metrics. */
  counters (): Record<string, number> {
    const s = this.peer.stats()
    const l = this.links.stats
    return {
      queued: s.queued,
      inflight: s.inflight,
      inTransit: this.peer.router.stats.inTransit,
      admitted: s.admitted,
      done: s.done,
      fetched: s.done - (s.byStatus.blocked ?? 0),
      stored: (s.byStatus.fetched ?? 0) + (s.byStatus['not-modified'] ?? 0),
      requests: s.requests,
      hosts: s.hosts,
      linksSent: l.linksSent,
      linksReceived: l.linksReceived,
      bytesRouted: l.bytesSent,
      messagesRouted: l.messagesSent,
      alreadyRouted: this.peer.router.stats.alreadyRouted,
      underReplicated: this.replication.stats.underReplicated,
      replicationBytes: this.meta.stats.bytesSent + this.blockClient.stats.bytesSent,
      opsReplicated: this.replication.stats.opsReplicated
    }
  }

  status (): Record<string, unknown> & { idle: boolean } {
    const self = this.counters()
    const members = this.membership.members()
    const peers = members.map((p) => {
      if (p === this.peerId) return { peer: p, self: true, api: this.api.address, counters: self, share: this.ring.share(p) }
      const info = this.membership.info(p)
      return { peer: p, api: info?.api, counters: info?.counters ?? {}, heardAt: info?.heardAt, share: this.ring.share(p) }
    })
    // Idle as far as this peer can tell: nothing queued, in flight or in transit anywhere it hears of.
    const busy = (c: Record<string, number>): boolean => (c.queued ?? 0) > 0 || (c.inflight ?? 0) > 0 || (c.inTransit ?? 0) > 0
    const idle = peers.every(p => !busy(p.counters))
    return {
      version: VERSION,
      peerId: this.peerId,
      multiaddrs: this.network.multiaddrs(),
      api: this.api.address,
      ring: { peers: members.length, version: this.ring.version },
      local: { ...self, byStatus: this.peer.stats().byStatus },
      peers,
      idle
    }
  }
}

/** Forwarding hops before a receiver keeps links it doesn't own (matches the links protocol's default). */
const MAX_FORWARD_HOPS = 3

/** How often copies that replicas failed to acknowledge are sent again. */
const REPAIR_INTERVAL = 10_000

/** The host name of a `handed` op that covers every host the sender held. */
const HANDED_ALL = '*'

/** A host that moved here from a live peer waits at most this long for its hand-off. */
const HANDOFF_TIMEOUT = 10_000

/** A hand-off waits at most this long for the host's leases out here to finish (well within HANDOFF_TIMEOUT). */
const DRAIN_TIMEOUT = 5_000

/** A hand-off not acknowledged is tried again this many times, after 0.5, 1, 2 and 4 s (within HANDOFF_TIMEOUT). */
const HANDOFF_RETRIES = 4
const HANDOFF_RETRY_DELAY = 500

/** Hosts handed off at once in a rebalancing pass. */
const HANDOFFS_AT_ONCE = 8

/** Bodies copied to a peer at once when it takes a host over or becomes one of its replicas. */
const BLOCK_COPIES = 16

/** Copies of each host: its owner and one successor. */
export const DEFAULT_REPLICAS = 2

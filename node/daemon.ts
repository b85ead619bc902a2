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
      onApply: async (_from, ops) => {
        if (this.replicaStore == null) throw new Error('this peer is still starting')
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
      this.handed.set(host, Date.now())
      this.peer.frontier.refreshOwnership()
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
      this.say(`ring: ${members.length} peers (${members.map(shortId).join(' ')})`)
      if (!this.settled) return
      this.previousRing = previous
      this.ringChangedAt = Date.now()
      this.peer.frontier.refreshOwnership()
      this.rebalance(previous)
    })
    this.membership.start()
    // Until it has heard the cluster, a joining peer's ring holds only itself: it would own every
    // host. It decides nothing (leases no host, takes over nothing) until it has joined and heard a
    // round of heartbeats; the first peer of a cluster settles at once.
    const startRing = this.ring
    void this.network.joined().then(async () => {
      const alone = (init.bootstrap ?? []).every(a => a.endsWith(this.peerId))
      if (!alone) await new Promise(resolve => setTimeout(resolve, 2 * this.heartbeatInterval))
      this.settle(startRing, !alone)
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
    if (this.freezeTimer != null) clearInterval(this.freezeTimer)
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
    this.settled = true
    if (rejoining) {
      this.previousRing = this.ring.without(this.peerId)
      this.ringChangedAt = Date.now()
    }
    this.peer.frontier.refreshOwnership()
    this.rebalance(from)
  }

  private freezeTimer?: NodeJS.Timeout
  private repairTimer?: NodeJS.Timeout
  private repairing = false

  /**
   * Copies a replica failed to acknowledge are repaired in the background: every host this peer
   * owns sends its state to its replicas again (idempotent on their side).
   */
  private repair (): void {
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
   * leasing, waits for a round of heartbeats, and settles again as a rejoining peer.
   */
  private watchForFreeze (): void {
    let last = Date.now()
    this.freezeTimer = setInterval(() => {
      const now = Date.now()
      const gap = now - last
      last = now
      if (gap < this.silenceTimeout || !this.settled) return
      this.say(`this peer was frozen for ${(gap / 1000).toFixed(1)} s; rejoining`)
      this.settled = false
      this.peer.frontier.refreshOwnership()
      const from = this.ring
      setTimeout(() => { this.settle(from.without(this.peerId), true) }, 2 * this.heartbeatInterval).unref()
    }, this.heartbeatInterval)
    this.freezeTimer.unref()
  }

  /** The ring is known well enough to act on (see start). */
  private settled = false
  private previousRing?: Ring
  private ringChangedAt = 0
  /** Hosts whose previous owner said it handed everything over, and when. */
  private readonly handed = new Map<string, number>()

  /**
   * Does this peer crawl `host` now? Its owner on the ring, once settled; and for a host that just
   * moved here from a peer still alive, only once that peer has handed it over (or after
   * HANDOFF_TIMEOUT), so no page that peer fetched is fetched again and two peers never crawl the
   * host at once.
   */
  private owns (host: string): boolean {
    if (!this.settled) return false
    if ((this.ring.owner(host) ?? this.peerId) !== this.peerId) return false
    const before = this.previousRing?.owner(host)
    if (before == null || before === this.peerId || !this.ring.has(before)) return true
    const handedAt = this.handed.get(host)
    if (handedAt != null && handedAt >= this.ringChangedAt - HANDOFF_TIMEOUT) return true
    if (Date.now() - this.ringChangedAt >= HANDOFF_TIMEOUT) return true
    this.scheduleHoldEnd()
    return false
  }

  private holdTimer?: NodeJS.Timeout
  private scheduleHoldEnd (): void {
    if (this.holdTimer != null) return
    this.holdTimer = setTimeout(() => {
      this.holdTimer = undefined
      this.peer?.frontier.refreshOwnership()
    }, Math.max(0, this.ringChangedAt + HANDOFF_TIMEOUT - Date.now()) + 10)
    this.holdTimer.unref()
  }

  private rebalancing = false
  private rebalanceFrom?: Ring

  /**
   * The ring changed. In order, one pass at a time (a change during a pass starts another after
   * it, from the ring the first pass started with):
   * 1. hosts this peer held copies of and now owns (their owner died or left): their queued URLs
   *    enter its frontier (and are copied to their new replicas on the way);
   * 2. hosts it owns whose replica set gained a peer: that peer gets their queued URLs, records
   *    and bodies;
   * 3. hosts it owned and lost (a peer joined or came back): the new owner gets their records and
   *    seen marks over /shoal/meta, then their queued URLs as links; they are forgotten here once
   *    the owner has them.
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
    for (const { host, origin } of this.peer.frontier.knownHosts()) {
      const ownerNow = now.owner(host) ?? self
      const ownerBefore = old.owner(host) ?? self
      if (ownerNow === self) {
        const before = new Set(ownerBefore === self ? this.replication.replicasOf(host, old) : [])
        const gained = this.replication.replicasOf(host).filter(p => !before.has(p))
        for (const peer of gained) await this.sendHostState(peer, host, origin, true)
      } else if (ownerBefore === self || this.peer.frontier.hostsWithWork().includes(host)) {
        // Hosts it owned, and any host it holds queued URLs of without owning it (links it kept
        // past the hop limit, copies it took over under a ring that has changed since).
        if (ownerBefore === self) await this.sendHostState(ownerNow, host, origin, false)
        const entries = await this.peer.frontier.hostEntries(host)
        try {
          if (entries.length > 0 && (this.ring.owner(host) ?? self) !== self) {
            await this.peer.router.route(entries.map(({ entry }) => ({
              url: entry.url, depth: entry.depth, referrer: entry.referrer, redirects: entry.redirects
            })), { skipScope: true })
            if ((this.ring.owner(host) ?? self) === self) {
              // The ring gave the host back meanwhile: the links came home and were already queued.
              this.peer.frontier.keep(host)
              continue
            }
            await this.peer.frontier.release(host, entries.map(e => e.key))
            this.say(`handed ${entries.length} queued URLs of ${host} to ${shortId(ownerNow)}`)
          } else {
            this.peer.frontier.keep(host)
          }
          await this.replication.sendAll(new Map([[ownerNow, [{ k: 'handed', h: host }]]]))
        } catch (err: any) {
          this.peer.frontier.keep(host)
          this.say(`hand-off of ${host} failed (${err.message}); kept here`)
        }
      }
    }
  }

  /** What a peer needs to hold a host: its records (and bodies) and, for a replica, its queued URLs. */
  private async sendHostState (peer: string, host: string, origin: string, withEntries: boolean): Promise<void> {
    const ops: MetaOp[] = []
    for await (const rec of this.peer.metadata.recordsOf(origin)) {
      if (rec.cid != null) {
        const bytes = await this.peer.blocks.get(rec.cid).catch(() => undefined)
        if (bytes != null) await this.blockClient.put(peer, bytes).catch(() => { this.replication.stats.underReplicated++ })
      }
      ops.push({ k: 'record', rec })
    }
    if (withEntries) {
      for (const { key, entry } of await this.peer.frontier.allHostEntries(host)) {
        const op: MetaOp = { k: 'entry', h: host, key, u: entry.url, d: entry.depth }
        if (entry.referrer != null) op.r = entry.referrer
        if (entry.redirects != null) op.x = entry.redirects
        ops.push(op)
      }
    }
    if (ops.length > 0) await this.replication.sendAll(new Map([[peer, ops]]))
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

/** A host that moved here from a live peer waits at most this long for its hand-off. */
const HANDOFF_TIMEOUT = 10_000

/** Copies of each host: its owner and one successor. */
export const DEFAULT_REPLICAS = 2

/**
 * The model mode's discrete-event engine: every peer of the cluster, the network between them and
 * the web they crawl, in one process, on a virtual clock. See ./index.ts for what is reused from
 * node/ and what is modelled.
 */
import { Prng, mix } from '../web/prng.js'
import { EventQueue } from './queue.js'
import { Copy, CopyHeap, Gate, ModelPeer, REC, REP, SEEN_DONE, SEEN_MASK, SEEN_QUEUED, Waiter } from './peer.js'
import { Universe } from './views.js'
import type { View } from './views.js'
import { ModelWeb } from './web.js'
import { DEFAULT_FAULT_LENGTH, formatFault } from './options.js'
import type { FaultEnd, FaultTime, ModelFault, ResolvedOptions } from './options.js'

// Constants of node/daemon.ts and node/router.ts (module-private there; the values are mirrored).
/** daemon.ts MAX_FORWARD_HOPS */
const MAX_FORWARD_HOPS = 3
/** daemon.ts REPAIR_INTERVAL */
const REPAIR_INTERVAL = 10_000
/** daemon.ts HANDOFF_TIMEOUT */
const HANDOFF_TIMEOUT = 10_000
/** router.ts RETRY_BASE, RETRY_MAX */
const RETRY_BASE = 50
const RETRY_MAX = 2000

// Event kinds.
const EV_FETCH_DONE = 0
const EV_PUMP = 1
const EV_DELIVER = 3
const EV_ACK = 4
const EV_FAIL = 5
const EV_RETRY = 6
const EV_VIEW = 7
const EV_FAULT = 8
const EV_UP = 9
const EV_SETTLE = 10
const EV_RESUME = 11
const EV_HOLD_END = 12
const EV_REPAIR = 13
const EV_STEP = 14
const EV_BULK = 15
const EV_FAULT_END = 16
const EV_WHEEL = 17
const EV_BLOCK_DONE = 18

// Message kinds.
const LINKS = 0
const META = 1
const BLOCK = 2

// Meta operations: code = id * 4 + op.
const OP_ENTRY = 0
const OP_DONE = 1
const OP_RECORD = 2
const OP_HANDED = 3

// Lease phases.
const FETCHING = 0
const QUEUED_FOR_PROCESSING = 1
const ROUTING = 2
const BLOCKS = 3
const DONE_OPS = 4
const CLOSED = 5

/** Width of a bucket of the report's request timeline, ms. */
export const TIMELINE_BUCKET = 10_000
/** Peers named per fault in the report. */
const MAX_LISTED_PEERS = 20
const EMPTY: number[] = []
const NO_WAITERS: Waiter[] = []

// Wire sizes, bytes (msgpack of the message shapes in protocols/; see the module doc of index.ts).
const FRAME = 4
const LINKS_HEADER = 18
const LINKS_GROUP = 10
const ACK_BYTES = 26
const META_HEADER = 20
const BLOCK_HEADER = 60
const BLOCK_ACK_BYTES = 30
const RECORD_BYTES = 220

class Msg {
  settled = false
  timeoutArmed = false
  /** Links: target pages. */
  pages: number[] = EMPTY
  /** Meta: operations. */
  ops: number[] = EMPTY
  waiters: Waiter[] = NO_WAITERS
  hops = 0
  attempt = 0
  forwardOf?: InLinks
  sentAt = 0
  constructor (readonly kind: number, readonly from: number, readonly to: number, readonly fromEpoch: number, readonly toEpoch: number, public bytes: number) {}
}

/** Links and operations gathered for one peer until a batch is full or its flush delay is up. */
class OutBuf {
  gen = 0
  items: number[] = []
  waiters: Waiter[] = []
  lastWaiter?: Waiter
  bytes = 0
  lastRef = -2
  lastHost = -1
  attempt = 0
  constructor (readonly peer: ModelPeer, readonly epoch: number, readonly to: number, readonly kind: number) {}
}

class Lease extends Waiter {
  phase = FETCHING
  transientFail = false
  reps?: number[]
  constructor (readonly sim: Sim, readonly peer: ModelPeer, readonly epoch: number, readonly copy: Copy, readonly j: number) {
    super()
  }

  get page (): number {
    return this.copy.base + this.j
  }

  fire (): void {
    this.sim.leaseStep(this)
  }
}

/** A links batch received: acked once its links are admitted (and replicated) or forwarded. */
class InLinks extends Waiter {
  constructor (readonly sim: Sim, readonly peer: ModelPeer, readonly epoch: number, readonly msg: Msg) {
    super()
  }

  fire (): void {
    this.peer.incoming.delete(this)
    if (this.peer.alive && this.peer.epoch === this.epoch) this.sim.reply(this.msg)
  }
}

/** A meta batch received: acked once applied (an adopted entry waits for its own replication). */
class InMeta extends Waiter {
  constructor (readonly sim: Sim, readonly peer: ModelPeer, readonly epoch: number, readonly msg: Msg) {
    super()
  }

  fire (): void {
    if (this.peer.alive && this.peer.epoch === this.epoch) this.sim.reply(this.msg)
  }
}

/** A background task of a peer (a rebalance pass, a repair), written as a generator that yields what it awaits. */
interface Task {
  peer: ModelPeer
  epoch: number
  gen: Generator<Gate, void, void>
  onDone?: () => void
}

interface ViewOp {
  remove?: number[]
  add?: number[]
  /** Hear everyone reachable (a peer that just started). */
  sync?: boolean
  /** Epoch of each added peer when the op was made: a peer that died since is not added. */
  epochs?: number[]
}

export interface FaultRecord {
  spec: string
  kind: string
  /** Virtual seconds when it struck, −1 if it never did. */
  at: number
  end?: number
  /** Peers it hit (the first `MAX_LISTED_PEERS` of them listed). */
  peerCount: number
  peers: string[]
  /** Hosts with work left that the peers it took down owned. */
  hostsWatched: number
  /** Of those, fetched again by the end. */
  hostsResumed: number
  /** Virtual seconds from the fault to each watched host's next request: median and max. */
  failoverMedianSeconds?: number
  failoverMaxSeconds?: number
}

export interface Sample {
  page: number
  host: number
  peer: string
  at: number
  note: string
}

/** A fault armed, with its state. */
interface ArmedFault {
  index: number
  f: ModelFault
  record: FaultRecord
  victims: number[]
  /** Per watched host: when its owner went down. */
  watch: Map<number, number>
  /** Per watched host: how long until its next request. */
  took: Map<number, number>
  startedAt: number
  fired: boolean
  ended: boolean
}

export class Sim {
  readonly o: ResolvedOptions
  readonly web: ModelWeb
  readonly u: Universe
  readonly q = new EventQueue()
  readonly rng: Prng
  now = 0
  readonly peers: ModelPeer[]
  /** Peers that exist from the start. */
  readonly initial: number
  private nextJoiner: number
  private readonly U: number

  // The web's view of the crawl.
  private readonly reqCount: Uint8Array
  private readonly finalReq: Uint8Array
  private readonly faultFlag: Uint8Array
  readonly completed: Uint8Array
  private readonly hostActive: Uint16Array
  private readonly hostActivePeer: Int32Array
  private readonly hostLastEnd: Float64Array
  private readonly hostLastPeer: Int32Array
  private readonly hostLastEpoch: Int32Array
  /** Hosts crawled during a partition by a peer that does not own them on the whole ring: their ownership diverged. */
  private readonly diverged: Uint8Array
  /** The whole ring while a partition lasts (the members when it began). */
  private wholeView?: View
  /** Hosts all of whose holders were down at once, killed or restarting (r copies were not enough). */
  private readonly hostLost: Uint8Array
  private readonly watchHost: Int32Array
  /** Requests open on a host beyond the first (only ever after a violation). */
  private readonly moreActive = new Map<number, number[]>()

  // Network state.
  private readonly chanLast: Float64Array
  private readonly ackLast: Float64Array
  private readonly chanInflight: Uint16Array
  private readonly chanQueue = new Map<number, Msg[]>()
  private readonly wheel = new Map<number, { bufs: OutBuf[], gens: number[] }>()
  readonly pairBytes: Float64Array
  readonly pairMsgs: Float64Array
  private partition = false
  private everPartitioned = false

  // Counters.
  readonly c = {
    requests: 0,
    retries: 0,
    pagesFetched: 0,
    pagesFetchedAll: 0,
    duplicateFetches: 0,
    inFlightAtFault: 0,
    duplicatesPartition: 0,
    duplicatesAfterLoss: 0,
    politenessSameOwner: 0,
    politenessConcurrentOwners: 0,
    politenessOwnerChange: 0,
    politenessPartition: 0,
    politenessAtFault: 0,
    linksGenerated: 0,
    linksLocal: 0,
    linksRemote: 0,
    linksResent: 0,
    linksForwarded: 0,
    linkMessages: 0,
    linkBytes: 0,
    linkAcks: 0,
    linkAckBytes: 0,
    metaMessages: 0,
    metaBytes: 0,
    metaOps: 0,
    blockMessages: 0,
    blockBytes: 0,
    replicationAcks: 0,
    replicationAckBytes: 0,
    lostMessages: 0,
    failedMessages: 0,
    admitted: 0,
    discarded: 0,
    entriesHanded: 0,
    recordsSent: 0,
    handedMarkers: 0,
    rebalancePasses: 0,
    repairs: 0,
    promoted: 0,
    events: 0
  }

  readonly faults: ArmedFault[] = []
  private shareTriggers: Array<{ at: number, fire: () => void }> = []
  readonly samples: Sample[] = []
  /** Requests per TIMELINE_BUCKET of virtual time. */
  readonly timeline: number[] = []
  private pendingTicks = 0
  private lastWork = 0
  timedOut = false
  /** Peers frozen now (events of a frozen peer wait until it resumes). */
  private paused = 0
  private readonly scratch: Int32Array
  private readonly fixHold: boolean
  private readonly fixRecords: boolean
  private readonly fixFlapping: boolean
  private readonly fixReroute: boolean
  private readonly reps: number[] = []
  private downSince = new Map<number, number>()

  constructor (o: ResolvedOptions) {
    this.o = o
    this.rng = new Prng(mix(o.seed, 0x51ad))
    this.web = new ModelWeb(o)
    const joiners = o.faults.filter(f => f.kind === 'join').reduce((n, f) => n + (f.count ?? 1), 0)
    this.initial = o.peers
    this.nextJoiner = o.peers
    this.U = o.peers + joiners
    const tag = o.seed.toString(36)
    const ids = Array.from({ length: this.U }, (_, i) => `p${i}.${tag}`)
    this.u = new Universe(ids, o.hosts, h => this.hostKey(h), o.vnodes, o.replicas)
    this.peers = ids.map((id, i) => new ModelPeer(i, id))
    const P = o.pages
    const H = o.hosts
    this.reqCount = new Uint8Array(P)
    this.finalReq = new Uint8Array(P)
    this.faultFlag = new Uint8Array(P)
    this.completed = new Uint8Array(P)
    this.hostActive = new Uint16Array(H)
    this.hostActivePeer = new Int32Array(H).fill(-1)
    this.hostLastEnd = new Float64Array(H).fill(-Infinity)
    this.hostLastPeer = new Int32Array(H).fill(-1)
    this.hostLastEpoch = new Int32Array(H)
    this.diverged = new Uint8Array(H)
    this.hostLost = new Uint8Array(H)
    this.watchHost = new Int32Array(H).fill(-1)
    const pairs = this.U * this.U
    this.chanLast = new Float64Array(pairs * 2)
    this.ackLast = new Float64Array(pairs * 2)
    this.chanInflight = new Uint16Array(pairs * 2)
    this.pairBytes = new Float64Array(pairs)
    this.pairMsgs = new Float64Array(pairs)
    this.scratch = new Int32Array(this.web.maxLinks)
    this.fixHold = o.fixes.has('handoff-hold')
    this.fixRecords = o.fixes.has('replicate-handed-records')
    this.fixFlapping = o.fixes.has('rebalance-flapping')
    this.fixReroute = o.fixes.has('reroute-on-leave')
  }

  hostKey (h: number): string {
    return `h${h}.sim.example:80`
  }

  private hostKeyLength (h: number): number {
    return this.web.originLength(h) - 'http://'.length + 3
  }

  // ---------------------------------------------------------------- the run

  run (): void {
    const o = this.o
    const all = new Uint8Array(this.U)
    for (let i = 0; i < this.initial; i++) all[i] = 1
    const v = this.u.view(all)
    for (let i = 0; i < this.initial; i++) {
      const p = this.peers[i]
      p.alive = true
      p.epoch = 1
      p.view = v
      p.settled = true
      this.startTicks(p)
    }
    o.faults.forEach((f, index) => { this.arm(f, index) })
    // `shoal seed` through one peer: its router sends each seed to its owner.
    const p0 = this.peers[0]
    const g = new Gate()
    this.routeMany(p0, this.web.seeds, g, 0, -1)
    g.dec()

    const q = this.q
    const maxT = o.maxVirtualMs
    for (;;) {
      const e = q.pop()
      if (e === undefined) break
      if (e.t > maxT) { this.timedOut = true; this.now = maxT; break }
      this.now = e.t
      this.c.events++
      if (e.k === EV_REPAIR) {
        this.pendingTicks--
        // Nothing left but the repair timers, and a whole repair round found nothing to do: the end.
        if (q.size === this.pendingTicks && this.now - this.lastWork > REPAIR_INTERVAL + 1) break
      } else {
        this.lastWork = this.now
      }
      this.dispatch(e.k, e.a, e.b, e)
      q.release(e)
    }
    this.closeFaults()
  }

  private dispatch (k: number, a: any, b: number, e: any): void {
    // A paused (SIGSTOPped) peer runs nothing until it resumes: its events wait, in order.
    const target = this.paused > 0 ? this.targetOf(k, a, b) : undefined
    if (target !== undefined && target.pausedUntil > this.now && k !== EV_RESUME) {
      if (k === EV_DELIVER) {
        const m = a as Msg
        if (!m.timeoutArmed && target.pausedUntil > m.sentAt + this.o.ackTimeout && m.kind !== BLOCK) {
          m.timeoutArmed = true
          this.q.push(Math.max(this.now, m.sentAt + this.o.ackTimeout), EV_FAIL, m, 0)
        }
      }
      if (k === EV_REPAIR) this.pendingTicks++
      this.q.repush(e, target.pausedUntil)
      return
    }
    switch (k) {
      case EV_FETCH_DONE: this.fetchDone(a as Lease); break
      case EV_PUMP: {
        const p = a as ModelPeer
        if (p.epoch !== b || !p.alive) break
        if (p.pumpAt <= this.now) p.pumpAt = Infinity
        this.pump(p)
        break
      }
      case EV_WHEEL: this.wheelTick(a as number); break
      case EV_BLOCK_DONE: this.blockDone(a as Msg); break
      case EV_DELIVER: this.deliver(a as Msg); break
      case EV_ACK: this.acked(a as Msg); break
      case EV_FAIL: this.failed(a as Msg); break
      case EV_RETRY: {
        const m = a as Msg
        const p = this.peers[m.from]
        if (!p.alive || p.epoch !== m.fromEpoch) break
        this.c.linksResent += m.pages.length
        const join = new Gate(() => { for (const w of m.waiters) w.dec() })
        this.routeMany(p, m.pages, join, m.attempt + 1, -1)
        join.dec()
        break
      }
      case EV_VIEW: this.viewChange(this.peers[b], a.epoch as number, a.op as ViewOp); break
      case EV_FAULT: (a as () => void)(); break
      case EV_FAULT_END: this.endFault(a as ArmedFault); break
      case EV_UP: this.up(this.peers[b], a as number); break
      case EV_SETTLE: {
        const p = this.peers[b]
        if (!p.alive || p.epoch !== a.epoch) break
        this.settle(p, a.from as View, true)
        break
      }
      case EV_RESUME: this.resume(this.peers[b], a as number); break
      case EV_HOLD_END: {
        const p = this.peers[b]
        if (!p.alive || p.epoch !== a) break
        p.holdTimer = false
        this.refreshOwnership(p)
        break
      }
      case EV_REPAIR: this.repairTick(this.peers[b], a as number); break
      case EV_STEP: this.step(a as Task); break
      case EV_BULK: {
        const { gate, to, toEpoch, n } = a as { gate: Gate, to: number, toEpoch: number, n: number, from: ModelPeer }
        const dest = this.peers[to]
        if (!dest.alive || dest.epoch !== toEpoch || this.cut(b, to)) a.from.underReplicated += n
        gate.dec()
        break
      }
    }
  }

  private targetOf (k: number, a: any, b: number): ModelPeer | undefined {
    switch (k) {
      case EV_FETCH_DONE: return (a as Lease).peer
      case EV_PUMP: return a as ModelPeer
      case EV_BLOCK_DONE: return this.peers[(a as Msg).from]
      case EV_DELIVER: return this.peers[(a as Msg).to]
      case EV_ACK: case EV_FAIL: case EV_RETRY: return this.peers[(a as Msg).from]
      case EV_VIEW: case EV_SETTLE: case EV_HOLD_END: case EV_REPAIR: case EV_RESUME: return this.peers[b]
      case EV_STEP: return (a as Task).peer
      case EV_BULK: return a.from as ModelPeer
      default: return undefined
    }
  }

  private startTicks (p: ModelPeer): void {
    this.pendingTicks++
    this.q.push(this.now + this.rng.float() * REPAIR_INTERVAL, EV_REPAIR, p.epoch, p.idx)
  }

  // ---------------------------------------------------------------- the network

  latency (): number {
    const [lo, hi] = this.o.latency
    return lo + (hi - lo) * this.rng.float()
  }

  /** Peers on two sides of a partition. */
  cut (a: number, b: number): boolean {
    return this.partition && this.peers[a].side !== this.peers[b].side
  }

  private send (m: Msg): void {
    if (m.kind !== BLOCK) {
      const c = (m.from * this.U + m.to) * 2 + m.kind
      if (this.chanInflight[c] >= this.o.window) {
        let list = this.chanQueue.get(c)
        if (list === undefined) this.chanQueue.set(c, list = [])
        list.push(m)
        return
      }
    }
    this.transmit(m)
  }

  private transmit (m: Msg): void {
    const c = (m.from * this.U + m.to) * 2 + m.kind
    if (m.kind !== BLOCK) this.chanInflight[c]++
    if (this.fixReroute && m.kind === LINKS) this.peers[m.from].sentLinks.add(m)
    m.sentAt = this.now
    let lat = this.latency()
    let copies = 1
    if (this.o.loss > 0 && this.rng.float() < this.o.loss) {
      // Lost: the sender's ack timeout fires and it sends the batch again (bytes counted twice).
      this.c.lostMessages++
      lat += this.o.ackTimeout
      copies = 2
    }
    this.count(m.kind, m.from, m.to, m.bytes * copies, copies)
    if (m.kind === BLOCK) {
      // Nothing happens at the receiver but storing it: one event, when the answer is back.
      this.q.push(this.now + lat + this.latency(), EV_BLOCK_DONE, m, 0)
      return
    }
    let at = this.now + lat
    if (m.kind !== BLOCK) {
      // One stream per peer pair and protocol: in order.
      if (at < this.chanLast[c]) at = this.chanLast[c]
      this.chanLast[c] = at
    }
    this.q.push(at, EV_DELIVER, m, 0)
  }

  private count (kind: number, from: number, to: number, bytes: number, messages: number): void {
    const c = this.c
    if (kind === LINKS) { c.linkMessages += messages; c.linkBytes += bytes } else if (kind === META) { c.metaMessages += messages; c.metaBytes += bytes } else { c.blockMessages += messages; c.blockBytes += bytes }
    const pair = from * this.U + to
    this.pairBytes[pair] += bytes
    this.pairMsgs[pair] += messages
  }

  /** The receiver's ack of a message. */
  reply (m: Msg): void {
    let lat = this.latency()
    const bytes = m.kind === LINKS ? ACK_BYTES : m.kind === META ? ACK_BYTES : BLOCK_ACK_BYTES
    let copies = 1
    if (this.o.loss > 0 && this.rng.float() < this.o.loss) {
      this.c.lostMessages++
      lat += this.o.ackTimeout
      copies = 2
    }
    if (m.kind === LINKS) { this.c.linkAcks += copies; this.c.linkAckBytes += bytes * copies } else { this.c.replicationAcks += copies; this.c.replicationAckBytes += bytes * copies }
    const pair = m.to * this.U + m.from
    this.pairBytes[pair] += bytes * copies
    this.pairMsgs[pair] += copies
    let at = this.now + lat
    if (m.kind !== BLOCK) {
      const c = (m.from * this.U + m.to) * 2 + m.kind
      if (at < this.ackLast[c]) at = this.ackLast[c]
      this.ackLast[c] = at
    }
    this.q.push(at, EV_ACK, m, 0)
  }

  private failAt (m: Msg, t: number): void {
    this.q.push(Math.max(t, this.now), EV_FAIL, m, 0)
  }

  private deliver (m: Msg): void {
    const dest = this.peers[m.to]
    if (!dest.alive || dest.epoch !== m.toEpoch) {
      // The connection is gone: the sender sees the stream reset.
      this.failAt(m, this.now + this.latency())
      return
    }
    if (this.cut(m.from, m.to)) {
      // Nothing crosses a partition, and nothing says so: the sender's ack timeout does.
      if (!m.timeoutArmed) { m.timeoutArmed = true; this.failAt(m, m.sentAt + this.o.ackTimeout) }
      return
    }
    if (m.kind === LINKS) this.receiveLinks(dest, m)
    else if (m.kind === META) this.applyMeta(dest, m)
    else this.reply(m)
  }

  /** A block put's answer is due: stored if the receiver was there all along. */
  private blockDone (m: Msg): void {
    const dest = this.peers[m.to]
    const there = dest.alive && dest.epoch === m.toEpoch && !this.cut(m.from, m.to)
    if (there && !m.timeoutArmed && dest.pausedUntil > this.now) {
      // A frozen receiver answers when it resumes, unless the sender's ack timeout comes first.
      const deadline = m.sentAt + this.o.ackTimeout
      if (dest.pausedUntil >= deadline) {
        m.timeoutArmed = true
        this.q.push(Math.max(this.now, deadline), EV_BLOCK_DONE, m, 0)
      } else {
        this.q.push(dest.pausedUntil + this.latency(), EV_BLOCK_DONE, m, 0)
      }
      return
    }
    if (there && !m.timeoutArmed) {
      this.c.replicationAcks++
      this.c.replicationAckBytes += BLOCK_ACK_BYTES
      const pair = m.to * this.U + m.from
      this.pairBytes[pair] += BLOCK_ACK_BYTES
      this.pairMsgs[pair]++
      this.acked(m)
    } else {
      this.failed(m)
    }
  }

  private freeWindow (m: Msg): void {
    if (m.kind === BLOCK) return
    const c = (m.from * this.U + m.to) * 2 + m.kind
    if (this.chanInflight[c] > 0) this.chanInflight[c]--
    const list = this.chanQueue.get(c)
    if (list !== undefined && list.length > 0) {
      const next = list.shift() as Msg
      if (list.length === 0) this.chanQueue.delete(c)
      this.transmit(next)
    }
  }

  private acked (m: Msg): void {
    if (m.settled) return
    const p = this.peers[m.from]
    if (!p.alive || p.epoch !== m.fromEpoch) return
    m.settled = true
    if (this.fixReroute) p.sentLinks.delete(m)
    this.freeWindow(m)
    if (m.kind === META) this.c.metaOps += m.ops.length
    for (const w of m.waiters) w.dec()
  }

  private failed (m: Msg): void {
    if (m.settled) return
    const p = this.peers[m.from]
    if (!p.alive || p.epoch !== m.fromEpoch) return
    m.settled = true
    if (this.fixReroute) p.sentLinks.delete(m)
    this.c.failedMessages++
    this.freeWindow(m)
    if (m.kind === LINKS) {
      if (m.forwardOf !== undefined) {
        // daemon.receive: a forward that failed is admitted here.
        for (const page of m.pages) this.admit(p, this.web.hostOf[page], page, m.forwardOf)
        for (const w of m.waiters) w.dec()
        return
      }
      // router.deliver: re-grouped by the ring as it is then, after a backoff.
      this.q.push(this.now + Math.min(RETRY_BASE * 2 ** m.attempt, RETRY_MAX), EV_RETRY, m, 0)
      return
    }
    // Replication counts a copy that did not make it, and goes on (node/replication.ts).
    p.underReplicated += m.kind === META ? m.ops.length : 1
    for (const w of m.waiters) w.dec()
  }

  // ---------------------------------------------------------------- routing (router.ts, links transport)

  private outBuf (p: ModelPeer, to: number, kind: number): OutBuf {
    const arr = kind === LINKS ? p.out : p.meta
    let b = arr[to] as OutBuf | undefined
    if (b === undefined || b.epoch !== p.epoch) arr[to] = b = new OutBuf(p, p.epoch, to, kind)
    return b
  }

  private resetBuffers (p: ModelPeer): void {
    p.out = []
    p.meta = []
  }

  /** A link found on page `ref` (−1: a seed or a handed-over entry) for `to`'s frontier. */
  private linkAppend (p: ModelPeer, to: number, page: number, ref: number, w: Waiter, attempt: number): void {
    const b = this.outBuf(p, to, LINKS)
    if (b.items.length === 0) this.armFlush(b, this.now + this.o.flushDelay)
    const host = this.web.hostOf[page]
    if (ref !== b.lastRef || host !== b.lastHost) {
      // A new group: its referrer and its URLs' common prefix travel once.
      b.bytes += LINKS_GROUP + (ref >= 0 ? this.web.urlLength(ref) + 2 : 0) + this.web.originLength(host) + 8
      b.lastRef = ref
      b.lastHost = host
    }
    b.bytes += this.web.suffixLength(page) + 1
    b.items.push(page)
    if (attempt > b.attempt) b.attempt = attempt
    if (b.lastWaiter !== w) { b.waiters.push(w); w.pending++; b.lastWaiter = w }
    if (b.items.length >= this.o.maxBatchLinks) this.flush(b)
  }

  private metaAppend (p: ModelPeer, to: number, op: number, bytes: number, w: Waiter | undefined): void {
    const b = this.outBuf(p, to, META)
    if (b.items.length === 0) this.armFlush(b, this.now + this.o.flushDelay)
    b.items.push(op)
    b.bytes += bytes
    if (w !== undefined && b.lastWaiter !== w) { b.waiters.push(w); w.pending++; b.lastWaiter = w }
    if (b.items.length >= this.o.maxBatchOps) this.flush(b)
  }

  /**
   * Batches that are not full go out `flushDelay` after their first item. Their timers share a wheel
   * of 1 ms slots (a batch leaves in the first slot at or after its time, < 1 ms late): one event per
   * slot rather than one per batch.
   */
  private armFlush (b: OutBuf, at: number): void {
    const slot = Math.ceil(at)
    let list = this.wheel.get(slot)
    if (list === undefined) {
      this.wheel.set(slot, list = { bufs: [], gens: [] })
      this.q.push(slot, EV_WHEEL, slot, 0)
    }
    list.bufs.push(b)
    list.gens.push(b.gen)
  }

  private wheelTick (slot: number): void {
    const list = this.wheel.get(slot)
    if (list === undefined) return
    this.wheel.delete(slot)
    for (let i = 0; i < list.bufs.length; i++) {
      const b = list.bufs[i]
      if (b.gen !== list.gens[i] || !b.peer.alive || b.peer.epoch !== b.epoch) continue
      if (b.peer.pausedUntil > this.now) { this.armFlush(b, b.peer.pausedUntil); continue }
      this.flush(b)
    }
  }

  private flush (b: OutBuf): void {
    if (b.items.length === 0) return
    const p = b.peer
    const dest = this.peers[b.to]
    const m = new Msg(b.kind, p.idx, b.to, p.epoch, dest.epoch, FRAME + (b.kind === LINKS ? LINKS_HEADER : META_HEADER) + b.bytes)
    if (b.kind === LINKS) { m.pages = b.items; m.attempt = b.attempt; this.c.linksRemote += b.items.length } else m.ops = b.items
    m.waiters = b.waiters
    b.items = []
    b.waiters = []
    b.lastWaiter = undefined
    b.bytes = 0
    b.lastRef = -2
    b.lastHost = -1
    b.attempt = 0
    b.gen++
    this.send(m)
  }

  /** router.route / deliver: each link to its owner in `p`'s view; `w` waits for all of them. */
  private routeMany (p: ModelPeer, pages: number[], w: Waiter, attempt: number, ref: number): void {
    const hostOf = this.web.hostOf
    for (const page of pages) {
      const host = hostOf[page]
      const owner = this.u.owner(p.view, host)
      if (owner === p.idx || owner < 0) this.admit(p, host, page, w)
      else this.linkAppend(p, owner, page, ref, w, attempt)
    }
  }

  /** daemon.receive: links for us go into our frontier, the rest are forwarded (up to the hop limit). */
  private receiveLinks (o: ModelPeer, m: Msg): void {
    const w = new InLinks(this, o, o.epoch, m)
    o.incoming.add(w)
    let forwards: Map<number, number[]> | undefined
    const hostOf = this.web.hostOf
    for (const page of m.pages) {
      const host = hostOf[page]
      const owner = this.u.owner(o.view, host)
      if (owner === o.idx || owner < 0 || m.hops >= MAX_FORWARD_HOPS) {
        this.admit(o, host, page, w)
      } else {
        forwards ??= new Map()
        let list = forwards.get(owner)
        if (list === undefined) forwards.set(owner, list = [])
        list.push(page)
      }
    }
    if (forwards !== undefined) {
      for (const [owner, pages] of forwards) {
        let bytes = LINKS_HEADER
        let lastHost = -1
        for (const page of pages) {
          const h = hostOf[page]
          if (h !== lastHost) { bytes += LINKS_GROUP + this.web.originLength(h) + 8; lastHost = h }
          bytes += this.web.suffixLength(page) + 1
        }
        const f = new Msg(LINKS, o.idx, owner, o.epoch, this.peers[owner].epoch, FRAME + bytes)
        f.pages = pages
        f.hops = m.hops + 1
        f.forwardOf = w
        f.waiters = [w]
        w.pending++
        this.c.linksForwarded += pages.length
        this.send(f)
      }
    }
    w.dec()
  }

  // ---------------------------------------------------------------- the frontier (frontier.ts)

  private copyOf (p: ModelPeer, host: number): Copy {
    let c = p.copies.get(host)
    if (c === undefined) {
      c = new Copy(host, this.web.hostStart[host], this.web.size(host))
      p.copies.set(host, c)
    }
    return c
  }

  private intoFrontier (p: ModelPeer, c: Copy): void {
    if (c.inFrontier) return
    c.inFrontier = true
    p.frontier.push(c)
  }

  /** frontier.add of one link: admitted unless its URL is seen. */
  private admit (p: ModelPeer, host: number, page: number, w: Waiter | undefined): void {
    const c = this.copyOf(p, host)
    const j = page - c.base
    if ((c.f[j] & SEEN_MASK) !== 0) return
    c.f[j] = (c.f[j] & ~SEEN_MASK) | SEEN_QUEUED
    this.intoFrontier(p, c)
    c.push(j)
    this.c.admitted++
    this.schedule(p, c)
    this.replicateEntry(p, host, page, w)
  }

  /** frontier.adopt: take over entries (skipping only what is done here), replicated like new ones. */
  private adopt (p: ModelPeer, c: Copy, js: number[], w: Waiter | undefined): number {
    let n = 0
    for (const j of js) {
      if ((c.f[j] & SEEN_MASK) === SEEN_DONE) continue
      c.f[j] = (c.f[j] & ~SEEN_MASK) | SEEN_QUEUED
      this.intoFrontier(p, c)
      c.push(j)
      n++
      this.replicateEntry(p, c.host, c.base + j, w)
    }
    this.schedule(p, c)
    return n
  }

  private replicasBesides (v: View, host: number, self: number): number[] {
    const out = this.reps
    const n = this.u.replicas(v, host, this.o.replicas, out)
    const list: number[] = []
    for (let i = 0; i < n; i++) if (out[i] !== self) list.push(out[i])
    return list
  }

  private replicateEntry (p: ModelPeer, host: number, page: number, w: Waiter | undefined): void {
    if (this.o.replicas <= 1) return
    const out = this.reps
    const n = this.u.replicas(p.view, host, this.o.replicas, out)
    if (n <= 1 && out[0] === p.idx) return
    const url = this.web.urlLength(page)
    const bytes = 30 + this.hostKeyLength(host) * 2 + 20 + url * 2
    for (let i = 0; i < n; i++) {
      const r = out[i]
      if (r !== p.idx) this.metaAppend(p, r, page * 4 + OP_ENTRY, bytes, w)
    }
  }

  /** daemon.owns: the owner on the ring, settled, and for a host that moved here from a live peer, handed over (or timed out). */
  private owns (p: ModelPeer, host: number): boolean {
    if (!p.settled) return false
    if (this.u.owner(p.view, host) !== p.idx) return false
    if (this.fixHold) {
      const since = p.holds.get(host)
      if (since !== undefined) {
        const handedAt = p.handed.get(host)
        if ((handedAt !== undefined && handedAt >= since - HANDOFF_TIMEOUT) || this.now - since >= HANDOFF_TIMEOUT) {
          p.holds.delete(host)
        } else {
          this.armHold(p, since)
          return false
        }
      }
    }
    if (p.prevView === undefined) return true
    const before = this.u.owner(p.prevView, host)
    if (before < 0 || before === p.idx || !p.view.has(before)) return true
    const handedAt = p.handed.get(host)
    if (handedAt !== undefined && handedAt >= p.ringChangedAt - HANDOFF_TIMEOUT) return true
    if (this.now - p.ringChangedAt >= HANDOFF_TIMEOUT) return true
    this.armHold(p, p.ringChangedAt)
    return false
  }

  /** daemon.scheduleHoldEnd: look at the frontier again when a hold of `since` is over. */
  private armHold (p: ModelPeer, since: number): void {
    if (p.holdTimer) return
    p.holdTimer = true
    this.q.push(Math.max(this.now, since + HANDOFF_TIMEOUT) + 10, EV_HOLD_END, p.epoch, p.idx)
  }

  /** `handoff-hold`: the hosts of `p` that `from` → `to` moves here from a peer still alive wait for it. */
  private hold (p: ModelPeer, from: View, to: View): void {
    if (!this.fixHold) return
    for (const c of p.copies.values()) {
      const h = c.host
      if (this.u.owner(to, h) !== p.idx) { p.holds.delete(h); continue }
      const before = this.u.owner(from, h)
      if (before >= 0 && before !== p.idx && to.has(before) && !p.holds.has(h)) p.holds.set(h, this.now)
    }
  }

  private schedule (p: ModelPeer, c: Copy): void {
    if (c.inHeap || !c.inFrontier || c.inflight >= 1 || c.qlen === 0) return
    if (!this.owns(p, c.host)) return
    c.inHeap = true
    p.heap.push(c)
    if (p.fetching < this.o.concurrency) {
      if (c.nextAt <= this.now) this.armPump(p, this.now)
      else this.armPump(p, c.nextAt)
    }
  }

  private armPump (p: ModelPeer, at: number): void {
    if (p.pumpAt <= at) return
    p.pumpAt = at
    this.q.push(at, EV_PUMP, p, p.epoch)
  }

  refreshOwnership (p: ModelPeer): void {
    for (const c of p.frontier) this.schedule(p, c)
  }

  private pump (p: ModelPeer): void {
    if (!p.alive) return
    const C = this.o.concurrency
    while (p.fetching < C) {
      const c = p.heap.peek()
      if (c === undefined) return
      if (c.nextAt > this.now) { this.armPump(p, c.nextAt); return }
      p.heap.pop()
      c.inHeap = false
      if (c.inflight >= 1 || c.handing) continue
      if (!this.owns(p, c.host)) continue
      let j = -1
      while (c.qlen > 0) {
        const x = c.shift()
        // Done already (its record came from a replica or a previous owner): dropped, not fetched.
        if ((c.f[x] & SEEN_MASK) === SEEN_DONE) { this.c.discarded++; continue }
        j = x
        break
      }
      if (j < 0) continue
      this.startFetch(p, c, j)
    }
  }

  private startFetch (p: ModelPeer, c: Copy, j: number): void {
    const lease = new Lease(this, p, p.epoch, c, j)
    p.leases.add(lease)
    c.leased++
    c.inflight++
    c.nextAt = this.now + this.o.delay
    p.fetching++
    this.request(p, lease)
    const [lo, hi] = this.o.fetchTime
    this.q.push(this.now + lo + (hi - lo) * this.rng.float(), EV_FETCH_DONE, lease, 0)
  }

  /** The web's side of a request: politeness, duplicates, coverage, failover clocks. */
  private request (p: ModelPeer, lease: Lease): void {
    const page = lease.page
    const h = lease.copy.host
    const now = this.now
    this.c.requests++
    p.requests++
    // Crawling a host whose owner (on the ring of before the partition) is alive but out of this
    // peer's view: ownership diverged (until the views merge again after the heal).
    if (this.wholeView !== undefined && this.diverged[h] === 0) {
      const owner = this.u.owner(this.wholeView, h)
      if (owner !== p.idx && this.peers[owner].alive && !p.view.has(owner)) this.diverged[h] = 1
    }
    const bucket = Math.floor(now / TIMELINE_BUCKET)
    this.timeline[bucket] = (this.timeline[bucket] ?? 0) + 1
    const diverged = this.diverged[h] === 1
    // Politeness: one connection per host, `delay` from the end of one request to the start of the next.
    if (this.hostActive[h] > 0) {
      const others = this.activeOn(h)
      if (diverged) this.c.politenessPartition++
      else if (others.includes(p.idx)) { this.c.politenessSameOwner++; this.sample(page, p, 'one peer requesting a host twice at once') } else if (others.every(x => this.peers[x].pausedUntil > now)) this.c.politenessAtFault++
      else { this.c.politenessConcurrentOwners++; this.sample(page, p, 'two peers requesting one host at once') }
    } else if (now < this.hostLastEnd[h] + this.o.delay - 1e-6) {
      const samePeer = this.hostLastPeer[h] === p.idx && this.hostLastEpoch[h] === p.epoch
      if (diverged) this.c.politenessPartition++
      else if (samePeer) { this.c.politenessSameOwner++; this.sample(page, p, `requested ${(now - this.hostLastEnd[h]).toFixed(1)} ms after its last request ended`) } else this.c.politenessOwnerChange++
    }
    if (this.hostActive[h]++ === 0) this.hostActivePeer[h] = p.idx
    else this.moreActive.set(h, [...(this.moreActive.get(h) ?? []), p.idx])
    // Failover clock: the first request to a watched host after its owner went down.
    const w = this.watchHost[h]
    if (w >= 0) {
      const f = this.faults[w]
      f.took.set(h, now - (f.watch.get(h) as number))
      this.watchHost[h] = -1
    }
    const first = this.reqCount[page] === 0
    if (this.reqCount[page] < 255) this.reqCount[page]++
    if (first && this.web.transient(page)) {
      // The web answers the first request of this page with a 503: retried by the frontier.
      lease.transientFail = true
      this.c.retries++
      return
    }
    const n = this.finalReq[page]
    if (n < 255) this.finalReq[page] = n + 1
    if (n === 0) {
      this.c.pagesFetchedAll++
      if (this.web.isExpected(page)) {
        this.c.pagesFetched++
        this.checkShares()
      }
      return
    }
    if (this.faultFlag[page] === 1) {
      this.faultFlag[page] = 0
      this.c.inFlightAtFault++
    } else if (diverged) {
      this.c.duplicatesPartition++
    } else if (this.hostLost[h] === 1) {
      this.c.duplicatesAfterLoss++
    } else {
      this.c.duplicateFetches++
      this.sample(page, p, 'fetched again')
    }
  }

  /** A request of `p` to host h is over (answered, or its process died): the host's delay runs from now. */
  private requestEnded (p: ModelPeer, h: number): void {
    if (this.hostActive[h] > 0) this.hostActive[h]--
    const more = this.moreActive.get(h)
    if (more === undefined) {
      this.hostActivePeer[h] = -1
    } else {
      // Several requests were open on the host (a violation was counted): forget this one's.
      const all = [this.hostActivePeer[h], ...more]
      all.splice(all.indexOf(p.idx), 1)
      this.hostActivePeer[h] = all[0] ?? -1
      if (all.length > 1) this.moreActive.set(h, all.slice(1))
      else this.moreActive.delete(h)
    }
    this.hostLastEnd[h] = this.now
    this.hostLastPeer[h] = p.idx
    this.hostLastEpoch[h] = p.epoch
  }

  /** Peers with a request open on host h. */
  private activeOn (h: number): number[] {
    const first = this.hostActivePeer[h]
    return [...(first >= 0 ? [first] : []), ...(this.moreActive.get(h) ?? [])]
  }

  private sample (page: number, p: ModelPeer, note: string): void {
    if (this.samples.length >= 20) return
    const h = this.web.hostOf[page]
    const last = this.hostLastPeer[h]
    this.samples.push({ page, host: h, peer: p.id, at: round(this.now / 1000, 3), note: `${note} (host last requested by ${last >= 0 ? this.peers[last].id : 'nobody'})` })
  }

  private fetchDone (lease: Lease): void {
    const p = lease.peer
    if (!p.alive || p.epoch !== lease.epoch) return
    const c = lease.copy
    this.requestEnded(p, c.host)
    c.inflight--
    // frontier.fetched: the host's slot is free, its delay runs from now.
    c.nextAt = Math.max(c.nextAt, this.now + this.o.delay)
    if (lease.transientFail) {
      // frontier.retry: back to the head of the host's queue.
      lease.phase = CLOSED
      p.leases.delete(lease)
      c.leased--
      p.fetching--
      c.unshift(lease.j)
      this.schedule(p, c)
      this.pump(p)
      return
    }
    this.schedule(p, c)
    // Into the pages mailbox; a full mailbox keeps the fetch loop waiting.
    const C = this.o.concurrency
    if (p.processing < C) {
      p.processing++
      p.fetching--
      this.process(lease)
    } else if (p.mailbox.length < Math.max(8, C)) {
      lease.phase = QUEUED_FOR_PROCESSING
      p.mailbox.push(lease)
      p.fetching--
    } else {
      lease.phase = QUEUED_FOR_PROCESSING
      p.blocked.push(lease)
    }
    this.pump(p)
  }

  /** A processor loop: parse, route every link, then complete. */
  private process (lease: Lease): void {
    const p = lease.peer
    lease.phase = ROUTING
    const out = this.scratch
    const k = this.web.linksOf(lease.page, out)
    const hostOf = this.web.hostOf
    this.c.linksGenerated += k
    for (let i = 0; i < k; i++) {
      const t = out[i]
      const host = hostOf[t]
      const owner = this.u.owner(p.view, host)
      if (owner === p.idx || owner < 0) {
        this.c.linksLocal++
        this.admit(p, host, t, lease)
      } else {
        this.linkAppend(p, owner, t, lease.page, lease, 0)
      }
    }
    lease.dec()
  }

  /** A lease's waits are over: move it to its next phase. */
  leaseStep (lease: Lease): void {
    const p = lease.peer
    if (!p.alive || p.epoch !== lease.epoch) return
    const c = lease.copy
    const page = lease.page
    if (lease.phase === ROUTING) {
      // frontier.complete: record, seen mark, entry removed, all at once; then to the replicas.
      c.f[lease.j] = (c.f[lease.j] & ~SEEN_MASK) | SEEN_DONE | REC
      this.completed[page] = 1
      lease.phase = BLOCKS
      lease.pending = 1
      if (this.o.replicas > 1) {
        lease.reps = this.replicasBesides(p.view, c.host, p.idx)
        if (!this.web.broken(page)) {
          const bytes = BLOCK_HEADER + this.web.body(page)
          for (const r of lease.reps) {
            const m = new Msg(BLOCK, p.idx, r, p.epoch, this.peers[r].epoch, bytes)
            m.waiters = [lease]
            lease.pending++
            this.send(m)
          }
        }
      }
      lease.dec()
      return
    }
    if (lease.phase === BLOCKS) {
      lease.phase = DONE_OPS
      lease.pending = 1
      if (lease.reps !== undefined) {
        const url = this.web.urlLength(page)
        const bytes = 40 + this.hostKeyLength(c.host) * 2 + 20 + RECORD_BYTES + url * 2
        for (const r of lease.reps) this.metaAppend(p, r, page * 4 + OP_DONE, bytes, lease)
      }
      lease.dec()
      return
    }
    if (lease.phase === DONE_OPS) {
      lease.phase = CLOSED
      p.leases.delete(lease)
      c.leased--
      p.processing--
      if (p.mailbox.length > 0) {
        const next = p.mailbox.shift() as Lease
        p.processing++
        this.process(next)
      }
      if (p.blocked.length > 0) {
        p.mailbox.push(p.blocked.shift())
        p.fetching--
        this.pump(p)
      }
    }
  }

  // ---------------------------------------------------------------- replicas (replicas.ts)

  private applyMeta (r: ModelPeer, m: Msg): void {
    const w = new InMeta(this, r, r.epoch, m)
    const hostOf = this.web.hostOf
    const handed: number[] = []
    for (const code of m.ops) {
      const op = code & 3
      const id = (code - op) / 4
      if (op === OP_HANDED) { handed.push(id); continue }
      const host = hostOf[id]
      const c = this.copyOf(r, host)
      const j = id - c.base
      const f = c.f[j]
      if (op === OP_ENTRY) {
        if (r.settled && this.u.owner(r.view, host) === r.idx) {
          this.adopt(r, c, [j], w)
        } else {
          if ((f & REP) === 0) c.rep++
          // The entry's seen mark is 0, whatever was there (replicas.ts writes seen.mark(url, 0)).
          c.f[j] = (f & ~SEEN_MASK) | REP | SEEN_QUEUED
        }
      } else if (op === OP_DONE) {
        if ((f & REP) !== 0) c.rep--
        c.f[j] = (f & ~(SEEN_MASK | REP)) | SEEN_DONE | REC
      } else {
        c.f[j] = (f & ~SEEN_MASK) | SEEN_DONE | REC
        // `replicate-handed-records`: an owner passes a record it is handed on to its replicas.
        if (this.fixRecords && r.settled && this.u.owner(r.view, host) === r.idx) {
          const bytes = 20 + RECORD_BYTES + this.web.urlLength(id) * 2
          for (const x of this.replicasBesides(r.view, host, r.idx)) this.metaAppend(r, x, code, bytes, w)
        }
      }
    }
    for (const host of handed) {
      r.handed.set(host, this.now)
      const c = r.copies.get(host)
      if (c !== undefined) this.schedule(r, c)
    }
    w.dec()
  }

  // ---------------------------------------------------------------- ring changes (daemon.ts)

  private runTask (p: ModelPeer, gen: Generator<Gate, void, void>, onDone?: () => void): void {
    this.step({ peer: p, epoch: p.epoch, gen, onDone })
  }

  private step (t: Task): void {
    if (!t.peer.alive || t.peer.epoch !== t.epoch) return
    const r = t.gen.next()
    if (r.done === true) { t.onDone?.(); return }
    const gate = r.value
    gate.cb = () => { this.q.push(this.now, EV_STEP, t, 0) }
    gate.dec()
  }

  private rebalance (p: ModelPeer, previous: View): void {
    p.rebalanceFrom ??= previous
    if (p.rebalancing) return
    p.rebalancing = true
    this.runTask(p, this.rebalanceLoop(p), () => { p.rebalancing = false })
  }

  private * rebalanceLoop (p: ModelPeer): Generator<Gate, void, void> {
    while (p.rebalanceFrom !== undefined) {
      const old = p.rebalanceFrom
      p.rebalanceFrom = undefined
      yield * this.rebalancePass(p, old)
    }
  }

  private * rebalancePass (p: ModelPeer, old: View): Generator<Gate, void, void> {
    this.c.rebalancePasses++
    const now = p.view
    const self = p.idx
    const flapped = p.flapped
    p.flapped = new Set()
    // 1. Promote: hosts held as copies that this peer owns now.
    for (const c of [...p.copies.values()]) {
      if (c.rep === 0 || this.u.owner(now, c.host) !== self) continue
      const js: number[] = []
      for (let j = 0; j < c.f.length; j++) {
        if ((c.f[j] & REP) !== 0) { js.push(j); c.f[j] &= ~REP }
      }
      c.rep = 0
      const g = new Gate()
      this.c.promoted += this.adopt(p, c, js, g)
      yield g
    }
    // 2 and 3. Every host of the frontier: copy to gained replicas, or hand over.
    for (const c of [...p.frontier]) {
      const h = c.host
      const ownerNow = this.u.owner(now, h)
      const ownerBefore = this.u.owner(old, h)
      if (ownerNow === self) {
        const before = ownerBefore === self ? this.replicasBesides(old, h, self) : []
        const gained = this.replicasBesides(p.view, h, self).filter(x => !before.includes(x) || flapped.has(x))
        for (const peer of gained) yield * this.sendHostState(p, peer, c, true)
      } else if (ownerBefore === self || c.qlen + c.leased > 0) {
        if (ownerBefore === self) yield * this.sendHostState(p, ownerNow, c, false)
        c.handing = true
        const entries = c.entries()
        if (entries.length > 0 && this.u.owner(p.view, h) !== self) {
          const g = new Gate()
          this.routeMany(p, entries.map(j => c.base + j), g, 0, -1)
          yield g
          if (this.u.owner(p.view, h) === self) {
            // The ring gave the host back meanwhile: the links came home and were already queued.
            this.keep(p, c)
            continue
          }
          c.remove(entries)
          c.handing = false
          this.c.entriesHanded += entries.length
        } else {
          this.keep(p, c)
        }
        const g = new Gate()
        this.c.handedMarkers++
        this.metaAppend(p, ownerNow, h * 4 + OP_HANDED, 20 + this.hostKeyLength(h), g)
        yield g
      }
    }
  }

  private keep (p: ModelPeer, c: Copy): void {
    c.handing = false
    this.schedule(p, c)
  }

  /** daemon.sendHostState: the host's records (bodies first, one put at a time), and for a replica its queued URLs. */
  private * sendHostState (p: ModelPeer, to: number, c: Copy, withEntries: boolean): Generator<Gate, void, void> {
    const recs: number[] = []
    let bodies = 0
    let bodyBytes = 0
    for (let j = 0; j < c.f.length; j++) {
      if ((c.f[j] & REC) === 0) continue
      recs.push(j)
      const page = c.base + j
      if (!this.web.broken(page)) { bodies++; bodyBytes += BLOCK_HEADER + this.web.body(page) }
    }
    if (bodies > 0) {
      // Each body is put and awaited before the next: one round trip each.
      let d = 0
      for (let i = 0; i < bodies; i++) d += this.latency() + this.latency()
      this.count(BLOCK, p.idx, to, bodyBytes, bodies)
      this.c.replicationAcks += bodies
      this.c.replicationAckBytes += bodies * BLOCK_ACK_BYTES
      const g = new Gate()
      g.pending++
      this.q.push(this.now + d, EV_BULK, { gate: g, to, toEpoch: this.peers[to].epoch, n: bodies, from: p }, p.idx)
      yield g
    }
    const g = new Gate()
    const hk = this.hostKeyLength(c.host)
    for (const j of recs) {
      this.metaAppend(p, to, (c.base + j) * 4 + OP_RECORD, 20 + RECORD_BYTES + this.web.urlLength(c.base + j) * 2, g)
      this.c.recordsSent++
    }
    if (withEntries) {
      const all = c.entries()
      // frontier.allHostEntries reads the entries on disk: a page completed has none any more.
      for (const l of p.leases as Set<Lease>) if (l.copy === c && l.phase <= ROUTING) all.push(l.j)
      for (const j of all) this.metaAppend(p, to, (c.base + j) * 4 + OP_ENTRY, 30 + hk * 2 + 20 + this.web.urlLength(c.base + j) * 2, g)
    }
    yield g
  }

  private repairTick (p: ModelPeer, epoch: number): void {
    if (!p.alive || p.epoch !== epoch) return
    this.pendingTicks++
    this.q.push(this.now + REPAIR_INTERVAL, EV_REPAIR, epoch, p.idx)
    if (!p.settled) return
    // Queued URLs of hosts this peer does not own: hand them over.
    if (p.frontier.some(c => c.qlen + c.leased > 0 && this.u.owner(p.view, c.host) !== p.idx)) this.rebalance(p, p.view)
    if (p.repairing || p.underReplicated === 0) return
    p.repairing = true
    p.underReplicated = 0
    this.c.repairs++
    this.runTask(p, this.repairTask(p), () => { p.repairing = false })
  }

  private * repairTask (p: ModelPeer): Generator<Gate, void, void> {
    for (const c of [...p.frontier]) {
      if (this.u.owner(p.view, c.host) !== p.idx) continue
      for (const peer of this.replicasBesides(p.view, c.host, p.idx)) yield * this.sendHostState(p, peer, c, true)
    }
  }

  // ---------------------------------------------------------------- membership (membership.ts)

  private viewChange (p: ModelPeer, epoch: number, op: ViewOp): void {
    if (!p.alive || p.epoch !== epoch) return
    const old = p.view
    const next = this.applyOp(p, old, op)
    if (next === old || next.sameAs(old)) return
    p.view = next
    if (!p.settled) return
    p.prevView = old
    p.ringChangedAt = this.now
    if (this.fixFlapping && p.rebalancing) for (const x of old.members()) if (!next.has(x)) p.flapped.add(x)
    if (this.fixReroute) this.rerouteLeft(p, next)
    this.hold(p, old, next)
    this.refreshOwnership(p)
    this.rebalance(p, old)
  }

  /** `reroute-on-leave`: batches sent or queued to peers out of the new view fail now (and are re-routed). */
  private rerouteLeft (p: ModelPeer, v: View): void {
    for (const m of [...p.sentLinks as Set<Msg>]) if (!v.has(m.to)) this.failAt(m, this.now)
    for (let to = 0; to < this.U; to++) {
      if (v.has(to)) continue
      const c = (p.idx * this.U + to) * 2 + LINKS
      const list = this.chanQueue.get(c)
      if (list === undefined) continue
      this.chanQueue.delete(c)
      for (const m of list) { m.sentAt = this.now; this.failAt(m, this.now) }
    }
  }

  private applyOp (p: ModelPeer, v: View, op: ViewOp): View {
    if (op.sync === true) {
      const m = new Uint8Array(this.U)
      for (const q of this.peers) if (q.alive && !this.cut(p.idx, q.idx)) m[q.idx] = 1
      m[p.idx] = 1
      return this.u.view(m)
    }
    const delta: number[] = []
    if (op.remove !== undefined) {
      for (const x of op.remove) if (x !== p.idx && v.m[x] === 1) delta.push(x)
      if (delta.length === 0) return v
      const key = '-' + delta.join(',')
      let next = v.next.get(key)
      if (next === undefined) {
        const m = v.m.slice()
        for (const x of delta) m[x] = 0
        v.next.set(key, next = this.u.view(m))
      }
      return next
    }
    const add = op.add ?? []
    add.forEach((x, i) => {
      const q = this.peers[x]
      if (v.m[x] === 0 && q.alive && q.epoch === op.epochs?.[i]) delta.push(x)
    })
    if (delta.length === 0) return v
    const key = '+' + delta.join(',')
    let next = v.next.get(key)
    if (next === undefined) {
      const m = v.m.slice()
      for (const x of delta) m[x] = 1
      v.next.set(key, next = this.u.view(m))
    }
    return next
  }

  private without (v: View, x: number): View {
    const key = '-' + String(x)
    let next = v.next.get(key)
    if (next === undefined) {
      const m = v.m.slice()
      m[x] = 0
      v.next.set(key, next = this.u.view(m))
    }
    return next
  }

  private viewAt (p: ModelPeer, t: number, op: ViewOp): void {
    this.q.push(t, EV_VIEW, { epoch: p.epoch, op }, p.idx)
  }

  /** Every live peer notices that `gone` left: `grace` after `at`, plus its own jitter. */
  private notice (gone: number[], at: number, after: number, jitter: number): void {
    for (const q of this.peers) {
      if (!q.alive || gone.includes(q.idx)) continue
      this.viewAt(q, at + after + jitter * this.rng.float(), { remove: gone })
    }
  }

  /** Every live peer (reachable from them) hears `joined` heartbeats. */
  private hear (joined: number[], at: number): void {
    const epochs = joined.map(x => this.peers[x].epoch)
    for (const q of this.peers) {
      if (!q.alive || joined.includes(q.idx)) continue
      this.viewAt(q, at + 2 * this.latency() + 200 * this.rng.float(), { add: joined, epochs })
    }
  }

  private settle (p: ModelPeer, from: View, rejoining: boolean): void {
    p.settled = true
    if (rejoining) {
      p.prevView = this.without(p.view, p.idx)
      p.ringChangedAt = this.now
      this.hold(p, p.prevView, p.view)
    }
    this.refreshOwnership(p)
    this.rebalance(p, from)
  }

  // ---------------------------------------------------------------- faults

  private arm (f: ModelFault, index: number): void {
    const a: ArmedFault = { index, f, record: { spec: formatFault(f), kind: f.kind, at: -1, peerCount: 0, peers: [], hostsWatched: 0, hostsResumed: 0 }, victims: [], watch: new Map(), took: new Map(), startedAt: 0, fired: false, ended: false }
    this.faults.push(a)
    this.when(f.at, () => { this.strike(a) })
  }

  /** Run `fire` at a virtual time, or once a share of the expected pages is fetched. */
  private when (t: FaultTime, fire: () => void): void {
    if ('ms' in t) {
      this.q.push(Math.max(this.now, t.ms), EV_FAULT, fire, 0)
      return
    }
    const at = Math.max(1, Math.ceil(t.share * this.web.expectedCount))
    if (this.c.pagesFetched >= at) { this.q.push(this.now, EV_FAULT, fire, 0); return }
    this.shareTriggers.push({ at, fire })
    this.shareTriggers.sort((x, y) => x.at - y.at)
  }

  private checkShares (): void {
    const list = this.shareTriggers
    while (list.length > 0 && list[0].at <= this.c.pagesFetched) {
      const t = list.shift() as { at: number, fire: () => void }
      this.q.push(this.now, EV_FAULT, t.fire, 0)
    }
  }

  /** The fault's peers by index (those up), or `n` live peers drawn at random. */
  private victims (f: ModelFault, n: number): number[] {
    if (f.peers !== undefined) return f.peers.filter(x => this.peers[x].alive && this.peers[x].pausedUntil <= this.now && this.peers[x].down === 'no').sort((a, b) => a - b)
    return this.pick(n)
  }

  /** `n` live peers drawn at random (one is always left out unless `all`). */
  private pick (n: number, all = false): number[] {
    const alive = this.peers.filter(p => p.alive && p.pausedUntil <= this.now && p.down === 'no').map(p => p.idx)
    const out: number[] = []
    while (out.length < n && alive.length > (all ? 0 : 1)) {
      const i = this.rng.int(alive.length)
      out.push(alive[i])
      alive.splice(i, 1)
    }
    return out.sort((a, b) => a - b)
  }

  private liveCount (): number {
    let n = 0
    for (const p of this.peers) if (p.alive) n++
    return n
  }

  private strike (a: ArmedFault): void {
    const f = a.f
    a.fired = true
    a.startedAt = this.now
    a.record.at = round(this.now / 1000, 3)
    const amount = (def: number): number => f.count ?? Math.max(1, Math.round((f.share ?? def) * this.liveCount()))
    switch (f.kind) {
      case 'kill':
      case 'mass-kill': {
        const victims = this.victims(f, amount(f.kind === 'kill' ? 0 : 0.2))
        a.victims = victims
        const before = this.truth()
        for (const x of victims) this.crash(this.peers[x], false, a)
        this.markLost(before)
        this.notice(victims, this.now, this.o.disconnectGrace, this.o.disconnectGrace)
        break
      }
      case 'restart': {
        const victims = this.victims(f, amount(0))
        a.victims = victims
        const before = this.truth()
        for (const x of victims) this.crash(this.peers[x], true, a)
        this.markLost(before)
        this.notice(victims, this.now, this.o.disconnectGrace, this.o.disconnectGrace)
        this.until(a, DEFAULT_FAULT_LENGTH.restart)
        break
      }
      case 'pause': {
        const victims = this.victims(f, amount(0))
        a.victims = victims
        const end = this.endTime(a, DEFAULT_FAULT_LENGTH.pause)
        const before = this.truth()
        for (const x of victims) {
          const p = this.peers[x]
          this.watchOwned(p, a)
          for (const l of p.leases as Set<Lease>) this.faultFlag[l.page] = 1
          p.pausedUntil = end
          p.pausedAt = this.now
          this.paused++
          this.q.push(end, EV_RESUME, p.epoch, x)
        }
        if (end - this.now > this.o.silenceTimeout) this.markLost(before)
        // Only silence gives a stopped peer away (its connections stay open).
        if (end - this.now > this.o.silenceTimeout) this.notice(victims, this.now, this.o.silenceTimeout, this.sweepEvery())
        break
      }
      case 'partition': {
        const side = this.victims(f, amount(0.5))
        a.victims = side
        for (const p of this.peers) p.side = 0
        for (const x of side) this.peers[x].side = 1
        this.wholeView = this.truth()
        this.partition = true
        this.everPartitioned = true
        const sides = [this.peers.filter(p => p.alive && p.side === 0).map(p => p.idx), side]
        for (const q of this.peers) {
          if (!q.alive) continue
          this.viewAt(q, this.now + this.o.silenceTimeout + this.sweepEvery() * this.rng.float(), { remove: sides[1 - q.side] })
        }
        this.until(a, DEFAULT_FAULT_LENGTH.partition)
        break
      }
      case 'join': {
        const n = f.count ?? 1
        for (let i = 0; i < n && this.nextJoiner < this.U; i++) {
          const p = this.peers[this.nextJoiner++]
          a.victims.push(p.idx)
          this.q.push(this.now + this.o.startupMs, EV_UP, p.epoch, p.idx)
        }
        break
      }
      case 'rolling-restart': {
        const order = this.pick(this.liveCount(), true)
        const wave = Math.max(1, Math.round((f.share ?? 0.05) * order.length))
        const down = DEFAULT_FAULT_LENGTH.restart
        const every = down + this.o.startupMs + 2 * this.o.heartbeatInterval + 2000
        a.victims = order
        for (let i = 0; i * wave < order.length; i++) {
          const batch = order.slice(i * wave, (i + 1) * wave)
          this.q.push(this.now + i * every, EV_FAULT, () => {
            const hit = batch.filter(x => this.peers[x].alive && this.peers[x].down === 'no' && this.peers[x].pausedUntil <= this.now)
            const before = this.truth()
            for (const x of hit) this.crash(this.peers[x], true, a)
            this.markLost(before)
            this.notice(hit, this.now, this.o.disconnectGrace, this.o.disconnectGrace)
            for (const x of hit) this.q.push(this.now + down + this.o.startupMs, EV_UP, this.peers[x].epoch, x)
          }, 0)
        }
        break
      }
    }
    a.record.peerCount = a.victims.length
    a.record.peers = a.victims.slice(0, MAX_LISTED_PEERS).map(x => this.peers[x].id)
  }

  private sweepEvery (): number {
    return Math.max(10, Math.min(this.o.heartbeatInterval, this.o.silenceTimeout / 4))
  }

  /** The end of a fault whose end is a time (a share is handled by `until`). */
  private endTime (a: ArmedFault, def: number): number {
    const u: FaultEnd | undefined = a.f.until
    if (u === undefined) return this.now + def
    if ('afterMs' in u) return this.now + u.afterMs
    if ('ms' in u) return Math.max(this.now + 1, u.ms)
    return this.now + def
  }

  /** Arm the end of a restart or partition. */
  private until (a: ArmedFault, def: number): void {
    const u = a.f.until
    if (u !== undefined && 'share' in u) {
      this.when(u, () => { this.endFault(a) })
      return
    }
    this.q.push(this.endTime(a, def), EV_FAULT_END, a, 0)
  }

  private endFault (a: ArmedFault): void {
    if (a.ended) return
    a.ended = true
    a.record.end = round(this.now / 1000, 3)
    if (a.f.kind === 'restart') {
      for (const x of a.victims) this.q.push(this.now + this.o.startupMs, EV_UP, this.peers[x].epoch, x)
    } else if (a.f.kind === 'partition') {
      this.partition = false
      for (const q of this.peers) {
        if (!q.alive) continue
        const others = this.peers.filter(x => x.alive && x.side !== q.side).map(x => x.idx)
        if (others.length === 0) continue
        const epochs = others.map(x => this.peers[x].epoch)
        this.viewAt(q, this.now + 2 * this.latency() + this.o.heartbeatInterval * this.rng.float(), { add: others, epochs })
      }
    }
  }

  /** Hosts none of whose r holders (in the member set `before` a kill, restart or freeze) is up any more. */
  private markLost (before: View): void {
    const out = this.reps
    for (let h = 0; h < this.o.hosts; h++) {
      const n = this.u.replicas(before, h, this.o.replicas, out)
      let alive = false
      for (let i = 0; i < n; i++) {
        const q = this.peers[out[i]]
        if (q.alive && q.pausedUntil <= this.now) { alive = true; break }
      }
      if (!alive) this.hostLost[h] = 1
    }
  }

  /** Hosts with work left that `p` owns: the failover clock of each starts now. */
  private watchOwned (p: ModelPeer, a: ArmedFault): void {
    for (const c of p.frontier) {
      if (c.qlen + c.leased === 0 || this.u.owner(p.view, c.host) !== p.idx) continue
      if (this.watchHost[c.host] >= 0) continue
      this.watchHost[c.host] = a.index
      a.watch.set(c.host, this.now)
    }
  }

  /** The process dies (SIGKILL). With `keepDisk` it will start again with its data dir. */
  private crash (p: ModelPeer, keepDisk: boolean, a: ArmedFault): void {
    this.watchOwned(p, a)
    for (const l of p.leases as Set<Lease>) {
      this.faultFlag[l.page] = 1
      const c = l.copy
      if (l.phase === FETCHING) this.requestEnded(p, c.host)
      // Its entry is still on disk: back in the queue when the process starts again.
      if (keepDisk && l.phase <= ROUTING) c.unshift(l.j)
      l.phase = CLOSED
    }
    p.leases.clear()
    for (const w of p.incoming as Set<InLinks>) this.failAt(w.msg, this.now + this.latency())
    p.incoming.clear()
    p.alive = false
    p.epoch++
    p.down = keepDisk ? 'restarting' : 'killed'
    this.downSince.set(p.idx, this.now)
    p.mailbox = []
    p.blocked = []
    p.fetching = 0
    p.processing = 0
    p.pumpAt = Infinity
    p.heap = new CopyHeap()
    p.settled = false
    p.prevView = undefined
    p.handed.clear()
    p.rebalancing = false
    p.rebalanceFrom = undefined
    p.repairing = false
    p.holdTimer = false
    p.holds.clear()
    p.flapped = new Set()
    p.sentLinks = new Set()
    p.underReplicated = 0
    if (p.pausedUntil > 0) this.paused--
    p.pausedUntil = 0
    this.resetBuffers(p)
    const base = p.idx * this.U
    for (let to = 0; to < this.U; to++) {
      for (let k = 0; k < 2; k++) {
        const c = (base + to) * 2 + k
        this.chanInflight[c] = 0
        this.chanQueue.delete(c)
      }
    }
    for (const c of p.copies.values()) { c.leased = 0; c.inflight = 0; c.inHeap = false; c.handing = false }
    if (!keepDisk) {
      p.copies = new Map()
      p.frontier = []
    }
  }

  /** A process starts (a restart, or a new peer): it joins, hears the others, and settles. */
  private up (p: ModelPeer, epoch: number): void {
    if (p.epoch !== epoch || p.alive) return
    p.alive = true
    p.epoch++
    p.down = 'no'
    const m = new Uint8Array(this.U)
    m[p.idx] = 1
    const alone = this.u.view(m)
    p.view = alone
    this.resetBuffers(p)
    this.startTicks(p)
    this.viewAt(p, this.now + 2 * this.latency() + 200 * this.rng.float(), { sync: true })
    this.hear([p.idx], this.now)
    // It decides nothing until it has heard a round of heartbeats (daemon.start).
    this.q.push(this.now + 2 * this.o.heartbeatInterval, EV_SETTLE, { epoch: p.epoch, from: alone }, p.idx)
  }

  private resume (p: ModelPeer, epoch: number): void {
    if (!p.alive || p.epoch !== epoch) return
    const length = this.now - p.pausedAt
    p.pausedUntil = 0
    this.paused--
    for (const a of this.faults) {
      if (a.f.kind === 'pause' && a.victims.includes(p.idx) && !a.ended && a.victims.every(x => this.peers[x].pausedUntil <= this.now)) {
        a.ended = true
        a.record.end = round(this.now / 1000, 3)
      }
    }
    // Its heartbeats are heard again (newer seq): the peers that dropped it take it back.
    this.hear([p.idx], this.now)
    // watchForFreeze: timers fired far too late: stop leasing, rejoin like a restarted peer.
    if (length >= this.o.silenceTimeout && p.settled) {
      p.settled = false
      this.q.push(this.now + 2 * this.o.heartbeatInterval, EV_SETTLE, { epoch: p.epoch, from: this.without(p.view, p.idx) }, p.idx)
    }
    this.pump(p)
  }

  private closeFaults (): void {
    for (const a of this.faults) {
      const times = [...a.took.values()].sort((x, y) => x - y)
      a.record.hostsWatched = a.watch.size
      a.record.hostsResumed = times.length
      if (times.length > 0) {
        a.record.failoverMedianSeconds = round(times[Math.floor(times.length / 2)] / 1000, 3)
        a.record.failoverMaxSeconds = round(times[times.length - 1] / 1000, 3)
      }
    }
  }

  // ---------------------------------------------------------------- the end state

  get partitioned (): boolean {
    return this.everPartitioned
  }

  /** The member set as it truly is (live peers). */
  truth (): View {
    const m = new Uint8Array(this.U)
    for (const p of this.peers) if (p.alive) m[p.idx] = 1
    return this.u.view(m)
  }

  expectedNotFetched (): number {
    let n = 0
    for (let g = 0; g < this.o.pages; g++) if (this.finalReq[g] === 0 && this.web.isExpected(g)) n++
    return n
  }

  /** Queued entries left in live frontiers (not done), and replica entries left. */
  leftover (): { queued: number, replicaEntries: number } {
    let queued = 0
    let replicaEntries = 0
    for (const p of this.peers) {
      if (!p.alive) continue
      for (const c of p.copies.values()) {
        for (const j of c.entries()) if ((c.f[j] & SEEN_MASK) !== SEEN_DONE) queued++
        if (c.rep > 0) replicaEntries += c.rep
      }
    }
    return { queued, replicaEntries }
  }

  /** Records that fewer than r live holders of their host have; and records that no live peer has. */
  replication (v: View): { underReplicated: number, lostRecords: number } {
    let under = 0
    let lost = 0
    const out: number[] = []
    const holders: Array<Copy | undefined> = []
    for (let h = 0; h < this.o.hosts; h++) {
      const n = this.u.replicas(v, h, this.o.replicas, out)
      holders.length = 0
      for (let i = 0; i < n; i++) holders.push(this.peers[out[i]].copies.get(h))
      const start = this.web.hostStart[h]
      const end = this.web.hostStart[h + 1]
      for (let g = start; g < end; g++) {
        if (this.completed[g] === 0) continue
        let have = 0
        for (const c of holders) if (c !== undefined && (c.f[g - start] & REC) !== 0) have++
        if (have < n) under += n - have
        if (have === 0 && !this.heldAnywhere(h, g - start)) lost++
      }
    }
    return { underReplicated: under, lostRecords: lost }
  }

  private heldAnywhere (h: number, j: number): boolean {
    for (const p of this.peers) {
      if (!p.alive) continue
      const c = p.copies.get(h)
      if (c !== undefined && (c.f[j] & REC) !== 0) return true
    }
    return false
  }
}

export function round (x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

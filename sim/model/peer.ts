/**
 * The per-peer state of the model, in compact form: what node/frontier.ts, seen.ts, replicas.ts and
 * the metadata store hold on disk, as one byte per page of each host the peer holds anything of.
 */
import type { View } from './views.js'

/** Seen mark (bits 0–1 of a page's byte in a `Copy`): none, 0 (queued), or a fetch time (done). */
export const SEEN_MASK = 3
export const SEEN_QUEUED = 1
export const SEEN_DONE = 2
/** The page's record (and body) is held here. */
export const REC = 4
/** A replica entry (the `replicas` sublevel): queued on the owner, held here as a copy. */
export const REP = 8

/**
 * What one peer holds of one host: a byte per page (seen mark, record, replica entry) and, when the
 * host is in its frontier, the queue of frontier entries not leased (local page indexes, oldest
 * first; an index may appear twice, as two keys can in the real frontier after an `adopt`).
 */
export class Copy {
  readonly f: Uint8Array
  queue: number[] = []
  qh = 0
  /** Entries of this host leased (fetching or being processed). */
  leased = 0
  /** Requests in flight (the host's connection). */
  inflight = 0
  /** Earliest start of the next request (politeness). */
  nextAt = 0
  inHeap = false
  /** Its entries are being handed to another peer: not leased meanwhile. */
  handing = false
  /** The host is in this peer's frontier (`knownHosts`). */
  inFrontier = false
  /** Pages with a replica entry. */
  rep = 0

  constructor (readonly host: number, readonly base: number, size: number) {
    this.f = new Uint8Array(size)
  }

  get qlen (): number {
    return this.queue.length - this.qh
  }

  push (j: number): void {
    this.queue.push(j)
  }

  /** Back to the head of the queue (a retry, or an entry whose lease died with the process). */
  unshift (j: number): void {
    if (this.qh > 0) this.queue[--this.qh] = j
    else this.queue.unshift(j)
  }

  shift (): number {
    const j = this.queue[this.qh++]
    if (this.qh > 64 && this.qh * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.qh)
      this.qh = 0
    }
    return j
  }

  /** The queued entries, oldest first. */
  entries (): number[] {
    return this.queue.slice(this.qh)
  }

  /** Take these entries (a multiset) out of the queue. */
  remove (js: number[]): void {
    const gone = new Map<number, number>()
    for (const j of js) gone.set(j, (gone.get(j) ?? 0) + 1)
    const keep: number[] = []
    for (let i = this.qh; i < this.queue.length; i++) {
      const j = this.queue[i]
      const n = gone.get(j)
      if (n !== undefined && n > 0) gone.set(j, n - 1)
      else keep.push(j)
    }
    this.queue = keep
    this.qh = 0
  }
}

/** The frontier's min-heap of hosts by next allowed time (ties by host, for a stable order). */
export class CopyHeap {
  private readonly a: Copy[] = []

  get size (): number {
    return this.a.length
  }

  peek (): Copy | undefined {
    return this.a[0]
  }

  push (c: Copy): void {
    const a = this.a
    let i = a.length
    a.push(c)
    while (i > 0) {
      const pi = (i - 1) >> 1
      const p = a[pi]
      if (p.nextAt < c.nextAt || (p.nextAt === c.nextAt && p.host < c.host)) break
      a[i] = p
      i = pi
    }
    a[i] = c
  }

  pop (): Copy | undefined {
    const a = this.a
    const n = a.length
    if (n === 0) return undefined
    const top = a[0]
    const last = a.pop() as Copy
    if (n > 1) {
      const size = n - 1
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        if (l >= size) break
        let c = l
        let ce = a[l]
        if (l + 1 < size) {
          const re = a[l + 1]
          if (re.nextAt < ce.nextAt || (re.nextAt === ce.nextAt && re.host < ce.host)) { c = l + 1; ce = re }
        }
        if (last.nextAt < ce.nextAt || (last.nextAt === ce.nextAt && last.host < ce.host)) break
        a[i] = ce
        i = c
      }
      a[i] = last
    }
    return top
  }
}

/** Something that waits for `pending` completions (a guard of 1 is released by its creator). */
export abstract class Waiter {
  pending = 1
  abstract fire (): void
  dec (): void {
    if (--this.pending === 0) this.fire()
  }
}

export class Gate extends Waiter {
  constructor (public cb: (() => void) | undefined = undefined) {
    super()
  }

  fire (): void {
    this.cb?.()
  }
}

export class ModelPeer {
  alive = false
  /** Bumped at every death and start: events and messages of an earlier life are ignored. */
  epoch = 0
  view!: View
  prevView?: View
  ringChangedAt = 0
  settled = false
  readonly handed = new Map<number, number>()
  copies = new Map<number, Copy>()
  /** Copies in the frontier, in the order the hosts first entered it. */
  frontier: Copy[] = []
  heap = new CopyHeap()
  /** Fetch loops busy (fetching, or holding a page the mailbox has no room for). */
  fetching = 0
  /** Processor loops busy. */
  processing = 0
  mailbox: unknown[] = []
  blocked: unknown[] = []
  leases = new Set<any>()
  /** Time of the armed frontier timer, Infinity when none. */
  pumpAt = Infinity
  incoming = new Set<any>()
  /** Links and meta operations gathered per destination peer (the engine's OutBufs). */
  out: unknown[] = []
  meta: unknown[] = []
  pausedUntil = 0
  pausedAt = 0
  side = 0
  underReplicated = 0
  rebalancing = false
  rebalanceFrom?: View
  repairing = false
  holdTimer = false
  /** `handoff-hold`: hosts that moved here from a live peer, and since when they wait for it. */
  readonly holds = new Map<number, number>()
  /** `reroute-on-leave`: links batches sent and not yet acked. */
  sentLinks = new Set<any>()
  /** `rebalance-flapping`: peers that left while a pass was running. */
  flapped = new Set<number>()
  /** Requests this peer made. */
  requests = 0
  /** Down for good (killed), or restarting. */
  down: 'no' | 'killed' | 'restarting' = 'no'

  constructor (readonly idx: number, readonly id: string) {}
}

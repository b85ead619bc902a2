/**
 * Ring views of the model: who each peer believes is in the cluster, and who owns a host in it.
 *
 * The ring is node/ring.ts, used as is. Building a `Ring` for every member set that some peer holds
 * for a while (500 peers, each noticing a death at its own time) would cost ~75 ms each, so the
 * model builds one ring of every peer that will ever exist (the *universe*: the starting peers and
 * the joiners) and uses a property that ring.ts guarantees: a host's replica list in any member set
 * is the universe's list (peers in increasing distance D from the host's probes, which depends only
 * on each peer's own points) with the non-members left out. So for each host the model keeps the
 * first K peers of `universe.replicas(host, K)`, and the owner and replicas of a host in a view are
 * the first members of that prefix. When fewer than r of the K are members (a view missing most
 * peers: a partition, a mass kill), it asks a `Ring` of the view's members itself.
 * test/sim/model.test.ts checks both paths against `Ring.of(members)`.
 */
import { Ring } from '../../node/ring.js'

/** Extra peers kept per host beyond r: with K = r + 14, a host needs the ring of a view only when 15 of its K nearest peers are out of it. */
const PREFIX_SLACK = 14

/** One member set, shared by every peer that holds it (views are immutable). */
export class View {
  /** 1 for members, by universe index. */
  readonly m: Uint8Array
  readonly size: number
  private ringOf?: Ring
  /** Views derived from this one by a membership operation, by the operation's key. */
  readonly next = new Map<string, View>()

  constructor (readonly id: number, m: Uint8Array) {
    this.m = m
    let n = 0
    for (let i = 0; i < m.length; i++) n += m[i]
    this.size = n
  }

  has (peer: number): boolean {
    return this.m[peer] === 1
  }

  members (): number[] {
    const out: number[] = []
    for (let i = 0; i < this.m.length; i++) if (this.m[i] === 1) out.push(i)
    return out
  }

  sameAs (other: View): boolean {
    if (other === this) return true
    if (other.size !== this.size) return false
    for (let i = 0; i < this.m.length; i++) if (this.m[i] !== other.m[i]) return false
    return true
  }

  ring (u: Universe): Ring {
    this.ringOf ??= Ring.of(this.members().map(i => u.ids[i]), { vnodes: u.vnodes })
    return this.ringOf
  }
}

export class Universe {
  readonly ids: string[]
  readonly index = new Map<string, number>()
  readonly ring: Ring
  readonly vnodes: number
  /** Peers kept per host. */
  readonly k: number
  /** `pref[h * k + i]`: the i-th nearest peer of host h in the universe. */
  private readonly pref: Int32Array
  private readonly hostKeys: (h: number) => string
  private nextId = 0
  /** Lookups that needed the view's own ring. */
  fallbacks = 0

  constructor (ids: string[], hosts: number, hostKey: (h: number) => string, vnodes: number, r: number) {
    this.ids = ids
    ids.forEach((id, i) => this.index.set(id, i))
    this.vnodes = vnodes
    this.ring = Ring.of(ids, { vnodes })
    this.hostKeys = hostKey
    this.k = Math.min(ids.length, r + PREFIX_SLACK)
    this.pref = new Int32Array(hosts * this.k)
    for (let h = 0; h < hosts; h++) {
      const list = this.ring.replicas(hostKey(h), this.k)
      for (let i = 0; i < this.k; i++) this.pref[h * this.k + i] = this.index.get(list[i]) as number
    }
  }

  view (m: Uint8Array): View {
    return new View(this.nextId++, m)
  }

  /** The owner of host h in view v, or −1 when the view is empty. */
  owner (v: View, h: number): number {
    const pref = this.pref
    const m = v.m
    const base = h * this.k
    for (let i = 0; i < this.k; i++) {
      const p = pref[base + i]
      if (m[p] === 1) return p
    }
    if (v.size === 0) return -1
    this.fallbacks++
    return this.index.get(v.ring(this).owner(this.hostKeys(h)) as string) as number
  }

  /** The first `r` holders of host h in view v (owner first) into `out`; returns how many. */
  replicas (v: View, h: number, r: number, out: number[]): number {
    const want = Math.min(r, v.size)
    const pref = this.pref
    const m = v.m
    const base = h * this.k
    let n = 0
    for (let i = 0; i < this.k && n < want; i++) {
      const p = pref[base + i]
      if (m[p] === 1) out[n++] = p
    }
    if (n === want) return n
    this.fallbacks++
    const list = v.ring(this).replicas(this.hostKeys(h), want)
    for (let i = 0; i < list.length; i++) out[i] = this.index.get(list[i]) as number
    return list.length
  }
}

/**
 * The consistent-hash ring that splits the URL space between peers (DESIGN.md §2). Pure and
 * immutable: a membership change makes a new `Ring`, so a lookup never sees a half-applied change.
 *
 * The partition key is a URL's normalized `host:port` (`hostKeyFast` in router.ts).
 *
 * Placement. Each peer places `vnodes` points on a 2^32 circle at `pointOf(peerId, i)`, derived from
 * sha-256, so the points depend on nothing but the peer's own id: a peer that joins or leaves moves
 * no other peer's points, and two peers with the same member list build the same ring.
 *
 * Lookup: multi-probe consistent hashing (Appleton & O'Reilly, "Multi-probe consistent hashing",
 * 2015, arXiv:1505.00062) on top of that ring. A key is hashed to `probes` positions; from each we
 * go clockwise to the first point, and the point that is the *nearest* over all probes owns the key.
 * With `probes: 1` this is exactly the classic ring of DESIGN.md §2: the owner is the first point
 * clockwise from `hashKey(key)`.
 *
 * Why more than one probe: with one probe a peer's share is the sum of the arcs in front of its
 * points, and those arcs are set by the *other* peers' independent points, so the share of each
 * peer varies by about 1/sqrt(vnodes) = 12.5 % at 64 vnodes — whatever the hash, and whatever
 * pattern a peer gives its own points (spreading a peer's points evenly makes the whole ring
 * periodic and the spread far worse; one point per stratum barely helps). For 10 peers the busiest
 * one then owned up to 1.5× the mean, and more than 1.25× for about one member set in five. The
 * nearest of several probes favours short arcs over long ones (a long arc is rarely the nearest),
 * which evens the shares out: with 4 probes the busiest of 10 peers owned at most 1.16× the mean over
 * 2,000 seeded member sets (1.18× for 2 to 100 peers), for 4 successor searches per lookup.
 * Each probe is still "first point clockwise", so the two properties a ring exists for hold exactly:
 *
 * - a joining peer only adds points, which can only become nearer: every key that moves, moves to it;
 * - a leaving peer only removes its own points: exactly its keys move, the others keep their owner.
 *
 * Replicas. For each peer, let D(peer) be the smallest clockwise distance from any of the key's
 * probes to any of that peer's points. The replicas are the peers in increasing D (the owner first);
 * with one probe that is "the next r − 1 distinct peers clockwise". D(peer) depends only on that peer's points, so when the owner leaves, the second
 * replica becomes the owner and the rest move up by one: the successors that already hold the
 * replicas take over.
 *
 * What is lost: with more than one probe a peer's slice is no longer a set of arcs of one hash, so a
 * hand-off cannot be a few range scans; it is a scan of the hosts a peer holds with `movedKeys`
 * (or `ring.owner(host) !== self`).
 */
import { createHash } from 'node:crypto'
import { ConfigError } from './errors.js'

/** Points each peer places on the ring (DESIGN.md §2). */
export const DEFAULT_VNODES = 64
export const MAX_VNODES = 4096
/** Probes per key; see the top of this file for why 4 (1 is the classic ring). */
export const DEFAULT_PROBES = 4
export const MAX_PROBES = 64
/** Owners remembered per ring (a page links mostly to a few hosts); cleared when full. */
export const OWNER_CACHE_SIZE = 4096

/** Bumped whenever placement or lookup changes, so peers that disagree see different versions. */
const ALGORITHM = 'shoal-ring/1'
const TWO_32 = 2 ** 32
/** Peer indexes share a float64 with a 32-bit position while the points are sorted. */
const MAX_PEERS = 2 ** 20
const MAX_BUCKET_BITS = 20

export interface RingInit {
  /** Points placed per peer, an integer in 1..MAX_VNODES. @default DEFAULT_VNODES */
  vnodes?: number
  /**
   * Positions a key is hashed to, an integer in 1..MAX_PROBES; 1 is the classic ring.
   *
   * @default DEFAULT_PROBES
   */
  probes?: number
}

/**
 * Murmur3's 32-bit finalizer: every input bit flips each output bit with probability ~1/2.
 * https://github.com/aappleby/smhasher (MurmurHash3.cpp, fmix32)
 */
function fmix32 (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * The key's position on the ring (its first probe): MurmurHash3 (x86, 32-bit, seed 0) over the
 * key's UTF-16 code units taken two at a time. Fast (no allocation, Math.imul only) because it runs
 * for every routed link; not cryptographic, which is fine: a host name cannot pick its owner among
 * peers whose points it cannot predict better than by trying. Part of the ring's contract: every
 * peer must compute the same value, so it is pinned by a test.
 */
export function hashKey (key: string): number {
  const len = key.length
  let h = 0
  let i = 0
  for (; i + 1 < len; i += 2) {
    let k = key.charCodeAt(i) | (key.charCodeAt(i + 1) << 16)
    k = Math.imul(k, 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    h ^= Math.imul(k, 0x1b873593)
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  if (i < len) {
    let k = Math.imul(key.charCodeAt(i), 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    h ^= Math.imul(k, 0x1b873593)
  }
  return fmix32(h ^ (len * 2))
}

/** Probe `j` of a key whose first probe is `h` (`probe(h, 0) === h`). */
export function probe (h: number, j: number): number {
  return j === 0 ? h : fmix32((h + Math.imul(j, 0x9e3779b9)) | 0)
}

/** All `probes` positions of a key. */
export function keyPositions (key: string, probes = DEFAULT_PROBES): number[] {
  const h = hashKey(key)
  return Array.from({ length: probes }, (_, j) => probe(h, j))
}

/**
 * Positions of a peer's first `vnodes` points: point `i` is the big-endian 32-bit word `i % 8` of
 * sha-256(peerId ‖ 0x00 ‖ decimal(floor(i / 8))). Eight points per digest keep a ring of a thousand
 * peers quick to build; a peer's first n points are the same whatever `vnodes` is.
 */
export function peerPoints (peer: string, vnodes: number): Uint32Array {
  const out = new Uint32Array(vnodes)
  for (let block = 0; block * 8 < vnodes; block++) {
    const digest = createHash('sha256').update(`${peer}\0${block}`).digest()
    for (let w = 0; w < 8 && block * 8 + w < vnodes; w++) out[block * 8 + w] = digest.readUInt32BE(w * 4)
  }
  return out
}

/** Position of a peer's point `i` (see `peerPoints`). */
export function pointOf (peer: string, i: number): number {
  return peerPoints(peer, i + 1)[i]
}

function checkInt (option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${option} must be an integer from ${min} to ${max}, got ${String(value)}`)
  }
  return value
}

function checkPeer (peer: unknown): string {
  if (typeof peer !== 'string' || peer === '') {
    throw new ConfigError(`a ring peer must be a non-empty string, got ${JSON.stringify(peer) ?? String(peer)}`)
  }
  return peer
}

type PointCache = ReadonlyMap<string, Uint32Array>

export class Ring {
  /** The members, sorted (UTF-16 code unit order), without duplicates. */
  readonly peers: readonly string[]
  readonly vnodes: number
  readonly probes: number
  /**
   * A digest of the algorithm, `vnodes`, `probes` and the sorted members: two peers whose views
   * have the same version place every key on the same owner.
   */
  readonly version: string

  /** Point positions, ascending; ties ordered by peer index. */
  private readonly positions: Uint32Array
  /** Index into `peers` of the owner of each point. */
  private readonly owners: Uint32Array
  /** `buckets[b]` = index of the first point at or after `b << (32 - bucketBits)`. */
  private readonly buckets: Uint32Array
  private readonly bucketShift: number
  private readonly points: PointCache
  private readonly cache = new Map<string, string>()
  private shareOf: Map<string, number> | undefined

  /** A ring of the given peers (duplicates are ignored; the order does not matter). */
  static of (peers: Iterable<string>, init: RingInit = {}): Ring {
    const vnodes = checkInt('vnodes', init.vnodes ?? DEFAULT_VNODES, 1, MAX_VNODES)
    const probes = checkInt('probes', init.probes ?? DEFAULT_PROBES, 1, MAX_PROBES)
    const set = new Set<string>()
    for (const p of peers) set.add(checkPeer(p))
    return new Ring([...set].sort(), vnodes, probes, new Map())
  }

  private constructor (peers: string[], vnodes: number, probes: number, known: PointCache) {
    if (peers.length > MAX_PEERS) throw new ConfigError(`a ring holds at most ${MAX_PEERS} peers, got ${peers.length}`)
    this.peers = Object.freeze(peers)
    this.vnodes = vnodes
    this.probes = probes
    this.version = createHash('sha256')
      .update(JSON.stringify([ALGORITHM, vnodes, probes, peers]))
      .digest('hex')
      .slice(0, 16)

    // Points of peers already in the previous ring are reused: `with`/`without` hash only the newcomer.
    const points = new Map<string, Uint32Array>()
    for (const p of peers) points.set(p, known.get(p) ?? peerPoints(p, vnodes))
    this.points = points

    // Sort (position, peer index) pairs packed in one float64 each: exact below 2^53, and a typed
    // array sorts numerically without a comparator.
    const n = peers.length * vnodes
    const packed = new Float64Array(n)
    let k = 0
    for (let pi = 0; pi < peers.length; pi++) {
      for (const pos of points.get(peers[pi]) as Uint32Array) packed[k++] = pos * MAX_PEERS + pi
    }
    packed.sort()
    this.positions = new Uint32Array(n)
    this.owners = new Uint32Array(n)
    for (let i = 0; i < n; i++) {
      const v = packed[i]
      const pi = v % MAX_PEERS
      this.owners[i] = pi
      this.positions[i] = (v - pi) / MAX_PEERS
    }

    // A direct-mapped table of about two buckets per point turns the successor search into one
    // load and, on average, less than one step forward.
    const bits = Math.min(MAX_BUCKET_BITS, Math.max(1, Math.ceil(Math.log2(Math.max(n, 1))) + 1))
    this.bucketShift = 32 - bits
    this.buckets = new Uint32Array(2 ** bits)
    let i = 0
    for (let b = 0; b < this.buckets.length; b++) {
      const start = b * 2 ** this.bucketShift
      while (i < n && this.positions[i] < start) i++
      this.buckets[b] = i
    }
  }

  /** Number of peers. */
  get size (): number {
    return this.peers.length
  }

  has (peer: string): boolean {
    return this.points.has(peer)
  }

  /** Index of the first point at or clockwise after position `h` (the ring is not empty). */
  private successor (h: number): number {
    const positions = this.positions
    let i = this.buckets[h >>> this.bucketShift]
    while (i < positions.length && positions[i] < h) i++
    return i === positions.length ? 0 : i
  }

  /** The peer that owns `key`, or undefined when the ring is empty. */
  owner (key: string): string | undefined {
    const cached = this.cache.get(key)
    if (cached !== undefined) return cached
    const positions = this.positions
    if (positions.length === 0) return undefined
    const h = hashKey(key)
    let best = this.successor(h)
    let bestDistance = (positions[best] - h) >>> 0
    for (let j = 1; j < this.probes; j++) {
      const p = probe(h, j)
      const i = this.successor(p)
      const d = (positions[i] - p) >>> 0
      if (d < bestDistance) {
        best = i
        bestDistance = d
      }
    }
    const owner = this.peers[this.owners[best]]
    if (this.cache.size >= OWNER_CACHE_SIZE) this.cache.clear()
    this.cache.set(key, owner)
    return owner
  }

  /**
   * The `r` peers that hold `key`, owner first, distinct, at most as many as there are peers. When
   * a peer leaves, every key's list loses that peer and keeps its order; when one joins, it is
   * inserted somewhere and the others keep their order.
   */
  replicas (key: string, r: number): string[] {
    if (!Number.isSafeInteger(r) || r < 0) throw new ConfigError(`replicas must be a non-negative integer, got ${String(r)}`)
    const positions = this.positions
    const n = positions.length
    const want = Math.min(r, this.peers.length)
    const out: string[] = []
    if (want === 0) return out
    // Walk clockwise from every probe at once, always stepping the walk whose next point is nearest
    // to its probe: peers then appear in increasing D (see the top of the file).
    const k = this.probes
    const h = hashKey(key)
    const from = new Array<number>(k)
    const at = new Array<number>(k)
    const steps = new Array<number>(k).fill(0)
    const distance = new Array<number>(k)
    for (let j = 0; j < k; j++) {
      from[j] = probe(h, j)
      at[j] = this.successor(from[j])
      distance[j] = (positions[at[j]] - from[j]) >>> 0
    }
    const seen = new Set<number>()
    while (out.length < want) {
      let j = 0
      for (let m = 1; m < k; m++) if (distance[m] < distance[j]) j = m
      if (distance[j] === Infinity) break
      const pi = this.owners[at[j]]
      if (!seen.has(pi)) {
        seen.add(pi)
        out.push(this.peers[pi])
      }
      if (++steps[j] >= n) {
        distance[j] = Infinity
      } else {
        at[j] = at[j] + 1 === n ? 0 : at[j] + 1
        distance[j] = (positions[at[j]] - from[j]) >>> 0
      }
    }
    return out
  }

  /** This ring with `peer` added (the same ring if it is already a member). */
  with (peer: string): Ring {
    checkPeer(peer)
    if (this.has(peer)) return this
    return new Ring([...this.peers, peer].sort(), this.vnodes, this.probes, this.points)
  }

  /** This ring without `peer` (the same ring if it is not a member). */
  without (peer: string): Ring {
    if (!this.has(peer)) return this
    return new Ring(this.peers.filter(p => p !== peer), this.vnodes, this.probes, this.points)
  }

  /**
   * The fraction of uniformly hashed keys that `peer` owns (0 for a non-member); the shares of the
   * members add up to 1. Exact for independent uniform probes:
   *
   * A probe that lands in the arc in front of a point, at distance d from it, picks that point when
   * no other probe is nearer to its own next point. With G(d) = Σ min(arc, d) over all arcs (the
   * chance that one probe is within d of its next point), a point with arc g wins with probability
   * W(g) = ∫₀^g k·(1 − G(d))^(k−1) dd. Between two consecutive arc lengths G is linear, so the
   * integral is closed-form; with k = 1, W(g) = g.
   */
  share (peer: string): number {
    if (this.shareOf === undefined) this.shareOf = this.computeShares()
    return this.shareOf.get(peer) ?? 0
  }

  private computeShares (): Map<string, number> {
    const shares = new Map<string, number>(this.peers.map(p => [p, 0]))
    const n = this.positions.length
    if (n === 0) return shares
    const arcs = new Float64Array(n)
    arcs[0] = (TWO_32 - this.positions[n - 1] + this.positions[0]) / TWO_32
    for (let i = 1; i < n; i++) arcs[i] = (this.positions[i] - this.positions[i - 1]) / TWO_32
    const sorted = Float64Array.from(arcs).sort()
    // win[i] = W(sorted[i]); on [sorted[i-1], sorted[i]] there are n − i arcs longer than d.
    const k = this.probes
    const win = new Float64Array(n)
    let covered = 0 // Σ of the arcs shorter than the current d
    let u = 1 // 1 − G(d) at d = previous arc length
    let w = 0
    let prev = 0
    for (let i = 0; i < n; i++) {
      const longer = n - i
      const g = sorted[i]
      const next = Math.max(0, 1 - covered - longer * g)
      if (g > prev) w += (u ** k - next ** k) / longer
      win[i] = w
      covered += g
      u = next
      prev = g
    }
    let total = 0
    for (let i = 0; i < n; i++) {
      // The first index with the same arc length: equal arcs have equal W.
      let lo = 0
      let hi = n - 1
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (sorted[mid] < arcs[i]) lo = mid + 1
        else hi = mid
      }
      const p = this.peers[this.owners[i]]
      shares.set(p, (shares.get(p) as number) + win[lo])
      total += win[lo]
    }
    // The Ws add up to 1 in exact arithmetic; dividing by their sum keeps rounding out of the total.
    for (const [p, s] of shares) shares.set(p, s / total)
    return shares
  }
}

/** The keys whose owner in `to` differs from their owner in `from`. */
export function movedKeys (from: Ring, to: Ring, keys: Iterable<string>): string[] {
  const moved: string[] = []
  for (const key of keys) if (from.owner(key) !== to.owner(key)) moved.push(key)
  return moved
}

/**
 * The model mode's simulated web: pages are integers, nothing is stored per link.
 *
 * Page ids 0..P−1 are split over H hosts in contiguous ranges (`hostStart[h]` ≤ page <
 * `hostStart[h + 1]`; local index j = page − hostStart[h], 0 is the host's root `/`). A page's links
 * are a pure function of (seed, page), drawn again whenever they are needed (the ground truth's
 * BFS and every fetch of the page), the same way sim/web/site.ts generates its pages:
 *
 * - page j links to j + 1 of its host (every page is reachable from its root through its host), and
 *   sometimes to the root;
 * - the rest: a share `crossHostLinks` to other hosts (popular hosts first), and inside the host half
 *   uniform, half power-law (target = ⌊n·u³⌋), so in-degree follows a power law with a long tail;
 * - a few pages are broken (404: fetched, no links) and a few are transient (the first request gets
 *   a 503 and is retried by its owner).
 *
 * Ground truth: the pages reachable from the seeds (the roots of the first `seedHosts` hosts of a
 * seeded permutation), by a BFS over the generated graph with a bitset.
 */
import { fmix32, mix } from '../web/prng.js'
import type { ResolvedOptions } from './options.js'

const SALT_LINKS = 1
const SALT_BROKEN = 2
const SALT_TRANSIENT = 3
const SALT_BODY = 4
const SALT_SEEDS = 5
const TWO_32 = 4294967296
/** Share of in-host links to the host's root. */
const ROOT_LINK_RATIO = 0.05

/** 'http://h' + host digits + '.sim.example' */
const ORIGIN_FIXED = 'http://h'.length + '.sim.example'.length
/** '/page/' + digits + '.html' */
const PATH_FIXED = '/page/'.length + '.html'.length

/** Popular targets: ⌊n·u³⌋ has density ∝ x^(−2/3) (the exponent of sim/web/site.ts), by multiplication only. */
function cube (x: number): number {
  return x * x * x
}

export function digits (n: number): number {
  let d = 1
  while (n >= 10) { n = Math.floor(n / 10); d++ }
  return d
}

export class ModelWeb {
  readonly pages: number
  readonly hosts: number
  /** First page of each host, and `pages` at index `hosts`. */
  readonly hostStart: Int32Array
  /** Host of each page. */
  readonly hostOf: Int32Array
  /** Reachable pages (the ground truth), one bit each. */
  readonly expected: Uint32Array
  readonly expectedCount: number
  /** Root pages of the seeded hosts. */
  readonly seeds: number[]
  private readonly seed: number
  private readonly links: number
  private readonly linkSpread: number
  private readonly cross: number
  private readonly brokenBelow: number
  private readonly transientBelow: number
  private readonly bodyBytes: number

  constructor (o: ResolvedOptions) {
    this.pages = o.pages
    this.hosts = o.hosts
    this.seed = o.seed
    this.links = o.linksPerPage
    this.linkSpread = Math.floor(o.linksPerPage / 5)
    this.cross = o.hosts > 1 ? o.crossHostLinks : 0
    this.brokenBelow = Math.floor(o.brokenPages * TWO_32)
    this.transientBelow = Math.floor(o.transientPages * TWO_32)
    this.bodyBytes = o.bodyBytes
    this.hostStart = new Int32Array(o.hosts + 1)
    this.hostOf = new Int32Array(o.pages)
    for (let h = 0; h <= o.hosts; h++) this.hostStart[h] = Math.floor(h * o.pages / o.hosts)
    for (let h = 0; h < o.hosts; h++) this.hostOf.fill(h, this.hostStart[h], this.hostStart[h + 1])
    // Seeds: the roots of `seedHosts` hosts, drawn by a seeded shuffle.
    const order = Int32Array.from({ length: o.hosts }, (_, i) => i)
    for (let i = o.hosts - 1; i > 0; i--) {
      const j = fmix32(mix(o.seed, SALT_SEEDS, i)) % (i + 1)
      const t = order[i]; order[i] = order[j]; order[j] = t
    }
    this.seeds = Array.from(order.subarray(0, o.seedHosts)).sort((a, b) => a - b).map(h => this.hostStart[h])
    const bfs = this.reach()
    this.expected = bfs.bits
    this.expectedCount = bfs.count
  }

  /** Pages of host `h`. */
  size (h: number): number {
    return this.hostStart[h + 1] - this.hostStart[h]
  }

  isExpected (page: number): boolean {
    return (this.expected[page >>> 5] & (1 << (page & 31))) !== 0
  }

  broken (page: number): boolean {
    return page !== this.hostStart[this.hostOf[page]] && fmix32(mix(this.seed, SALT_BROKEN, page)) < this.brokenBelow
  }

  transient (page: number): boolean {
    return fmix32(mix(this.seed, SALT_TRANSIENT, page)) < this.transientBelow
  }

  /** Body bytes of a page (what its block weighs), ±20 %. */
  body (page: number): number {
    const spread = Math.floor(this.bodyBytes / 5)
    return this.bodyBytes - spread + (fmix32(mix(this.seed, SALT_BODY, page)) % (2 * spread + 1))
  }

  /** Characters of a host's origin, `http://h12.sim.example`. */
  originLength (h: number): number {
    return ORIGIN_FIXED + digits(h)
  }

  /** Characters of a page's URL. */
  urlLength (page: number): number {
    const h = this.hostOf[page]
    const j = page - this.hostStart[h]
    return this.originLength(h) + (j === 0 ? 1 : PATH_FIXED + digits(j))
  }

  /** Characters of a page's path after its host's `/page/` prefix (what a links group sends per URL). */
  suffixLength (page: number): number {
    const j = page - this.hostStart[this.hostOf[page]]
    return j === 0 ? 1 : digits(j) + 5
  }

  /**
   * The links of `page` into `out` (targets, with repeats, as a page would have them); returns how
   * many. `out` must hold `maxLinks` entries. Broken pages have none.
   */
  linksOf (page: number, out: Int32Array): number {
    if (this.broken(page)) return 0
    const h = this.hostOf[page]
    const start = this.hostStart[h]
    const n = this.hostStart[h + 1] - start
    const j = page - start
    let s = mix(this.seed, SALT_LINKS, page)
    s = (s + 0x9e3779b9) >>> 0
    const count = this.links - this.linkSpread + (fmix32(s) % (2 * this.linkSpread + 1))
    let k = 0
    if (count > 0 && j + 1 < n) out[k++] = page + 1
    while (k < count) {
      s = (s + 0x9e3779b9) >>> 0
      const u = fmix32(s) / TWO_32
      s = (s + 0x9e3779b9) >>> 0
      const v = fmix32(s) / TWO_32
      if (u < this.cross) {
        // Another host: popular hosts more often, and its popular pages.
        s = (s + 0x9e3779b9) >>> 0
        const w = fmix32(s) / TWO_32
        let th = w < 0.5 ? Math.floor(this.hosts * cube(w * 2)) : Math.floor(this.hosts * (w - 0.5) * 2)
        if (th === h) th = (th + 1) % this.hosts
        const tn = this.hostStart[th + 1] - this.hostStart[th]
        out[k++] = this.hostStart[th] + Math.floor(tn * cube(v))
      } else if (u < this.cross + (1 - this.cross) * ROOT_LINK_RATIO) {
        out[k++] = start
      } else if (v < 0.5) {
        out[k++] = start + Math.floor(n * cube(v * 2))
      } else {
        out[k++] = start + Math.floor(n * (v - 0.5) * 2)
      }
    }
    return k
  }

  /** Most links a page can have. */
  get maxLinks (): number {
    return this.links + this.linkSpread + 1
  }

  /** BFS from the seeds over the generated graph. */
  private reach (): { bits: Uint32Array, count: number } {
    const bits = new Uint32Array((this.pages + 31) >>> 5)
    const queue = new Int32Array(this.pages)
    const out = new Int32Array(this.maxLinks)
    let head = 0
    let tail = 0
    for (const p of this.seeds) {
      if ((bits[p >>> 5] & (1 << (p & 31))) !== 0) continue
      bits[p >>> 5] |= 1 << (p & 31)
      queue[tail++] = p
    }
    while (head < tail) {
      const p = queue[head++]
      const k = this.linksOf(p, out)
      for (let i = 0; i < k; i++) {
        const t = out[i]
        if ((bits[t >>> 5] & (1 << (t & 31))) !== 0) continue
        bits[t >>> 5] |= 1 << (t & 31)
        queue[tail++] = t
      }
    }
    return { bits, count: tail }
  }
}

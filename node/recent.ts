/**
 * A bounded map of recent entries in two generations, an approximation of LRU that never reorders a
 * Map on a hit: new entries go to the young generation; when it holds half the size it becomes the
 * old one and the old one is dropped; a hit in the old generation is copied to the young one, so
 * what is used often survives the rotation. Memory: fewer than `size` entries. Size 0 keeps nothing.
 *
 * Used by the seen set (recent answers); `RepeatFilter` keeps URL fingerprints in the same scheme,
 * and the parser's href cache (parser.ts `ResolveCache`) is the same scheme keyed in two levels.
 */
export class RecentMap<V> {
  private young = new Map<string, V>()
  private old = new Map<string, V>()
  private readonly half: number

  constructor (size: number) {
    if (!(size >= 0)) throw new RangeError(`cache size must be ≥ 0, got ${size}`)
    this.half = size / 2
  }

  get (key: string): V | undefined {
    const v = this.young.get(key)
    if (v !== undefined) return v
    const o = this.old.get(key)
    if (o !== undefined) this.set(key, o)
    return o
  }

  set (key: string, value: V): void {
    if (this.half === 0) return
    this.young.set(key, value)
    if (this.young.size >= this.half) {
      this.old = this.young
      this.young = new Map()
    }
  }

  /** Entries held now (both generations; a key copied on a hit may count twice). */
  get size (): number {
    return this.young.size + this.old.size
  }

  clear (): void {
    this.young.clear()
    this.old.clear()
  }
}

/**
 * URLs remembered with the time they were handed on, which count as recent until `recrawlAfter`
 * has passed: the router's URLs delivered to their owner (remembered on the owner's ack), and the
 * parse side of "skip what was already routed" (`apply`): the links a parse thread has handed on
 * recently, so that the links every page repeats (navigation, footers, popular pages) are dropped
 * where they are found, before they cross to the main thread, become `Link`s and reach the
 * router. A link is remembered when it is handed on, not when its owner acknowledges it (the
 * router does that, behind this): that is safe because a page is only done once the router has
 * delivered its links, retrying until the owner has them or the peer stops, and a page that is not
 * done is fetched (and parsed, by a thread that remembers nothing) again. One window is left: page
 * P hands on L, page P2 (which also links L) is done while P's delivery is still being retried, the
 * peer dies, and P, fetched again, no longer links L (it changed, or fails now): L is lost where the
 * router alone would have delivered it with P2. With `recrawlAfter`, a link handed on longer ago
 * than that goes through again, as in the router. It also remembers links the router then refuses
 * as out of scope: `clear` when the scope widens (a seed added).
 *
 * It holds 64-bit fingerprints of the URLs, not the URLs, in two generations of open-addressing
 * tables (typed arrays, at most half full) that rotate like `RecentMap`'s: a lookup is one hash over
 * the URL's characters and, mostly, one probe into a table that stays in the CPU's cache, where a
 * `Map` of URL strings cost ~0.7 µs a lookup on the 150 links of every page (BENCHMARKS.md §2).
 * Two URLs with one fingerprint would make the second look handed on: with 64 bits and at most
 * `size` URLs held, that is ~size / 2⁶⁴ per lookup (~2·10⁻¹⁵ at the default size), the odds
 * Mercator's and Heritrix's URL-seen tests accept for their 64-bit fingerprints; the hash is seeded
 * at random per thread, so a site cannot build links that collide with another's.
 */
export class RepeatFilter {
  private young: Generation
  private old: Generation
  private readonly half: number
  // The fingerprint of the last `fingerprint` or `check` (two results without an object).
  private a = 0
  private b = 0
  // The hash state after the last prefix `check` was given (most links of a page share one).
  private prefix = ''
  private p1 = SEED1
  private p2 = SEED2
  /** The page `check` is on: entries met on it carry it, so a second meeting is no repeat. */
  private page = 0

  constructor (readonly size: number, private readonly recrawlAfter = Infinity) {
    if (!(size >= 0)) throw new RangeError(`cache size must be ≥ 0, got ${size}`)
    this.half = Math.ceil(size / 2)
    // At most half full: short probe runs, and a miss ends at an empty slot soon.
    const slots = this.half === 0 ? 1 : 2 ** Math.ceil(Math.log2(this.half * 2))
    this.young = new Generation(slots)
    this.old = new Generation(slots)
  }

  /** Whether it remembers anything (size > 0). */
  get enabled (): boolean {
    return this.half > 0
  }

  /** Forget every link. */
  clear (): void {
    this.young.clear()
    this.old.clear()
  }

  /** Whether `url` was remembered within `recrawlAfter` of `now` (the router asks this too). */
  has (url: string, now: number): boolean {
    if (this.half === 0) return false
    this.fingerprint(url)
    return this.recent(now)
  }

  remember (url: string, now: number): void {
    if (this.half === 0) return
    this.fingerprint(url)
    this.put(this.a, this.b, now)
  }

  /**
   * Drop from `page.links` what was handed on within `recrawlAfter` of `now`, and remember the
   * rest as handed on at `now`. Sets `linkCount` (the page's links before) and `repeats`.
   * (The parser does the same as it resolves a page's links, with `beginPage` and `check`.)
   */
  apply (page: { links: string[], linkCount?: number, repeats?: number }, now: number): void {
    page.linkCount = page.links.length
    page.repeats = 0
    if (this.half === 0 || page.links.length === 0) return
    this.beginPage()
    const fresh: string[] = []
    for (const url of page.links) {
      if (this.check('', url, now) === FRESH) fresh.push(url)
    }
    page.repeats = page.links.length - fresh.length
    page.links = fresh
  }

  /** Start a page: what `check` meets from now on is counted once however often the page links it. */
  beginPage (): void {
    this.page = (this.page + 1) | 0
  }

  /**
   * Meet the URL `prefix + suffix` on the current page (see `beginPage`), without building it: the
   * parser's links are mostly a page's origin or directory followed by a path, and most of them are
   * repeats, dropped here before their string exists. `FRESH`: not handed on within
   * `recrawlAfter` of `now`, remembered now; `REPEAT`: handed on recently; `MET`: met before on
   * this page (whichever it was then). Call with a filter of size > 0 (`enabled`).
   */
  check (prefix: string, suffix: string, now: number): number {
    let h1 = SEED1
    let h2 = SEED2
    if (prefix.length > 0) {
      if (prefix !== this.prefix) {
        this.prefix = prefix
        this.hash(SEED1, SEED2, prefix)
        this.p1 = this.a
        this.p2 = this.b
      }
      h1 = this.p1
      h2 = this.p2
    }
    this.hash(h1, h2, suffix)
    this.finish(prefix.length + suffix.length)
    const { a, b, young, page } = this
    let slot = young.find(a, b)
    if (slot >= 0) {
      if (young.pages[slot] === page) return MET
      young.pages[slot] = page
      if (this.within(young.times[slot], now)) return REPEAT
      young.times[slot] = now
      return FRESH
    }
    const old = this.old
    slot = old.find(a, b)
    // Met on this page before the young generation rotated into the old one.
    if (slot >= 0 && old.pages[slot] === page) return MET
    if (slot >= 0 && this.within(old.times[slot], now)) {
      // Used again: keep it through the next rotation.
      this.put(a, b, old.times[slot])
      return REPEAT
    }
    this.put(a, b, now)
    return FRESH
  }

  /** Whether the fingerprint in `a`, `b` is held with a time within `recrawlAfter` of `now`. */
  private recent (now: number): boolean {
    const { a, b } = this
    let slot = this.young.find(a, b)
    let at: number
    if (slot >= 0) {
      at = this.young.times[slot]
    } else {
      slot = this.old.find(a, b)
      if (slot < 0) return false
      at = this.old.times[slot]
      // Used again: keep it through the next rotation.
      this.put(a, b, at)
    }
    return this.within(at, now)
  }

  private within (at: number, now: number): boolean {
    return this.recrawlAfter === Infinity || now - at < this.recrawlAfter
  }

  private put (a: number, b: number, at: number): void {
    if (this.young.put(a, b, at, this.page) && this.young.count >= this.half) {
      const dropped = this.old
      this.old = this.young
      dropped.clear()
      this.young = dropped
    }
  }

  /** The fingerprint of `url` into `a`, `b`. */
  private fingerprint (url: string): void {
    this.hash(SEED1, SEED2, url)
    this.finish(url.length)
  }

  /**
   * Two seeded 32-bit hashes of UTF-16 code units, of different shapes, continued from `h1`, `h2`
   * over `s`, into `a` and `b` (not finished: a string's state is its prefix's continued).
   */
  private hash (h1: number, h2: number, s: string): void {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i)
      h1 = Math.imul(h1 ^ c, 0x01000193)
      h2 = Math.imul(((h2 << 5) | (h2 >>> 27)) ^ c, 0x9E3779B1)
    }
    this.a = h1
    this.b = h2
  }

  /** Finish the hash state in `a`, `b` of a string of `length` code units into its fingerprint. */
  private finish (length: number): void {
    this.a = fmix32(this.a ^ length)
    this.b = fmix32(this.b ^ Math.imul(length, 0x85EBCA6B)) | 1 // never 0: 0, 0 is an empty slot
  }
}

/** `RepeatFilter.check`'s answers. */
export const FRESH = 0
export const REPEAT = 1
export const MET = 2

/**
 * One generation of `RepeatFilter`: fingerprints (two int32s a slot; 0, 0 is empty), times, and the
 * page each was last met on.
 */
class Generation {
  readonly keys: Int32Array
  readonly times: Float64Array
  readonly pages: Int32Array
  count = 0
  private readonly mask: number

  constructor (slots: number) {
    this.keys = new Int32Array(slots * 2)
    this.times = new Float64Array(slots)
    this.pages = new Int32Array(slots)
    this.mask = slots - 1
  }

  /** The slot holding `a`, `b`, or -1. */
  find (a: number, b: number): number {
    const keys = this.keys
    let slot = a & this.mask
    for (;;) {
      const kb = keys[2 * slot + 1]
      if (kb === 0) return -1
      if (kb === b && keys[2 * slot] === a) return slot
      slot = (slot + 1) & this.mask
    }
  }

  /** Set the time and page of `a`, `b`, adding it if new; whether it was added. */
  put (a: number, b: number, at: number, page: number): boolean {
    const keys = this.keys
    let slot = a & this.mask
    for (;;) {
      const kb = keys[2 * slot + 1]
      if (kb === 0) {
        keys[2 * slot] = a
        keys[2 * slot + 1] = b
        this.times[slot] = at
        this.pages[slot] = page
        this.count++
        return true
      }
      if (kb === b && keys[2 * slot] === a) {
        this.times[slot] = at
        this.pages[slot] = page
        return false
      }
      slot = (slot + 1) & this.mask
    }
  }

  clear (): void {
    if (this.count === 0) return
    this.keys.fill(0)
    this.count = 0
  }
}

/** murmur3's 32-bit finaliser: every input bit moves every output bit. */
function fmix32 (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85EBCA6B)
  h ^= h >>> 13
  h = Math.imul(h, 0xC2B2AE35)
  return h ^ (h >>> 16)
}

const seeds = crypto.getRandomValues(new Int32Array(2))
const SEED1 = seeds[0]
const SEED2 = seeds[1]

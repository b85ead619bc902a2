import type { BatchOp, Store } from './db.js'
import * as C from './constants.js'
import { RecentMap } from './recent.js'

/**
 * A Bloom filter of strings: k bit positions by double hashing two 32-bit FNV-1a variants
 * (Kirsch & Mitzenmacher, "Less hashing, same performance"). No false negatives.
 *
 * Its size is fixed: it never grows with the crawl. Sizing (m bits, k hashes, n URLs, false
 * positive rate (1 − e^(−kn/m))^k): the default 2^27 bits (16 MiB) with k = 7 answers wrongly
 * "maybe seen" for 0.003 % of new URLs at 5 million URLs, 1 % at 14 million, 5 % at 20 million.
 * A false positive costs one disk read, never a URL: the seen set confirms every "maybe" on disk.
 */
export class BloomFilter {
  readonly bits: number
  readonly hashes: number
  private readonly words: Uint32Array

  constructor (bits: number, hashes: number) {
    if (!Number.isInteger(bits) || bits < 64) throw new RangeError(`bloom filter bits must be an integer ≥ 64, got ${bits}`)
    // Bit positions are 32-bit: beyond 2^32 bits the rest would never be set.
    if (bits > 2 ** 32) throw new RangeError(`bloom filter bits must be at most 2^32, got ${bits}`)
    if (!Number.isInteger(hashes) || hashes < 1 || hashes > 32) throw new RangeError(`bloom filter hashes must be an integer from 1 to 32, got ${hashes}`)
    this.bits = bits
    this.hashes = hashes
    this.words = new Uint32Array(Math.ceil(bits / 32))
  }

  /** Two 32-bit hashes of the string in one pass (FNV-1a and a murmur-style mix). */
  private hash (s: string): void {
    let h1 = 0x811c9dc5
    let h2 = 0x01000193 ^ s.length
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i)
      h1 = Math.imul(h1 ^ c, 0x01000193)
      h2 = Math.imul(h2 ^ c, 0x5bd1e995)
      h2 ^= h2 >>> 15
    }
    this.h1 = h1 >>> 0
    this.h2 = (h2 >>> 0) | 1
  }

  private h1 = 0
  private h2 = 0

  add (s: string): void {
    this.hash(s)
    const { h1, h2, bits, words } = this
    for (let i = 0; i < this.hashes; i++) {
      const bit = ((h1 + Math.imul(i, h2)) >>> 0) % bits
      words[bit >>> 5] |= 1 << (bit & 31)
    }
  }

  /** The false-positive rate after `n` distinct adds (the formula above). */
  falsePositiveRate (n: number): number {
    return (1 - Math.exp(-this.hashes * n / this.bits)) ** this.hashes
  }

  has (s: string): boolean {
    this.hash(s)
    const { h1, h2, bits, words } = this
    for (let i = 0; i < this.hashes; i++) {
      const bit = ((h1 + Math.imul(i, h2)) >>> 0) % bits
      if ((words[bit >>> 5] & (1 << (bit & 31))) === 0) return false
    }
    return true
  }
}

/**
 * The URL-seen set. Its truth is on disk (the `seen` sublevel: url → time fetched, 0 while queued);
 * in front of it sit a Bloom filter (a URL it has never seen skips the disk), a small cache of
 * recent answers (the links every page repeats), and the URLs marked but not yet written.
 * Memory is bounded by the filter's bit count and the cache size, not by the crawl's size: the
 * cache holds fewer than `cacheSize` answers, and `pending` only the marks whose write is under way
 * (bounded by the store's queue of writes, `batchMaxQueued`).
 */
export class SeenSet {
  private readonly filter: BloomFilter
  /** Recent answers (the links every page repeats). */
  private readonly cache: RecentMap<number>
  /** Marked, write not yet landed: the disk can't answer for them yet. */
  private readonly pending = new Map<string, number>()
  diskReads = 0
  filterSkips = 0

  constructor (private readonly store: Store, init: { filterBits?: number, filterHashes?: number, cacheSize?: number } = {}) {
    this.filter = new BloomFilter(init.filterBits ?? C.DEFAULT_SEEN_FILTER_BITS, init.filterHashes ?? C.DEFAULT_SEEN_FILTER_HASHES)
    this.cache = new RecentMap(init.cacheSize ?? C.DEFAULT_SEEN_CACHE_SIZE)
  }

  /** Rebuild the filter from disk (on start with an existing data dir). */
  async load (): Promise<number> {
    let n = 0
    for await (const key of this.store.subs.seen.keys()) {
      this.filter.add(key)
      n++
    }
    return n
  }

  /**
   * For each URL: `undefined` if never seen, else its value (0 queued, >0 the time it was fetched).
   * Reads the disk once, with getMany, for the URLs the filter and caches can't answer.
   */
  async lookup (urls: string[]): Promise<Array<number | undefined>> {
    const out = new Array<number | undefined>(urls.length).fill(undefined)
    let diskIdx: number[] | undefined
    for (let i = 0; i < urls.length; i++) {
      const u = urls[i]
      const p = this.pending.get(u)
      if (p !== undefined) { out[i] = p; continue }
      const c = this.cache.get(u)
      if (c !== undefined) { out[i] = c; continue }
      if (!this.filter.has(u)) { this.filterSkips++; continue }
      ;(diskIdx ??= []).push(i)
    }
    if (diskIdx != null) {
      this.diskReads += diskIdx.length
      const values = await this.store.getMany<number>('seen', diskIdx.map(i => urls[i]))
      for (let j = 0; j < diskIdx.length; j++) {
        const i = diskIdx[j]
        // A write may have landed (and left `pending`) while we read: prefer what's newer.
        const v = this.pending.get(urls[i]) ?? values[j]
        out[i] = v
        if (v !== undefined) this.cache.set(urls[i], v)
      }
    }
    return out
  }

  /** What this set holds in memory now: cached answers, marks not yet written, the filter's bytes. */
  get memory (): { cached: number, pending: number, filterBytes: number } {
    return { cached: this.cache.size, pending: this.pending.size, filterBytes: this.filter.bits / 8 }
  }

  /** The filter's false-positive rate after `n` URLs. */
  falsePositiveRate (n: number): number {
    return this.filter.falsePositiveRate(n)
  }

  /** What memory alone knows of a URL (marks not yet written, recent answers). */
  peek (url: string): number | undefined {
    return this.pending.get(url) ?? this.cache.get(url)
  }

  /** Mark a URL seen with `value`; returns the write, which the caller batches. Call `landed` after. */
  mark (url: string, value: number): BatchOp {
    this.filter.add(url)
    this.pending.set(url, value)
    return { type: 'put', sublevel: 'seen', key: url, value }
  }

  /** The writes of these marks have landed. */
  landed (urls: Iterable<string>): void {
    for (const u of urls) {
      const v = this.pending.get(u)
      if (v === undefined) continue
      this.pending.delete(u)
      this.cache.set(u, v)
    }
  }
}

/**
 * A bounded map of recent entries in two generations, an approximation of LRU that never reorders a
 * Map on a hit: new entries go to the young generation; when it holds half the size it becomes the
 * old one and the old one is dropped; a hit in the old generation is copied to the young one, so
 * what is used often survives the rotation. Memory: fewer than `size` entries. Size 0 keeps nothing.
 *
 * Used by the seen set (recent answers) and, through `RepeatFilter`, the router (URLs already
 * delivered to their owner) and the parse threads; the parser's href cache (parser.ts
 * `ResolveCache`) is the same scheme keyed in two levels.
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
 */
export class RepeatFilter {
  private readonly recent: RecentMap<number>

  constructor (readonly size: number, private readonly recrawlAfter = Infinity) {
    this.recent = new RecentMap(size)
  }

  /** Forget every link. */
  clear (): void {
    this.recent.clear()
  }

  /** Whether `url` was remembered within `recrawlAfter` of `now` (the router asks this too). */
  has (url: string, now: number): boolean {
    const at = this.recent.get(url)
    return at !== undefined && (this.recrawlAfter === Infinity || now - at < this.recrawlAfter)
  }

  remember (url: string, now: number): void {
    this.recent.set(url, now)
  }

  /**
   * Drop from `page.links` what was handed on within `recrawlAfter` of `now`, and remember the
   * rest as handed on at `now`. Sets `linkCount` (the page's links before) and `repeats`.
   */
  apply (page: { links: string[], linkCount?: number, repeats?: number }, now: number): void {
    page.linkCount = page.links.length
    page.repeats = 0
    if (this.size === 0 || page.links.length === 0) return
    const fresh: string[] = []
    for (const url of page.links) {
      if (this.has(url, now)) continue
      this.recent.set(url, now)
      fresh.push(url)
    }
    page.repeats = page.links.length - fresh.length
    page.links = fresh
  }
}

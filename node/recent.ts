/**
 * A bounded map of recent entries in two generations, an approximation of LRU that never reorders a
 * Map on a hit: new entries go to the young generation; when it holds half the size it becomes the
 * old one and the old one is dropped; a hit in the old generation is copied to the young one, so
 * what is used often survives the rotation. Memory: fewer than `size` entries. Size 0 keeps nothing.
 *
 * Used by the seen set (recent answers) and the router (URLs already delivered to their owner);
 * the parser's href cache (parser.ts `ResolveCache`) is the same scheme keyed in two levels.
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

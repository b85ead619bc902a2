import type { Clock } from '../../node/types.js'

/** A clock that moves only when told: timers fire in time order as `advance` passes them. */
export class ManualClock implements Clock {
  private t: number
  private timers: Array<{ at: number, fn: () => void, id: number }> = []
  private nextId = 1

  constructor (start = 1_000_000) {
    this.t = start
  }

  now (): number {
    return this.t
  }

  setTimeout (fn: () => void, ms: number): unknown {
    const id = this.nextId++
    this.timers.push({ at: this.t + Math.max(0, ms), fn, id })
    return id
  }

  clearTimeout (handle: unknown): void {
    this.timers = this.timers.filter(t => t.id !== handle)
  }

  /** Timers waiting. */
  get pending (): number {
    return this.timers.length
  }

  /** Move time forward by `ms`, firing each timer due on the way, in order. */
  advance (ms: number): void {
    const end = this.t + ms
    while (true) {
      this.timers.sort((a, b) => a.at - b.at)
      const next = this.timers[0]
      if (next == null || next.at > end) break
      this.timers.shift()
      this.t = next.at
      next.fn()
    }
    this.t = end
  }
}

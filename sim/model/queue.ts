/**
 * The discrete-event engine's queue, ordered by (virtual time, sequence number). The sequence number
 * makes the order total, so two events at the same virtual time run in the order they were scheduled
 * and a run is deterministic.
 *
 * A calendar queue: almost every event of the model falls within a few seconds of now (latencies,
 * fetches, politeness delays), so events go into 1 ms slots of a wheel that covers the next
 * `SLOTS` ms, and a slot is sorted when the clock reaches it (a few dozen events). Events further
 * away wait in a binary heap and move to the wheel as it comes near. Push and pop are O(1) on
 * average, against O(log n) pointer-chasing for a heap of a few hundred thousand events.
 * Event objects are recycled: an event must not be kept after it is handled.
 */
export interface SimEvent {
  /** Virtual time, ms. */
  t: number
  /** Scheduling order. */
  s: number
  /** Kind (the engine's `EV_` numbers). */
  k: number
  /** Payload. */
  a: any
  /** Payload: usually an epoch or a peer index. */
  b: number
}

const SLOTS = 1 << 16
const MASK = SLOTS - 1

function before (x: SimEvent, y: SimEvent): boolean {
  return x.t < y.t || (x.t === y.t && x.s < y.s)
}

function compare (x: SimEvent, y: SimEvent): number {
  return x.t - y.t || x.s - y.s
}

export class EventQueue {
  private seq = 0
  private count = 0
  private readonly wheel: SimEvent[][] = Array.from({ length: SLOTS }, () => [])
  /** Slots whose events were not pushed in order (sorted when the clock reaches them). */
  private readonly unsorted = new Uint8Array(SLOTS)
  /** The slot being drained, and the position in it. */
  private cur = 0
  private pos = 0
  /** Events at or beyond `cur + SLOTS` ms. */
  private readonly far: SimEvent[] = []
  private readonly free: SimEvent[] = []

  /** Events scheduled so far. */
  get scheduled (): number {
    return this.seq
  }

  get size (): number {
    return this.count
  }

  push (t: number, k: number, a: any, b: number): void {
    const e = this.free.pop() ?? { t: 0, s: 0, k: 0, a: undefined, b: 0 }
    e.t = t
    e.s = this.seq++
    e.k = k
    e.a = a
    e.b = b
    this.count++
    this.place(e)
  }

  /** Put an event's kind and payload back at a later time, as if scheduled now. */
  repush (e: SimEvent, t: number): void {
    this.push(t, e.k, e.a, e.b)
  }

  /** Hand an event back once it is handled. */
  release (e: SimEvent): void {
    e.a = undefined
    this.free.push(e)
  }

  private place (e: SimEvent): void {
    const slot = Math.floor(e.t)
    if (slot < this.cur) throw new Error(`event at ${e.t} ms scheduled in the past (now ${this.cur} ms)`)
    if (slot - this.cur >= SLOTS) { this.heapPush(e); return }
    const list = this.wheel[slot & MASK]
    if (slot === this.cur) {
      // The slot being drained is sorted from `pos` on: insert in order.
      let lo = this.pos
      let hi = list.length
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (before(list[mid], e)) lo = mid + 1
        else hi = mid
      }
      list.splice(lo, 0, e)
      return
    }
    if (list.length > 0 && before(e, list[list.length - 1])) this.unsorted[slot & MASK] = 1
    list.push(e)
  }

  pop (): SimEvent | undefined {
    if (this.count === 0) return undefined
    for (;;) {
      const list = this.wheel[this.cur & MASK]
      if (this.pos < list.length) {
        const e = list[this.pos++]
        this.count--
        return e
      }
      list.length = 0
      this.pos = 0
      // Next slot: skip empty ones (or jump to the far heap when the wheel is empty).
      this.cur++
      if (this.far.length > 0) {
        const wheelEmpty = this.count === this.far.length
        if (wheelEmpty && Math.floor(this.far[0].t) > this.cur) this.cur = Math.floor(this.far[0].t)
        while (this.far.length > 0 && Math.floor(this.far[0].t) - this.cur < SLOTS) {
          const e = this.heapPop()
          const i = Math.floor(e.t) & MASK
          const list = this.wheel[i]
          if (list.length > 0 && before(e, list[list.length - 1])) this.unsorted[i] = 1
          list.push(e)
        }
      }
      const i = this.cur & MASK
      if (this.unsorted[i] === 1) {
        this.wheel[i].sort(compare)
        this.unsorted[i] = 0
      }
    }
  }

  private heapPush (e: SimEvent): void {
    const heap = this.far
    let i = heap.length
    heap.push(e)
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = heap[parent]
      if (before(p, e)) break
      heap[i] = p
      i = parent
    }
    heap[i] = e
  }

  private heapPop (): SimEvent {
    const heap = this.far
    const top = heap[0]
    const last = heap.pop() as SimEvent
    const n = heap.length
    if (n > 0) {
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        if (l >= n) break
        let c = l
        if (l + 1 < n && before(heap[l + 1], heap[l])) c = l + 1
        if (before(last, heap[c])) break
        heap[i] = heap[c]
        i = c
      }
      heap[i] = last
    }
    return top
  }
}

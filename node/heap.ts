/** A binary min-heap of (time, value), for "which host may be fetched next". */
export class MinHeap<T> {
  private readonly times: number[] = []
  private readonly values: T[] = []

  get size (): number {
    return this.times.length
  }

  push (time: number, value: T): void {
    const { times, values } = this
    let i = times.length
    times.push(time)
    values.push(value)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (times[parent] <= time) break
      times[i] = times[parent]
      values[i] = values[parent]
      i = parent
    }
    times[i] = time
    values[i] = value
  }

  peekTime (): number | undefined {
    return this.times[0]
  }

  peek (): T | undefined {
    return this.values[0]
  }

  pop (): T | undefined {
    const { times, values } = this
    if (times.length === 0) return undefined
    const top = values[0]
    const lastTime = times.pop() as number
    const lastValue = values.pop() as T
    const n = times.length
    if (n > 0) {
      let i = 0
      while (true) {
        let child = 2 * i + 1
        if (child >= n) break
        if (child + 1 < n && times[child + 1] < times[child]) child++
        if (times[child] >= lastTime) break
        times[i] = times[child]
        values[i] = values[child]
        i = child
      }
      times[i] = lastTime
      values[i] = lastValue
    }
    return top
  }
}

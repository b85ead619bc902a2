import { MailboxClosedError } from './errors.js'

/**
 * A bounded FIFO between two actors. `put` waits while the mailbox is full, so a slow receiver
 * slows its senders (back-pressure); `take` waits while it is empty. Closing wakes every waiter:
 * pending puts reject, takes drain what is left and then return `undefined`.
 */
export class Mailbox<T> {
  readonly capacity: number
  private readonly items: T[] = []
  private head = 0
  private readonly putters: Array<{ item: T, resolve: () => void, reject: (err: Error) => void }> = []
  private takers: Array<(item: T | undefined) => void> = []
  private closed = false

  constructor (capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`mailbox capacity must be a positive integer, got ${capacity}`)
    }
    this.capacity = capacity
  }

  get size (): number {
    return this.items.length - this.head
  }

  get isClosed (): boolean {
    return this.closed
  }

  /** Deliver an item, waiting while the mailbox is full. */
  async put (item: T): Promise<void> {
    if (this.closed) throw new MailboxClosedError()
    const taker = this.takers.shift()
    if (taker != null) {
      taker(item)
      return
    }
    if (this.size < this.capacity) {
      this.items.push(item)
      return
    }
    await new Promise<void>((resolve, reject) => {
      this.putters.push({ item, resolve, reject })
    })
  }

  /** Deliver without waiting; false when full or closed. */
  offer (item: T): boolean {
    if (this.closed) return false
    const taker = this.takers.shift()
    if (taker != null) {
      taker(item)
      return true
    }
    if (this.size >= this.capacity) return false
    this.items.push(item)
    return true
  }

  /** The next item, waiting while empty; `undefined` once closed and drained. */
  async take (): Promise<T | undefined> {
    if (this.size > 0) {
      const item = this.items[this.head]
      this.items[this.head] = undefined as unknown as T
      this.head++
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items.splice(0, this.head)
        this.head = 0
      }
      const putter = this.putters.shift()
      if (putter != null) {
        this.items.push(putter.item)
        putter.resolve()
      }
      return item
    }
    const putter = this.putters.shift()
    if (putter != null) {
      putter.resolve()
      return putter.item
    }
    if (this.closed) return undefined
    return await new Promise<T | undefined>((resolve) => { this.takers.push(resolve) })
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    for (const t of this.takers) t(undefined)
    this.takers = []
    // Items already accepted stay deliverable; senders still waiting are told.
    for (const p of this.putters.splice(0)) p.reject(new MailboxClosedError())
  }
}

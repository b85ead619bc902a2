import { Level } from 'level'
import { Packr } from 'msgpackr'
import type { Clock } from './types.js'
import { systemClock } from './types.js'
import * as C from './constants.js'

/**
 * One LevelDB per peer, one sublevel per concern. Values are msgpackr-encoded; a missing key reads
 * as `undefined` (abstract-level v2). Every write on the hot path goes through the `WriteBatcher`,
 * which groups the operations of many concurrent callers into one LevelDB batch (group commit):
 * batched writes run ~10× faster than single awaited puts.
 */
const packr = new Packr({ useRecords: false, moreTypes: false })

export const msgpackEncoding = {
  name: 'msgpackr',
  format: 'buffer' as const,
  encode: (v: unknown): Buffer => packr.pack(v),
  decode: (b: Buffer): any => packr.unpack(b),
  createViewTranscoder: undefined,
  createBufferTranscoder: undefined
}

/** `replicas`: frontier entries of hosts this peer holds copies of for their owner (replicas.ts). */
export const SUBLEVELS = ['meta', 'frontier', 'seen', 'hosts', 'robots', 'blocks', 'state', 'replicas'] as const
export type SublevelName = typeof SUBLEVELS[number]

/** A sublevel has the API of a Level (get, getMany, iterators); typed as one for string keys, any values. */
type Sub = Level<string, any>

export interface BatchOp {
  type: 'put' | 'del'
  sublevel: SublevelName
  key: string
  value?: unknown
}

export interface StoreInit {
  /** Open fails instead of creating an empty store. @default true */
  createIfMissing?: boolean
  clock?: Clock
  batchMaxOps?: number
  batchMaxWait?: number
  /**
   * Operations queued for the disk beyond which `write` waits for a batch to land (back-pressure).
   * @default 50000
   */
  batchMaxQueued?: number
  /**
   * Table files LevelDB keeps open. Each open table is memory-mapped, and every page of it read
   * since it was opened counts in the process's resident set: with the default of LevelDB (1000),
   * that grows with the database. Fewer open tables bound it, for a re-open now and then.
   * @default 100
   */
  maxOpenFiles?: number
}

export class Store {
  readonly db: Level<string, any>
  readonly subs: Record<SublevelName, Sub>
  private readonly batcher: WriteBatcher

  constructor (dir: string, init: StoreInit = {}) {
    this.db = new Level<string, any>(dir, {
      keyEncoding: 'utf8',
      valueEncoding: msgpackEncoding as any,
      createIfMissing: init.createIfMissing ?? true,
      maxOpenFiles: init.maxOpenFiles ?? C.DEFAULT_STORE_MAX_OPEN_FILES
    })
    const subs: Partial<Record<SublevelName, Sub>> = {}
    for (const name of SUBLEVELS) {
      subs[name] = this.db.sublevel<string, any>(name, {
        keyEncoding: 'utf8',
        valueEncoding: msgpackEncoding as any
      }) as unknown as Sub
    }
    this.subs = subs as Record<SublevelName, Sub>
    this.batcher = new WriteBatcher(this, init)
  }

  async open (): Promise<void> {
    await this.db.open()
  }

  async close (): Promise<void> {
    await this.batcher.flush()
    await this.db.close()
  }

  async get<T = any>(sublevel: SublevelName, key: string): Promise<T | undefined> {
    return await this.subs[sublevel].get(key) as T | undefined
  }

  async getMany<T = any>(sublevel: SublevelName, keys: string[]): Promise<Array<T | undefined>> {
    return await this.subs[sublevel].getMany(keys) as Array<T | undefined>
  }

  /** Write operations atomically, grouped with other callers' operations; resolves once written. */
  async write (ops: BatchOp[]): Promise<void> {
    if (ops.length === 0) return
    await this.batcher.add(ops)
  }

  /**
   * Add `fn`'s operations to every batch, computed when the batch is cut: for snapshots of state
   * that changes on every write (counters, per-host totals), so each batch holds one copy, not one
   * per caller.
   */
  onCut (fn: () => BatchOp[]): void {
    this.batcher.hooks.push(fn)
  }

  /** Write now, as one batch of its own. */
  async writeNow (ops: BatchOp[]): Promise<void> {
    await this.db.batch(ops.map(op => op.type === 'put'
      ? { type: 'put' as const, sublevel: this.subs[op.sublevel] as any, key: op.key, value: op.value }
      : { type: 'del' as const, sublevel: this.subs[op.sublevel] as any, key: op.key }))
  }

  async flush (): Promise<void> {
    await this.batcher.flush()
  }

  /** Operations of `write` callers not yet on disk (at most `batchMaxQueued`, or one caller's larger write). */
  get queuedOps (): number {
    return this.batcher.queued
  }
}

/**
 * Group commit: operations from many callers go into one LevelDB batch, written after `maxOps`
 * operations or `maxWait` ms. Batches are written one at a time, in the order they were filled,
 * so a later write never lands before an earlier one.
 *
 * Back-pressure: once `maxQueued` operations wait for the disk (gathering, or cut and waiting for
 * the batch before them), `add` waits until a batch lands. Without it, batches cut faster than
 * LevelDB writes them would chain up in memory without bound.
 */
export class WriteBatcher {
  readonly hooks: Array<() => BatchOp[]> = []
  private pending: BatchOp[] = []
  private waiters: Array<{ resolve: () => void, reject: (err: Error) => void }> = []
  private timer: unknown
  private writing: Promise<void> = Promise.resolve()
  private readonly maxOps: number
  private readonly maxWait: number
  private readonly maxQueued: number
  private readonly clock: Clock
  /** Operations of callers not yet written: gathering in `pending`, or in batches cut and not landed. */
  private queuedOps = 0
  /** Writers waiting for room, in arrival order (a large write is not overtaken forever by small ones). */
  private readonly roomWaiters: Array<{ n: number, resolve: () => void }> = []

  constructor (private readonly store: Store, init: StoreInit) {
    this.maxOps = init.batchMaxOps ?? C.DEFAULT_BATCH_MAX_OPS
    this.maxWait = init.batchMaxWait ?? C.DEFAULT_BATCH_MAX_WAIT
    this.maxQueued = init.batchMaxQueued ?? C.DEFAULT_BATCH_MAX_QUEUED_OPS
    if (!Number.isInteger(this.maxQueued) || this.maxQueued < 1) throw new RangeError(`batchMaxQueued must be a positive integer, got ${this.maxQueued}`)
    this.clock = init.clock ?? systemClock
  }

  /** Operations waiting for the disk now (for tests and stats). */
  get queued (): number {
    return this.queuedOps
  }

  async add (ops: BatchOp[]): Promise<void> {
    if (this.roomWaiters.length > 0 || !this.fits(ops.length)) {
      // Back-pressure: wait for room (`admitWaiting` counts these ops in when it wakes us).
      await new Promise<void>((resolve) => { this.roomWaiters.push({ n: ops.length, resolve }) })
    } else {
      this.queuedOps += ops.length
    }
    for (const op of ops) this.pending.push(op)
    const done = new Promise<void>((resolve, reject) => { this.waiters.push({ resolve, reject }) })
    if (this.pending.length >= this.maxOps) {
      void this.cut()
    } else if (this.timer == null && !this.busy) {
      // maxWait 0: cut once the current turn of the event loop is over, gathering what it wrote.
      this.timer = this.maxWait === 0
        ? setImmediate(() => { this.timer = undefined; void this.cut() })
        : this.clock.setTimeout(() => { this.timer = undefined; void this.cut() }, this.maxWait)
    }
    // While a batch is being written, operations gather and are cut when it lands.
    await done
  }

  async flush (): Promise<void> {
    await this.cut()
  }

  private busy = false

  /** An empty queue takes a write however large, so nothing waits forever. */
  private fits (n: number): boolean {
    return this.queuedOps === 0 || this.queuedOps + n <= this.maxQueued
  }

  /** Let waiting writers in, first come first served, while there is room. */
  private admitWaiting (): void {
    while (this.roomWaiters.length > 0 && this.fits(this.roomWaiters[0].n)) {
      const w = this.roomWaiters.shift() as { n: number, resolve: () => void }
      this.queuedOps += w.n
      w.resolve()
    }
  }

  private async cut (): Promise<void> {
    if (this.timer != null) {
      if (this.maxWait === 0) clearImmediate(this.timer as NodeJS.Immediate)
      else this.clock.clearTimeout(this.timer)
      this.timer = undefined
    }
    const ops = this.pending
    const counted = ops.length
    if (ops.length > 0) for (const hook of this.hooks) for (const op of hook()) ops.push(op)
    const waiters = this.waiters
    this.pending = []
    this.waiters = []
    const previous = this.writing
    const write = (async () => {
      await previous.catch(() => {})
      if (ops.length === 0) return
      this.busy = true
      try {
        await this.store.writeNow(ops)
      } finally {
        this.busy = false
      }
    })()
    this.writing = write
    try {
      await write
      for (const w of waiters) w.resolve()
    } catch (err: any) {
      for (const w of waiters) w.reject(err)
    } finally {
      this.queuedOps -= counted
      this.admitWaiting()
    }
    // What gathered during the write goes next.
    if (this.pending.length > 0 && this.timer == null && !this.busy) void this.cut()
  }
}

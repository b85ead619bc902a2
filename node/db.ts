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
}

export class Store {
  readonly db: Level<string, any>
  readonly subs: Record<SublevelName, Sub>
  private readonly batcher: WriteBatcher

  constructor (dir: string, init: StoreInit = {}) {
    this.db = new Level<string, any>(dir, { keyEncoding: 'utf8', valueEncoding: msgpackEncoding as any, createIfMissing: init.createIfMissing ?? true })
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
}

/**
 * Group commit: operations from many callers go into one LevelDB batch, written after `maxOps`
 * operations or `maxWait` ms. Batches are written one at a time, in the order they were filled,
 * so a later write never lands before an earlier one.
 */
export class WriteBatcher {
  readonly hooks: Array<() => BatchOp[]> = []
  private pending: BatchOp[] = []
  private waiters: Array<{ resolve: () => void, reject: (err: Error) => void }> = []
  private timer: unknown
  private writing: Promise<void> = Promise.resolve()
  private readonly maxOps: number
  private readonly maxWait: number
  private readonly clock: Clock

  constructor (private readonly store: Store, init: StoreInit) {
    this.maxOps = init.batchMaxOps ?? C.DEFAULT_BATCH_MAX_OPS
    this.maxWait = init.batchMaxWait ?? C.DEFAULT_BATCH_MAX_WAIT
    this.clock = init.clock ?? systemClock
  }

  async add (ops: BatchOp[]): Promise<void> {
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

  private async cut (): Promise<void> {
    if (this.timer != null) {
      if (this.maxWait === 0) clearImmediate(this.timer as NodeJS.Immediate)
      else this.clock.clearTimeout(this.timer)
      this.timer = undefined
    }
    const ops = this.pending
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
    }
    // What gathered during the write goes next.
    if (this.pending.length > 0 && this.timer == null && !this.busy) void this.cut()
  }
}

import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import debug from 'debug'
import { decodeBody } from './decode.js'
import { parsePage, type ParseOptions } from './parser.js'
import type { ParsedPage } from './types.js'

const log = debug('shoal:parse-pool')

/** Workers by default: one per core beyond the main thread's (0 on one core: parse inline). */
export function defaultParseWorkers (): number {
  return Math.max(0, Math.min(4, availableParallelism() - 1))
}

interface Pending { resolve: (p: ParsedPage) => void, reject: (e: Error) => void }

/**
 * Parsing off the main thread. The tokenizer and URL resolution are the largest share of a page's
 * CPU; on a machine with more than one core they run in worker threads while the main thread
 * fetches, routes and writes. With 0 workers, pages are parsed inline. Each worker takes the next
 * page when it has fewer in hand than the others (least loaded).
 */
export class ParsePool {
  private readonly workers: Array<{ worker: Worker, load: number, ids: Set<number> }> = []
  private readonly pending = new Map<number, Pending>()
  private nextId = 1

  constructor (readonly size: number = defaultParseWorkers()) {}

  start (): void {
    // Running from TypeScript sources (tsx): the worker needs the same loader.
    const ts = import.meta.url.endsWith('.ts')
    const url = new URL(ts ? './parse-worker-boot.mjs' : './parse-worker.js', import.meta.url)
    for (let i = 0; i < this.size; i++) {
      const worker = new Worker(url)
      const slot = { worker, load: 0, ids: new Set<number>() }
      worker.on('message', (msg: { id: number, page?: ParsedPage, error?: string }) => {
        slot.load--
        slot.ids.delete(msg.id)
        const p = this.pending.get(msg.id)
        if (p == null) return
        this.pending.delete(msg.id)
        if (msg.page != null) p.resolve(msg.page)
        else p.reject(new Error(msg.error ?? 'parse worker failed'))
      })
      worker.on('error', (err) => {
        // A worker that dies takes its pages with it: fail them (they are retried on restart) and
        // parse on the main thread from now on rather than hang.
        log.extend('error')('parse worker %d: %s', i, err.message)
        const idx = this.workers.indexOf(slot)
        if (idx !== -1) this.workers.splice(idx, 1)
        for (const id of slot.ids) {
          this.pending.get(id)?.reject(new Error(`parse worker failed: ${err.message}`))
          this.pending.delete(id)
        }
      })
      this.workers.push(slot)
    }
  }

  async parse (body: Uint8Array, contentType: string | undefined, url: string, opts: ParseOptions): Promise<ParsedPage> {
    if (this.workers.length === 0) return parsePage(decodeBody(contentType, body), url, opts)
    let slot = this.workers[0]
    for (const w of this.workers) if (w.load < slot.load) slot = w
    const id = this.nextId++
    slot.load++
    slot.ids.add(id)
    return await new Promise<ParsedPage>((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      slot.worker.postMessage({ id, body, contentType, url, opts })
    })
  }

  async stop (): Promise<void> {
    for (const p of this.pending.values()) p.reject(new Error('parse pool stopped'))
    this.pending.clear()
    await Promise.all(this.workers.splice(0).map(async w => await w.worker.terminate()))
  }
}

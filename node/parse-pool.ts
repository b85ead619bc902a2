import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { projectRoot } from './paths.js'
import { Worker } from 'node:worker_threads'
import debug from 'debug'
import { decodeBody } from './decode.js'
import { detach, parsePage, type ParseOptions } from './parser.js'
import { RepeatFilter } from './recent.js'
import type { ParsedPage } from './types.js'

const log = debug('shoal:parse-pool')

/** Workers by default: one per core beyond the main thread's (0 on one core: parse inline). */
export function defaultParseWorkers (): number {
  return Math.max(0, Math.min(4, availableParallelism() - 1))
}

/** The young generation of a parse worker's heap, MiB (see `start`). */
const WORKER_YOUNG_GENERATION_MB = 16

interface Pending {
  resolve: (p: ParsedPage) => void
  reject: (e: Error) => void
  /** What the worker was sent, to parse it again elsewhere if the worker dies. */
  contentType: string | undefined
  url: string
  opts: ParseOptions
  now?: number
  /** The body itself, or, when the caller can give it back (`reload`), how to get it again. */
  body: Uint8Array | (() => Promise<Uint8Array>)
}

/** Links each parse thread remembers having handed on (`RepeatFilter`); size 0: none. */
export interface RepeatsInit { size: number, recrawlAfter?: number }

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

  /** The inline parse's filter (with 0 workers); each worker has its own. */
  private readonly inlineRepeats: RepeatFilter

  constructor (readonly size: number = defaultParseWorkers(), private readonly repeats: RepeatsInit = { size: 0 }) {
    this.inlineRepeats = new RepeatFilter(repeats.size, repeats.recrawlAfter ?? Infinity)
  }

  /** The file the workers run (undefined with 0 workers). */
  script: string | undefined

  async start (): Promise<void> {
    if (this.size === 0) return
    const url = await workerEntry()
    this.script = fileURLToPath(url)
    for (let i = 0; i < this.size; i++) {
      // A worker's garbage is a page's tokens, strings and link URLs, dead by the next page. 16 MiB
      // of young generation (V8's default would be 48) lets most of it die there: at 4 MiB it was
      // promoted and kept the old generation collecting, which with a 50 % heap growth
      // (gc-tuning.ts) cost ~15 % pages/s on 30 KB pages for 5 MB less resident memory.
      const worker = new Worker(url, {
        resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
        workerData: { repeats: { size: this.repeats.size, recrawlAfter: this.repeats.recrawlAfter ?? Infinity } }
      })
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
      // A worker that dies (or never starts: its script is missing) is said on stderr; the pages it
      // held are parsed again by the others or, when none is left, here on the main thread, as
      // every page after them: slower, nothing lost.
      const lost = (why: string): void => {
        const idx = this.workers.indexOf(slot)
        if (idx === -1) return // stopped, or already lost
        this.workers.splice(idx, 1)
        log.extend('error')('parse worker %d: %s', i, why)
        process.emitWarning(`parse worker ${i} ${why}; ${this.workers.length > 0 ? 'the other workers take its pages' : 'parsing on the main thread'}`, { code: 'SHOAL_PARSE_WORKER' })
        for (const id of slot.ids) {
          const p = this.pending.get(id)
          this.pending.delete(id)
          if (p === undefined) continue
          const { body, contentType, url, opts, now } = p
          const again = typeof body === 'function'
            ? body().then(async (bytes) => await this.parse(bytes, contentType, url, opts, now, body))
            : this.parse(body, contentType, url, opts, now)
          again.then(p.resolve, p.reject)
        }
        slot.ids.clear()
      }
      worker.on('error', (err) => { lost(`failed (${err.message})`) })
      worker.on('exit', (code) => { lost(`exited (code ${code})`) })
      this.workers.push(slot)
    }
  }

  /**
   * Parse a page. With `now`, the links the thread handed on recently (within `recrawlAfter` of
   * `now`) are dropped, and the rest remembered: pass it only when the links will be routed.
   *
   * A page handed to a worker is kept until the worker answers, to parse it again should the
   * worker die. With `reload` (the body as stored, read back), the pool keeps that instead: a
   * ~30 KB body held for the whole round trip through a busy worker outlives the main thread's
   * young-generation collections, and the socket buffers it pins then wait for full collections
   * (on the 30 KB-page crawl of BENCHMARKS.md §1, half of the main thread's mark-compacts).
   */
  parse (body: Uint8Array, contentType: string | undefined, url: string, opts: ParseOptions, now?: number, reload?: () => Promise<Uint8Array>): Promise<ParsedPage> {
    // Not an async function, and `body` is in no closure: a suspended frame would hold it until the
    // worker answers.
    if (this.workers.length === 0) {
      try {
        const page = parsePage(decodeBody(contentType, body), url, opts, now === undefined ? undefined : { filter: this.inlineRepeats, now })
        detachPage(page)
        return Promise.resolve(page)
      } catch (err: any) {
        return Promise.reject(err)
      }
    }
    let slot = this.workers[0]
    for (const w of this.workers) if (w.load < slot.load) slot = w
    const id = this.nextId++
    try {
      slot.worker.postMessage({ id, body, contentType, url, opts, now })
    } catch (err: any) {
      return Promise.reject(err) // options that cannot be cloned
    }
    slot.load++
    slot.ids.add(id)
    return new Promise<ParsedPage>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, contentType, url, opts, now, body: reload ?? body })
    })
  }

  /**
   * Forget the links every thread handed on (the scope widened: links the router refused as out of
   * scope before, and the threads remembered, may now be crawlable).
   */
  forgetRepeats (): void {
    this.inlineRepeats.clear()
    for (const w of this.workers) w.worker.postMessage({ forget: true })
  }

  async stop (): Promise<void> {
    for (const p of this.pending.values()) p.reject(new Error('parse pool stopped'))
    this.pending.clear()
    await Promise.all(this.workers.splice(0).map(async w => await w.worker.terminate()))
  }
}

/**
 * Detach what a page parsed inline hands on (its links, extracted fields) from the page's HTML (see
 * `detach`). On the crawl of 30 KB pages parsed inline, links that held their pages kept them alive
 * into the old generation: full collections every ~0.5 s instead of ~1.3, and 8–35 % more CPU a page
 * (bench/hot-path.ts, alternating runs). A worker's links cross by structured clone, which copies.
 */
function detachPage (page: ParsedPage): void {
  const links = page.links
  for (let i = 0; i < links.length; i++) links[i] = detach(links[i])
  if (page.fields !== undefined) {
    for (const [k, v] of Object.entries(page.fields)) page.fields[k] = typeof v === 'string' ? detach(v) : v.map(detach)
  }
}

let entry: Promise<URL> | undefined

/**
 * The script a parse worker runs. From compiled JavaScript (dist/, the launcher's bundle),
 * dist/parse-worker.js. From the TypeScript sources (tests, benches), a
 * worker does not inherit the main thread's loader, and a loader of its own is another thread and
 * ~15–20 MB of resident memory per worker: so it runs the launcher's bundle (bin/bundle.mjs, built
 * if the sources changed) unless SHOAL_NO_BUNDLE=1 or bundling fails; then it boots tsx itself
 * (parse-worker-boot.mjs).
 */
async function workerEntry (): Promise<URL> {
  if (!import.meta.url.endsWith('.ts')) return pathToFileURL(join(projectRoot(import.meta.url), 'dist', 'parse-worker.js'))
  const boot = new URL('./parse-worker-boot.mjs', import.meta.url)
  if (process.env.SHOAL_NO_BUNDLE === '1') return boot
  entry ??= import('../bin/bundle.mjs')
    .then(async ({ ensureBundle }) => pathToFileURL(join(await ensureBundle(), 'parse-worker.js')))
    .catch((err: any) => {
      log('bundling the parse worker failed (%s): it loads tsx instead', err.message)
      return boot
    })
  return await entry
}

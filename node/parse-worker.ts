/**
 * A parse worker: decodes and parses HTML off the main thread (see parse-pool.ts). Receives
 * `{ id, body, contentType, url, opts, now? }`, answers `{ id, page }` or `{ id, error }`;
 * `{ forget: true }` empties its repeat filter.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { decodeBody } from './decode.js'
import { parsePage, type ParseOptions } from './parser.js'
import { RepeatFilter } from './recent.js'

/** `now`: drop the links this thread handed on recently (see parse-pool.ts); absent: keep all. */
interface Job { id: number, body: Uint8Array, contentType?: string, url: string, opts: ParseOptions, now?: number }

const init = (workerData ?? {}) as { repeats?: { size: number, recrawlAfter: number } }
const repeats = new RepeatFilter(init.repeats?.size ?? 0, init.repeats?.recrawlAfter ?? Infinity)

parentPort?.on('message', (job: Job | { forget: true }) => {
  if ('forget' in job) {
    repeats.clear()
    return
  }
  try {
    const page = parsePage(decodeBody(job.contentType, job.body), job.url, job.opts, job.now === undefined ? undefined : { filter: repeats, now: job.now })
    parentPort?.postMessage({ id: job.id, page })
  } catch (err: any) {
    parentPort?.postMessage({ id: job.id, error: String(err?.message ?? err) })
  }
})

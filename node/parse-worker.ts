/**
 * A parse worker: decodes and parses HTML off the main thread (see parse-pool.ts). Receives
 * `{ id, body, contentType, url, opts }`, answers `{ id, page }` or `{ id, error }`.
 */
import { parentPort } from 'node:worker_threads'
import { decodeBody } from './decode.js'
import { parsePage, type ParseOptions } from './parser.js'

interface Job { id: number, body: Uint8Array, contentType?: string, url: string, opts: ParseOptions }

parentPort?.on('message', (job: Job) => {
  try {
    const page = parsePage(decodeBody(job.contentType, job.body), job.url, job.opts)
    parentPort?.postMessage({ id: job.id, page })
  } catch (err: any) {
    parentPort?.postMessage({ id: job.id, error: String(err?.message ?? err) })
  }
})

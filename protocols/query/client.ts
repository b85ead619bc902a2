/**
 * The client side of `/shoal/query/1.0.0`: ask one peer for a URL's record, and its body.
 *
 * One stream per query: dial, send the `get`, close our end, read the answer. `timeout` bounds
 * each step (the dial, then each frame) and is reset after each, so a large body on a slow link
 * is fine while a silent peer fails fast; the caller's `signal` bounds the whole. The body is
 * checked against the record's CID before it is handed over.
 */
import '../../node/polyfills.js'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import debug from 'debug'
import { cidOf } from '../../node/blocks.js'
import { AbortError } from '../../node/errors.js'
import { second } from '../../node/constants.js'
import { decodeMessage, encodeFrame } from './codec.js'
import {
  CLOSE_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_URL_LENGTH, DEFAULT_TIMEOUT, MAX_BODY_BYTES, MAX_CHUNK_BYTES,
  MAX_ID, MAX_RESPONSE_BYTES, MAX_URL_LENGTH, PROTOCOL
} from './constants.js'
import {
  InvalidQueryError, QueryBodyMismatchError, QueryBodyTooLargeError, QueryProtocolError, QueryRemoteError,
  QueryTimeoutError, QueryUnreachableError
} from './errors.js'
import { MALFORMED, asError, messageOf, reapUnlessClosed } from './streams.js'
import type { MessageLimits, Response } from './messages.js'
import type { UrlRecord } from '../../node/types.js'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'

const trace = debug('shoal:query:trace')

export interface QueryOptions {
  /** Ask for the stored body too (sent only when the record has a CID). @default false */
  body?: boolean
  /** Aborts the whole query; it then rejects with an `AbortError`. */
  signal?: AbortSignal
  /** Milliseconds for each step: the dial, the first frame, each next frame. @default 10000 */
  timeout?: number
  /** Bytes of body accepted; a larger one rejects with `QueryBodyTooLargeError`. @default 21 MiB */
  maxBodyBytes?: number
  /** Characters of the URL, and of the URLs in the record. @default 2048 */
  maxUrlLength?: number
}

export interface QueryResult {
  /** The URL's record, when the peer has one. */
  record?: UrlRecord
  /** Why there is no record ('never seen', 'queued', 'in flight', 'failed: …'), or the peer's note on it. */
  verdict: string
  /** The stored body, verified against `record.cid`; only when asked for and the record has a CID. */
  body?: Uint8Array
}

interface Options {
  body: boolean
  timeout: number
  maxBodyBytes: number
  maxUrlLength: number
}

function integer (name: string, value: number | undefined, def: number, min: number, max: number, unit = ''): number {
  const v = value ?? def
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidQueryError(`${name} must be an integer from ${min} to ${max}${unit}, got ${String(value)}`)
  }
  return v
}

function resolveOptions (o: QueryOptions): Options {
  if (o.body !== undefined && typeof o.body !== 'boolean') throw new InvalidQueryError(`body must be a boolean, got ${typeof o.body}`)
  return {
    body: o.body ?? false,
    timeout: integer('timeout', o.timeout, DEFAULT_TIMEOUT, 1, 3600 * second, ' ms'),
    maxBodyBytes: integer('maxBodyBytes', o.maxBodyBytes, DEFAULT_MAX_BODY_BYTES, 1, MAX_BODY_BYTES, ' bytes'),
    maxUrlLength: integer('maxUrlLength', o.maxUrlLength, DEFAULT_MAX_URL_LENGTH, 16, MAX_URL_LENGTH, ' characters')
  }
}

function toPeerId (peer: PeerId | string): PeerId {
  if (typeof peer !== 'string') return peer
  try {
    return peerIdFromString(peer)
  } catch (err) {
    throw new InvalidQueryError(`${JSON.stringify(peer.slice(0, 100))} is not a peer id`)
  }
}

function concat (chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total)
  let off = 0
  for (const c of chunks) {
    out.set(c, off)
    off += c.byteLength
  }
  return out
}

/**
 * Ask `peer` for the record of `url` (and its body with `{ body: true }`).
 *
 * Resolves with the record, or none and the peer's verdict. Rejects with a named error: a
 * `QueryTimeoutError`, `QueryUnreachableError` (both retryable), `QueryProtocolError`,
 * `QueryRemoteError` (retryable as the peer says), `QueryBodyMismatchError`,
 * `QueryBodyTooLargeError`, `InvalidQueryError` or, when `signal` aborts, `AbortError`.
 */
export async function queryPeer (libp2p: Pick<Libp2p, 'dialProtocol'>, peer: PeerId | string, url: string, options: QueryOptions = {}): Promise<QueryResult> {
  const opts = resolveOptions(options)
  if (typeof url !== 'string' || url.length === 0) throw new InvalidQueryError('url must be a non-empty string')
  if (url.length > opts.maxUrlLength) throw new InvalidQueryError(`url is longer than maxUrlLength (${opts.maxUrlLength} characters)`)
  const peerId = toPeerId(peer)
  const who = peerId.toString()
  const caller = options.signal
  if (caller?.aborted === true) throw new AbortError('the query was aborted')

  // One controller for every wait of this query: aborted by the step timer or the caller's signal.
  const controller = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    controller.abort(new Error(`timed out after ${opts.timeout} ms`))
  }, opts.timeout)
  const onCallerAbort = (): void => { controller.abort(caller?.reason) }
  caller?.addEventListener('abort', onCallerAbort, { once: true })
  const signal = controller.signal
  /** What is being waited for, for the error messages. */
  let step = `no connection to ${who}`

  /** The error to reject with when a wait was cut short or failed. */
  const failure = (err: unknown, unreachable: (msg: string) => string): Error => {
    if (caller?.aborted === true) {
      const e = new AbortError('the query was aborted')
      e.cause = caller.reason
      return e
    }
    if (timedOut) return new QueryTimeoutError(`${step} within ${opts.timeout} ms`, { peer: who, cause: err })
    if (MALFORMED.has((err as Error)?.name)) return new QueryProtocolError(`${who} sent a malformed answer: ${messageOf(err)}`, { peer: who, cause: err })
    return new QueryUnreachableError(unreachable(messageOf(err)), { peer: who, cause: err })
  }

  let stream: Stream
  try {
    stream = await libp2p.dialProtocol(peerId, PROTOCOL, { signal })
  } catch (err) {
    clearTimeout(timer)
    caller?.removeEventListener('abort', onCallerAbort)
    throw failure(err, m => `cannot open a query stream to ${who}: ${m}`)
  }
  timer.refresh()

  const id = Math.floor(Math.random() * (MAX_ID + 1))
  const limits: MessageLimits = { maxUrlLength: opts.maxUrlLength, maxChunkBytes: MAX_CHUNK_BYTES, maxBodyBytes: opts.maxBodyBytes }
  const lp = lpStream(stream, { maxDataLength: MAX_RESPONSE_BYTES })
  const protocolError = (message: string): QueryProtocolError => new QueryProtocolError(`${who} broke the query protocol: ${message}`, { peer: who })

  const next = async (): Promise<Response> => {
    const buf = await lp.read({ signal })
    timer.refresh()
    const msg = decodeMessage(buf, limits)
    if (msg.t === 'get') throw protocolError('a get message is not an answer')
    if (msg.id !== id) throw protocolError(`an answer to query ${msg.id}, not to ${id}`)
    return msg
  }

  try {
    try {
      step = `no answer from ${who}`
      // One small frame: no need to wait for 'drain' before it, and close() waits until it is written.
      stream.send(encodeFrame({ t: 'get', id, url, body: opts.body }))
      // Half-close: one request per stream, so the server sees at once that nothing more is coming.
      await stream.close({ signal })
      const first = await next()
      if (first.t === 'error') throw new QueryRemoteError(`${who} could not answer for ${url}: ${first.error}`, { peer: who, retryable: first.retry ?? false })
      if (first.t !== 'record') throw protocolError(`a ${first.t} message came before the record`)
      const result: QueryResult = { verdict: first.verdict }
      const record = first.record
      if (record != null) result.record = record
      if (!opts.body || record?.cid == null) {
        trace('%s from %s: %s', url, who, record?.status ?? first.verdict)
        reapUnlessClosed(stream, CLOSE_TIMEOUT)
        return result
      }
      if (record.size != null && record.size > opts.maxBodyBytes) {
        throw new QueryBodyTooLargeError(`the body of ${url} has ${record.size} bytes, more than maxBodyBytes (${opts.maxBodyBytes})`, { peer: who, record })
      }

      step = `no further body chunk from ${who}`
      const chunks: Uint8Array[] = []
      let total = 0
      while (true) {
        const msg = await next()
        if (msg.t === 'chunk') {
          total += msg.data.byteLength
          if (total > opts.maxBodyBytes) {
            throw new QueryBodyTooLargeError(`the body of ${url} is larger than maxBodyBytes (${opts.maxBodyBytes})`, { peer: who, record })
          }
          chunks.push(msg.data)
        } else if (msg.t === 'end') {
          if (msg.bytes !== total) throw protocolError(`the body ends at ${total} bytes, the end message says ${msg.bytes}`)
          break
        } else if (msg.t === 'error') {
          throw new QueryRemoteError(`${who} could not send the body of ${url}: ${msg.error}`, { peer: who, retryable: msg.retry ?? false, record })
        } else {
          throw protocolError(`a ${msg.t} message in the body`)
        }
      }
      reapUnlessClosed(stream, CLOSE_TIMEOUT)
      const body = concat(chunks, total)
      const actual = cidOf(body)
      if (actual !== record.cid) {
        throw new QueryBodyMismatchError(`the body of ${url} from ${who} hashes to ${actual}, not to the record's ${record.cid}`, { peer: who, expected: record.cid, actual, record })
      }
      trace('%s from %s: %d bytes in %d chunks', url, who, total, chunks.length)
      result.body = body
      return result
    } catch (err: any) {
      if (err?.name === 'QueryRemoteError' || err?.name === 'QueryBodyMismatchError') {
        // The peer did its part of the protocol: let it close the stream.
        reapUnlessClosed(stream, CLOSE_TIMEOUT)
        throw err
      }
      if (stream.status === 'open') stream.abort(asError(err))
      if (typeof err?.name === 'string' && err.name.startsWith('Query')) throw err
      if (err?.name === 'UnexpectedEOFError' && !signal.aborted) {
        throw new QueryUnreachableError(`${who} closed the stream before the answer was complete`, { peer: who, cause: err })
      }
      throw failure(err, m => `lost the query stream to ${who}: ${m}`)
    }
  } finally {
    clearTimeout(timer)
    caller?.removeEventListener('abort', onCallerAbort)
  }
}

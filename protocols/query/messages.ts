/**
 * The messages of `/shoal/query/1.0.0` and their validation: every decoded value is checked for
 * its type and held to a cap (strings, lists, maps, byte arrays), so a small frame can't decode
 * into something huge and a peer can't hand us a record that breaks our own types.
 */
import {
  MAX_CID_LENGTH, MAX_COUNT_VALUE, MAX_DEPTH_VALUE, MAX_ERROR_LENGTH, MAX_FIELD_NAME_LENGTH, MAX_FIELD_VALUE_LENGTH,
  MAX_FIELD_VALUES, MAX_FIELDS, MAX_FIELDS_LENGTH, MAX_HEADER_VALUE_LENGTH, MAX_HTTP_STATUS, MAX_ID,
  MAX_RECORD_ERROR_LENGTH, MAX_REDIRECT_LENGTH, MAX_VERDICT_LENGTH
} from './constants.js'
import { InvalidMessageError } from './errors.js'
import { describe, fieldChecks, type Fields } from '../batch/validate.js'
import type { RecordStatus, UrlRecord } from '../../node/types.js'

const { isFields, int, str, nonEmpty, bool } = fieldChecks(InvalidMessageError)

/** Ask for the record of `url`, and its stored body when `body`. */
export interface GetMessage { t: 'get', id: number, url: string, body: boolean }
/** The record of the URL asked for, or `null` and a `verdict` that says why there is none. */
export interface RecordMessage { t: 'record', id: number, record: UrlRecord | null, verdict: string }
/** A piece of the body (1 byte to `maxChunkBytes`), in order. */
export interface ChunkMessage { t: 'chunk', id: number, data: Uint8Array }
/** The body is complete: `bytes` in all. */
export interface EndMessage { t: 'end', id: number, bytes: number }
/** The request failed, before or after the record; `retry` (absent: false) says whether asking again may succeed. */
export interface ErrorMessage { t: 'error', id: number, error: string, retry?: boolean }

export type Request = GetMessage
export type Response = RecordMessage | ChunkMessage | EndMessage | ErrorMessage
export type Message = Request | Response
export type MessageType = Message['t']

/** What a decoded message may hold, beyond the byte cap of its frame. */
export interface MessageLimits {
  /** Characters of the URL asked for, of `record.url` and `record.referrer`. */
  maxUrlLength: number
  /** Bytes of one chunk. */
  maxChunkBytes: number
  /** Bytes of a whole body (`end.bytes`). */
  maxBodyBytes: number
}


const STATUSES: ReadonlySet<RecordStatus> = new Set<RecordStatus>(['fetched', 'not-modified', 'redirect', 'http-error', 'failed', 'blocked'])







function validateFields (v: unknown): Record<string, string | string[]> {
  if (!isFields(v)) throw new InvalidMessageError(`record.fields must be a map, got ${describe(v)}`)
  const keys = Object.keys(v)
  if (keys.length > MAX_FIELDS) throw new InvalidMessageError(`record.fields holds ${keys.length} fields, more than ${MAX_FIELDS}`)
  const out: Record<string, string | string[]> = {}
  let total = 0
  for (const k of keys) {
    if (k.length > MAX_FIELD_NAME_LENGTH) throw new InvalidMessageError(`a name in record.fields is longer than ${MAX_FIELD_NAME_LENGTH} characters (${k.length})`)
    // Assigning it would set the prototype, or be dropped: refuse it rather than lose it silently.
    if (k === '__proto__') throw new InvalidMessageError('record.fields must not hold a field named __proto__')
    const what = `record.fields[${JSON.stringify(k)}]`
    const value = v[k]
    total += k.length
    if (Array.isArray(value)) {
      if (value.length > MAX_FIELD_VALUES) throw new InvalidMessageError(`${what} holds ${value.length} values, more than ${MAX_FIELD_VALUES}`)
      for (let i = 0; i < value.length; i++) total += str(value[i], MAX_FIELD_VALUE_LENGTH, `${what}[${i}]`).length
      out[k] = value as string[]
    } else {
      out[k] = str(value, MAX_FIELD_VALUE_LENGTH, what)
      total += out[k].length
    }
    if (total > MAX_FIELDS_LENGTH) throw new InvalidMessageError(`record.fields holds more than ${MAX_FIELDS_LENGTH} characters`)
  }
  return out
}

/**
 * Check a record against the `UrlRecord` type and the caps; returns a fresh object holding only the
 * known fields (an unknown one, from a later version, is dropped). An absent optional field may be
 * `undefined` or missing, never `null`.
 */
export function validateRecord (v: unknown, limits: Pick<MessageLimits, 'maxUrlLength'>): UrlRecord {
  if (!isFields(v)) throw new InvalidMessageError(`record must be a map or null, got ${describe(v)}`)
  const status = v.status
  if (typeof status !== 'string' || !STATUSES.has(status as RecordStatus)) {
    throw new InvalidMessageError(`record.status must be one of ${[...STATUSES].join(', ')}, got ${typeof status === 'string' ? JSON.stringify(status.slice(0, 32)) : describe(status)}`)
  }
  const fetchedAt = v.fetchedAt
  // A virtual clock (the simulator's) may hand out fractions of a millisecond.
  if (typeof fetchedAt !== 'number' || !Number.isFinite(fetchedAt) || fetchedAt < 0 || fetchedAt > Number.MAX_SAFE_INTEGER) {
    throw new InvalidMessageError(`record.fetchedAt must be a time in ms since the epoch, got ${describe(fetchedAt)}`)
  }
  const r: UrlRecord = {
    url: nonEmpty(v.url, limits.maxUrlLength, 'record.url'),
    status: status as RecordStatus,
    fetchedAt,
    depth: int(v.depth, 0, MAX_DEPTH_VALUE, 'record.depth')
  }
  if (v.httpStatus !== undefined) r.httpStatus = int(v.httpStatus, 0, MAX_HTTP_STATUS, 'record.httpStatus')
  if (v.cid !== undefined) r.cid = nonEmpty(v.cid, MAX_CID_LENGTH, 'record.cid')
  if (v.contentType !== undefined) r.contentType = str(v.contentType, MAX_HEADER_VALUE_LENGTH, 'record.contentType')
  // Not held to maxBodyBytes: a record of a body too large for us to fetch is still a valid answer.
  if (v.size !== undefined) r.size = int(v.size, 0, Number.MAX_SAFE_INTEGER, 'record.size')
  if (v.etag !== undefined) r.etag = str(v.etag, MAX_HEADER_VALUE_LENGTH, 'record.etag')
  if (v.lastModified !== undefined) r.lastModified = str(v.lastModified, MAX_HEADER_VALUE_LENGTH, 'record.lastModified')
  if (v.referrer !== undefined) r.referrer = str(v.referrer, limits.maxUrlLength, 'record.referrer')
  if (v.redirectTo !== undefined) r.redirectTo = str(v.redirectTo, MAX_REDIRECT_LENGTH, 'record.redirectTo')
  if (v.error !== undefined) r.error = str(v.error, MAX_RECORD_ERROR_LENGTH, 'record.error')
  if (v.attempts !== undefined) r.attempts = int(v.attempts, 0, MAX_COUNT_VALUE, 'record.attempts')
  if (v.links !== undefined) r.links = int(v.links, 0, MAX_COUNT_VALUE, 'record.links')
  if (v.noindex !== undefined) r.noindex = bool(v.noindex, 'record.noindex')
  if (v.fields !== undefined) r.fields = validateFields(v.fields)
  return r
}

function validateGet (m: Fields, limits: MessageLimits): GetMessage {
  return { t: 'get', id: int(m.id, 0, MAX_ID, 'id'), url: nonEmpty(m.url, limits.maxUrlLength, 'url'), body: bool(m.body, 'body') }
}

function validateRecordMessage (m: Fields, limits: MessageLimits): RecordMessage {
  const id = int(m.id, 0, MAX_ID, 'id')
  const verdict = str(m.verdict, MAX_VERDICT_LENGTH, 'verdict')
  return { t: 'record', id, record: m.record === null ? null : validateRecord(m.record, limits), verdict }
}

function validateChunk (m: Fields, limits: MessageLimits): ChunkMessage {
  const id = int(m.id, 0, MAX_ID, 'id')
  const data = m.data
  if (!(data instanceof Uint8Array)) throw new InvalidMessageError(`data must be bytes, got ${describe(data)}`)
  // An empty chunk carries nothing and would let a peer hold a stream open forever, each one resetting our timer.
  if (data.byteLength === 0) throw new InvalidMessageError('data must not be empty')
  if (data.byteLength > limits.maxChunkBytes) throw new InvalidMessageError(`data holds ${data.byteLength} bytes, more than maxChunkBytes (${limits.maxChunkBytes})`)
  return { t: 'chunk', id, data }
}

function validateEnd (m: Fields, limits: MessageLimits): EndMessage {
  return { t: 'end', id: int(m.id, 0, MAX_ID, 'id'), bytes: int(m.bytes, 0, limits.maxBodyBytes, 'bytes') }
}

function validateError (m: Fields): ErrorMessage {
  const msg: ErrorMessage = { t: 'error', id: int(m.id, 0, MAX_ID, 'id'), error: str(m.error, MAX_ERROR_LENGTH, 'error') }
  if (m.retry !== undefined) msg.retry = bool(m.retry, 'retry')
  return msg
}

/** One validator per message type. Each builds a fresh object holding only the known fields. */
const validators: { [T in MessageType]: (m: Fields, limits: MessageLimits) => Extract<Message, { t: T }> } = {
  get: validateGet,
  record: validateRecordMessage,
  chunk: validateChunk,
  end: validateEnd,
  error: validateError
}

/**
 * Check a decoded value against the message types and the caps in `limits`. Throws
 * `InvalidMessageError` naming the first field at fault; never truncates.
 */
export function validateMessage (value: unknown, limits: MessageLimits): Message {
  if (!isFields(value)) throw new InvalidMessageError(`a message must be a map, got ${describe(value)}`)
  const t = value.t
  if (typeof t !== 'string' || !Object.hasOwn(validators, t)) {
    throw new InvalidMessageError(`unknown message type ${typeof t === 'string' ? JSON.stringify(t.slice(0, 32)) : describe(t)}`)
  }
  return validators[t as MessageType](value, limits)
}

/** `s` cut to `max` characters, for free text (verdicts, error messages) we send. */
export function clip (s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max - 1) + '…'
}

/**
 * The messages of `/shoal/meta/1.0.0` and their validation.
 *
 * An apply message carries ops, each a short-keyed map (the names are on the wire once per op):
 *
 *   { k: 'entry', h, key, u, d, r?, x? }   a queued URL `u` of host `h` under frontier key `key`
 *   { k: 'done', h, key, rec }             that entry's page is done: store `rec`, drop the entry,
 *                                          mark `rec.url` seen at `rec.fetchedAt`
 *   { k: 'seen', u, at }                   a seen mark only (a host's old owner hands off what it fetched)
 *   { k: 'record', rec }                   a record only (hand-off, repair)
 *   { k: 'drop', h }                       the sender says this peer need not hold host `h` any more
 *   { k: 'handed', h }                     a host's previous owner has sent everything it held of `h`
 *
 * Every decoded op is checked for its types and held to caps (string lengths, number ranges, the
 * record's fields through the query protocol's `validateRecord`), and rebuilt holding only the
 * known fields. A value that breaks a cap is refused, never truncated.
 */
import { validateRecord } from '../query/messages.js'
import { MAX_DEPTH_VALUE, MAX_ERROR_LENGTH, MAX_ID, MAX_REDIRECTS_VALUE } from './constants.js'
import { InvalidMessageError } from './errors.js'
import { describe, fieldChecks, type Fields } from '../batch/validate.js'
import type { UrlRecord } from '../../node/types.js'

const { isFields, int, str, nonEmpty } = fieldChecks(InvalidMessageError)

/** A queued URL of host `h`, under frontier key `key`: depth `d`, referrer `r`, redirect hops `x`. */
export interface EntryOp { k: 'entry', h: string, key: string, u: string, d: number, r?: string, x?: number }
/** The page of entry `key` of host `h` is done: store `rec`, remove the entry, mark `rec.url` seen at `rec.fetchedAt`. */
export interface DoneOp { k: 'done', h: string, key: string, rec: UrlRecord }
/** URL `u` was fetched at `at` (ms since the epoch): a seen mark only. */
export interface SeenOp { k: 'seen', u: string, at: number }
/** A record only. */
export interface RecordOp { k: 'record', rec: UrlRecord }
/** This peer is neither owner nor replica of host `h` any more: it may forget it. */
export interface DropOp { k: 'drop', h: string }
/**
 * The previous owner of host `h` has sent its queue, finished what it had in flight and sent its
 * records and seen marks: the new owner may start crawling `h`.
 */
export interface HandedOp { k: 'handed', h: string }

export type Op = EntryOp | DoneOp | SeenOp | RecordOp | DropOp | HandedOp
export type OpKind = Op['k']

/** A batch of ops for the receiver to make durable. */
export interface ApplyMessage { t: 'apply', id: number, ops: Op[] }
/** The batch `id` is durable on the receiver. */
export interface AckMessage { t: 'ack', id: number }
/** The batch `id` was not taken; `retry` says whether sending it again may succeed. */
export interface NackMessage { t: 'nack', id: number, error: string, retry: boolean }

export type Message = ApplyMessage | AckMessage | NackMessage
export type MessageType = Message['t']

/** What a decoded message may hold, beyond the byte cap of its frame. */
export interface MessageLimits {
  /** Ops in one apply message. */
  maxBatchOps: number
  /** Characters of a URL: `u`, `r`, `rec.url`, `rec.referrer`. */
  maxUrlLength: number
  /** Characters of a frontier key. */
  maxKeyLength: number
  /** Characters of a host. */
  maxHostLength: number
}






/** A time in ms since the epoch; fractions allowed (the simulator's virtual clock hands them out). */
function time (v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) {
    throw new InvalidMessageError(`${what} must be a time in ms since the epoch, got ${describe(v)}`)
  }
  return v
}


/** The query protocol's record check, its error renamed to ours and prefixed with the op's place. */
function record (v: unknown, limits: MessageLimits, what: string): UrlRecord {
  try {
    return validateRecord(v, limits)
  } catch (err: any) {
    throw new InvalidMessageError(`${what}: ${String(err?.message ?? err)}`, { cause: err })
  }
}

/** One validator per op kind. Each builds a fresh object holding only the known fields. */
const opValidators: { [K in OpKind]: (o: Fields, limits: MessageLimits, at: string) => Extract<Op, { k: K }> } = {
  entry: (o, limits, at) => {
    const op: EntryOp = {
      k: 'entry',
      h: nonEmpty(o.h, limits.maxHostLength, `${at}.h`),
      key: nonEmpty(o.key, limits.maxKeyLength, `${at}.key`),
      u: nonEmpty(o.u, limits.maxUrlLength, `${at}.u`),
      d: int(o.d, 0, MAX_DEPTH_VALUE, `${at}.d`)
    }
    if (o.r !== undefined) op.r = str(o.r, limits.maxUrlLength, `${at}.r`)
    if (o.x !== undefined) op.x = int(o.x, 0, MAX_REDIRECTS_VALUE, `${at}.x`)
    return op
  },
  done: (o, limits, at) => ({
    k: 'done',
    h: nonEmpty(o.h, limits.maxHostLength, `${at}.h`),
    key: nonEmpty(o.key, limits.maxKeyLength, `${at}.key`),
    rec: record(o.rec, limits, `${at}.rec`)
  }),
  seen: (o, limits, at) => ({ k: 'seen', u: nonEmpty(o.u, limits.maxUrlLength, `${at}.u`), at: time(o.at, `${at}.at`) }),
  record: (o, limits, at) => ({ k: 'record', rec: record(o.rec, limits, `${at}.rec`) }),
  drop: (o, limits, at) => ({ k: 'drop', h: nonEmpty(o.h, limits.maxHostLength, `${at}.h`) }),
  handed: (o, limits, at) => ({ k: 'handed', h: nonEmpty(o.h, limits.maxHostLength, `${at}.h`) })
}

/**
 * Check one op against the op kinds and the caps in `limits`; `at` names it in the error
 * (`ops[3]`). Throws `InvalidMessageError` naming the first field at fault.
 */
export function validateOp (value: unknown, limits: MessageLimits, at = 'op'): Op {
  if (!isFields(value)) throw new InvalidMessageError(`${at} must be a map, got ${describe(value)}`)
  const k = value.k
  if (typeof k !== 'string' || !Object.hasOwn(opValidators, k)) {
    throw new InvalidMessageError(`${at} has an unknown op kind ${typeof k === 'string' ? JSON.stringify(k.slice(0, 32)) : describe(k)}`)
  }
  return opValidators[k as OpKind](value, limits, at)
}

function validateApply (m: Fields, limits: MessageLimits): ApplyMessage {
  const id = int(m.id, 0, MAX_ID, 'id')
  const ops = m.ops
  if (!Array.isArray(ops)) throw new InvalidMessageError(`ops must be an array, got ${describe(ops)}`)
  if (ops.length === 0) throw new InvalidMessageError('ops must hold at least one op')
  if (ops.length > limits.maxBatchOps) throw new InvalidMessageError(`ops holds ${ops.length} ops, more than maxBatchOps (${limits.maxBatchOps})`)
  const out: Op[] = new Array(ops.length)
  for (let i = 0; i < ops.length; i++) out[i] = validateOp(ops[i], limits, `ops[${i}]`)
  return { t: 'apply', id, ops: out }
}

function validateAck (m: Fields): AckMessage {
  return { t: 'ack', id: int(m.id, 0, MAX_ID, 'id') }
}

function validateNack (m: Fields): NackMessage {
  const id = int(m.id, 0, MAX_ID, 'id')
  const error = str(m.error, MAX_ERROR_LENGTH, 'error')
  if (typeof m.retry !== 'boolean') throw new InvalidMessageError(`retry must be a boolean, got ${describe(m.retry)}`)
  return { t: 'nack', id, error, retry: m.retry }
}

/** One validator per message type. */
const validators: { [T in MessageType]: (m: Fields, limits: MessageLimits) => Extract<Message, { t: T }> } = {
  apply: validateApply,
  ack: validateAck,
  nack: validateNack
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

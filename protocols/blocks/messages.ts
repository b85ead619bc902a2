/**
 * The messages of `/shoal/blocks/1.0.0`, their validation, and the reassembly of a block sent in
 * several frames.
 *
 * A block larger than one frame's `maxChunkBytes` travels as its head (`put` or `block`, carrying
 * the first bytes and the block's total `size`) followed by `chunk` frames with the same id. The
 * chunks of a block follow their head at once, in order: nothing else comes between on that
 * stream, so a reader holds at most one block in reassembly, and a sender writes a block's frames
 * one after the other.
 */
import { InvalidMessageError } from './errors.js'
import { describe, fieldChecks, type Fields } from '../batch/validate.js'
import { MAX_CID_LENGTH, MAX_ERROR_LENGTH, MAX_ID } from './constants.js'

const { isFields, int } = fieldChecks(InvalidMessageError)

/** Store `data` (the whole block, or its first bytes when `size` is given) under `cid`. */
export interface PutMessage { t: 'put', id: number, cid: string, data: Uint8Array, size?: number }
/** Which of `cids` does the receiver hold? */
export interface HasMessage { t: 'has', id: number, cids: string[] }
/** The bytes of `cid`, please. */
export interface GetMessage { t: 'get', id: number, cid: string }
/** The next bytes of the block whose head (`put` or `block`) had this id. */
export interface ChunkMessage { t: 'chunk', id: number, data: Uint8Array }
/** The put `id` is durable on the receiver (its block store's put resolved). */
export interface OkMessage { t: 'ok', id: number }
/** The request `id` failed; `retry` says whether asking again (maybe elsewhere) may succeed. */
export interface ErrorMessage { t: 'error', id: number, error: string, retry: boolean }
/** `have[i]`: does the receiver hold `cids[i]` of the has `id`. */
export interface HaveMessage { t: 'have', id: number, have: boolean[] }
/** The block asked for by get `id`: `data` is all of it, or its first bytes when `size` is given. */
export interface BlockMessage { t: 'block', id: number, data: Uint8Array, size?: number }
/** The receiver does not hold the block asked for by get `id`. */
export interface MissingMessage { t: 'missing', id: number }

export type RequestMessage = PutMessage | HasMessage | GetMessage
export type ReplyMessage = OkMessage | ErrorMessage | HaveMessage | BlockMessage | MissingMessage
export type Message = RequestMessage | ReplyMessage | ChunkMessage
export type MessageType = Message['t']

/** What a decoded message may hold, beyond the byte cap of its frame. */
export interface MessageLimits {
  /** Bytes of a whole block (the `size` of a head, or its `data` when it comes in one frame). */
  maxBlockBytes: number
  /** Bytes of block data in one frame. */
  maxChunkBytes: number
  /** CIDs in a `has`, answers in a `have`. */
  maxHasCids: number
}





/** Printable ASCII: every multibase alphabet fits, and a character is one byte on the wire. */
const CID_CHARS = /^[\x21-\x7e]+$/

/** Is `v` a string that can be a CID on this protocol's wire (not whether it parses as one)? */
export function isCidString (v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_CID_LENGTH && CID_CHARS.test(v)
}

function cid (v: unknown, what: string): string {
  if (!isCidString(v)) throw new InvalidMessageError(`${what} must be a CID string of 1 to ${MAX_CID_LENGTH} printable ASCII characters, got ${describe(v)}`)
  return v
}

function bytes (v: unknown, max: number, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new InvalidMessageError(`${what} must be bytes, got ${describe(v)}`)
  if (v.byteLength > max) throw new InvalidMessageError(`${what} holds ${v.byteLength} bytes, more than ${max}`)
  return v
}

/** `data` and the optional `size` of a block's head. */
function head (m: Fields, limits: MessageLimits): { data: Uint8Array, size?: number } {
  const data = bytes(m.data, Math.min(limits.maxChunkBytes, limits.maxBlockBytes), 'data')
  if (m.size === undefined) return { data }
  // Checked before a byte of the rest arrives: a block over the cap is never gathered.
  const size = int(m.size, data.byteLength, limits.maxBlockBytes, 'size')
  return { data, size }
}

function validatePut (m: Fields, limits: MessageLimits): PutMessage {
  const id = int(m.id, 0, MAX_ID, 'id')
  const msg: PutMessage = { t: 'put', id, cid: cid(m.cid, 'cid'), ...head(m, limits) }
  return msg
}

function validateHas (m: Fields, limits: MessageLimits): HasMessage {
  const id = int(m.id, 0, MAX_ID, 'id')
  const cids = m.cids
  if (!Array.isArray(cids)) throw new InvalidMessageError(`cids must be an array, got ${describe(cids)}`)
  if (cids.length === 0) throw new InvalidMessageError('cids must hold at least one CID')
  if (cids.length > limits.maxHasCids) throw new InvalidMessageError(`cids holds ${cids.length} CIDs, more than maxHasCids (${limits.maxHasCids})`)
  for (let i = 0; i < cids.length; i++) cid(cids[i], `cids[${i}]`)
  return { t: 'has', id, cids: cids as string[] }
}

function validateGet (m: Fields): GetMessage {
  return { t: 'get', id: int(m.id, 0, MAX_ID, 'id'), cid: cid(m.cid, 'cid') }
}

function validateChunk (m: Fields, limits: MessageLimits): ChunkMessage {
  const id = int(m.id, 0, MAX_ID, 'id')
  const data = bytes(m.data, limits.maxChunkBytes, 'data')
  if (data.byteLength === 0) throw new InvalidMessageError('a chunk must hold at least one byte')
  return { t: 'chunk', id, data }
}

function validateOk (m: Fields): OkMessage {
  return { t: 'ok', id: int(m.id, 0, MAX_ID, 'id') }
}

function validateError (m: Fields): ErrorMessage {
  const id = int(m.id, 0, MAX_ID, 'id')
  const error = m.error
  if (typeof error !== 'string') throw new InvalidMessageError(`error must be a string, got ${describe(error)}`)
  if (error.length > MAX_ERROR_LENGTH) throw new InvalidMessageError(`error is longer than ${MAX_ERROR_LENGTH} characters (${error.length})`)
  if (typeof m.retry !== 'boolean') throw new InvalidMessageError(`retry must be a boolean, got ${describe(m.retry)}`)
  return { t: 'error', id, error, retry: m.retry }
}

function validateHave (m: Fields, limits: MessageLimits): HaveMessage {
  const id = int(m.id, 0, MAX_ID, 'id')
  const have = m.have
  if (!Array.isArray(have)) throw new InvalidMessageError(`have must be an array, got ${describe(have)}`)
  if (have.length > limits.maxHasCids) throw new InvalidMessageError(`have holds ${have.length} answers, more than maxHasCids (${limits.maxHasCids})`)
  for (let i = 0; i < have.length; i++) {
    if (typeof have[i] !== 'boolean') throw new InvalidMessageError(`have[${i}] must be a boolean, got ${describe(have[i])}`)
  }
  return { t: 'have', id, have: have as boolean[] }
}

function validateBlock (m: Fields, limits: MessageLimits): BlockMessage {
  return { t: 'block', id: int(m.id, 0, MAX_ID, 'id'), ...head(m, limits) }
}

function validateMissing (m: Fields): MissingMessage {
  return { t: 'missing', id: int(m.id, 0, MAX_ID, 'id') }
}

/** One validator per message type. Each builds a fresh object holding only the known fields. */
const validators: { [T in MessageType]: (m: Fields, limits: MessageLimits) => Extract<Message, { t: T }> } = {
  put: validatePut,
  has: validateHas,
  get: validateGet,
  chunk: validateChunk,
  ok: validateOk,
  error: validateError,
  have: validateHave,
  block: validateBlock,
  missing: validateMissing
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

/**
 * A block arriving as a head and chunks. `add` takes the frames that follow the head; anything
 * else before the block is whole, or more bytes than its `size`, breaks the protocol.
 */
export class Assembly<H extends PutMessage | BlockMessage> {
  private readonly parts: Uint8Array[]
  /** Bytes gathered so far. */
  received: number

  constructor (readonly head: H, readonly size: number) {
    this.parts = head.data.byteLength > 0 ? [head.data] : []
    this.received = head.data.byteLength
  }

  get complete (): boolean {
    return this.received === this.size
  }

  /** Add the next frame, which must be a chunk of this block; returns the bytes it added. */
  add (msg: Message): number {
    if (msg.t !== 'chunk') throw new InvalidMessageError(`a ${msg.t} message came before block ${this.head.id} was complete (${this.received} of ${this.size} bytes)`)
    if (msg.id !== this.head.id) throw new InvalidMessageError(`a chunk of ${msg.id} came before block ${this.head.id} was complete`)
    const n = msg.data.byteLength
    if (this.received + n > this.size) throw new InvalidMessageError(`chunks of block ${this.head.id} add up to more than its size (${this.size} bytes)`)
    this.parts.push(msg.data)
    this.received += n
    return n
  }

  /** The whole block, once complete. */
  bytes (): Uint8Array {
    return this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.size)
  }
}

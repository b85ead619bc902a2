/**
 * msgpackr encoding of the messages, and their length-prefixed frames (an unsigned varint of the
 * body's length, then the body: what `lpStream` of @libp2p/utils reads).
 */
import { Packr, Unpackr } from 'msgpackr'
import { InvalidMessageError } from './errors.js'
import { validateMessage } from './messages.js'
import type { Message, MessageLimits } from './messages.js'

/**
 * Plain msgpack maps and arrays, bytes as bin. No records (`useRecords`): they carry key lists
 * from one message to the next, state a stateless protocol must not depend on.
 */
const packr = new Packr({ useRecords: false, variableMapSize: true })

/**
 * No structured-clone references: one shared array referenced a thousand times would let a
 * small message stand for a huge one.
 */
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false })

/** Anything the length-prefixed reader hands back: a Uint8Array or a Uint8ArrayList. */
export type Bytes = Uint8Array | { byteLength: number, subarray: () => Uint8Array }

/** Bytes of the unsigned varint of `n`. */
export function varintLength (n: number): number {
  let len = 1
  while (n >= 0x80) { n = Math.floor(n / 0x80); len++ }
  return len
}

/** The message as one frame ready for `stream.send`: varint length, then the msgpack body. */
export function encodeFrame (msg: Message): Uint8Array {
  const body = packr.pack(msg)
  const n = body.byteLength
  const frame = new Uint8Array(varintLength(n) + n)
  let i = 0
  let v = n
  while (v >= 0x80) { frame[i++] = (v % 0x80) | 0x80; v = Math.floor(v / 0x80) }
  frame[i++] = v
  // A copy: the packer's result is a view of its shared, reused buffer.
  frame.set(body, i)
  return frame
}

/** Decode one frame's body and validate it against `limits`; throws `InvalidMessageError`. */
export function decodeMessage (buf: Bytes, limits: MessageLimits): Message {
  const bytes = buf instanceof Uint8Array ? buf : buf.subarray()
  let value: unknown
  try {
    value = unpackr.unpack(bytes)
  } catch (err: any) {
    // msgpackr may quote what it decoded in its message: keep the log line short.
    throw new InvalidMessageError(`not a msgpack value: ${String(err?.message ?? err).slice(0, 120)}`, { cause: err })
  }
  return validateMessage(value, limits)
}

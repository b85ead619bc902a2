/**
 * msgpackr encoding of the messages, their length-prefixed frames (an unsigned varint of the body's
 * length, then the body: what `lpStream` of @libp2p/utils reads), and the cutting of a block into
 * a head and chunk frames.
 */
import { Packr, Unpackr } from 'msgpackr'
import { FRAME_OVERHEAD_BYTES, MAX_CID_LENGTH } from './constants.js'
import { InvalidMessageError } from './errors.js'
import { validateMessage } from './messages.js'
import type { Message, MessageLimits } from './messages.js'

/**
 * Plain msgpack maps and arrays. No records (`useRecords`): they carry key lists from one message to
 * the next, state a stream-oriented, stateless protocol must not depend on. `variableMapSize`
 * writes the 1-byte header of a small map instead of map16's 3 bytes. Block bytes go as msgpack
 * `bin`, so they cost their length plus a header of at most 5 bytes.
 */
const packr = new Packr({ useRecords: false, variableMapSize: true })

/**
 * No structured-clone references: one shared array referenced a thousand times would let a
 * small message stand for a huge one. A decoded `bin` is a view of the frame, not a copy.
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

/**
 * Bytes of one frame's body, at most (the length prefix's `maxDataLength`): a chunk of block data
 * or a full list of CIDs (each with its string header), plus the rest of the message.
 */
export function maxFrameBytes (limits: MessageLimits): number {
  return Math.max(limits.maxChunkBytes, limits.maxHasCids * (MAX_CID_LENGTH + 3)) + FRAME_OVERHEAD_BYTES
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

/**
 * The frames of a block: one when it fits in `maxChunkBytes`, else a head with the first
 * `maxChunkBytes` and the total `size`, then chunks. Encoded one at a time, as the writer pulls
 * them, so a 10 MiB block is never copied whole into frames.
 */
export function * blockFrames (head: { t: 'put', id: number, cid: string } | { t: 'block', id: number }, data: Uint8Array, maxChunkBytes: number): Generator<Uint8Array> {
  if (data.byteLength <= maxChunkBytes) {
    yield encodeFrame({ ...head, data } as Message)
    return
  }
  yield encodeFrame({ ...head, data: data.subarray(0, maxChunkBytes), size: data.byteLength } as Message)
  for (let o = maxChunkBytes; o < data.byteLength; o += maxChunkBytes) {
    yield encodeFrame({ t: 'chunk', id: head.id, data: data.subarray(o, Math.min(o + maxChunkBytes, data.byteLength)) })
  }
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

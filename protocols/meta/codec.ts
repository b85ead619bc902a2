/**
 * msgpackr encoding of the messages and their length-prefixed frames, with the settings and the
 * framing of every batch protocol (../batch/codec.ts, ../batch/frame.ts).
 *
 * A sender encodes each op once, when it is handed to `send()`: that gives the op's exact size (a
 * record's size can't be told from its string lengths cheaply) before it joins a batch, and the
 * batch's frame is then the apply header followed by the ops' bytes, with no second encoding.
 */
import { packr, unpackBody } from '../batch/codec.js'
import { allocFrame, frameOf } from '../batch/frame.js'
import { InvalidMessageError } from './errors.js'
import { validateMessage } from './messages.js'
import type { Message, MessageLimits, Op } from './messages.js'
import type { Bytes } from '../batch/codec.js'

export type { Bytes }

/** Upper bound, in bytes, of an apply message's body without its ops: map, `t`, `id` (uint32), `ops` and an array32 header. */
export const APPLY_HEADER_BYTES = 32

/** The message as one frame ready for `stream.send`: varint length, then the msgpack body. */
export function encodeFrame (msg: Message): Uint8Array {
  return frameOf(packr.pack(msg))
}

/** One op's msgpack bytes (a copy: the packer's result is a view of its reused buffer). */
export function encodeOp (op: Op): Uint8Array {
  return packr.pack(op).slice()
}

/** msgpack array header of `n` elements. */
function arrayHeader (n: number): number[] {
  if (n < 16) return [0x90 | n]
  if (n < 0x10000) return [0xdc, n >> 8, n & 0xff]
  return [0xdd, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]
}

/**
 * The frame of `{ t: 'apply', id, ops }` from the ops' encodings: the same bytes as encoding the
 * message whole. The header is packed with an empty `ops`, the last key, whose one-byte empty
 * array is then replaced by the real array header.
 */
export function encodeApplyFrame (id: number, ops: Uint8Array[], opBytes?: number): Uint8Array {
  const head = packr.pack({ t: 'apply', id, ops: [] })
  const array = arrayHeader(ops.length)
  let size = opBytes ?? 0
  if (opBytes === undefined) for (const o of ops) size += o.byteLength
  const { frame, offset } = allocFrame(head.byteLength - 1 + array.length + size)
  frame.set(head.subarray(0, head.byteLength - 1), offset)
  let i = offset + head.byteLength - 1
  frame.set(array, i)
  i += array.length
  for (const o of ops) {
    frame.set(o, i)
    i += o.byteLength
  }
  return frame
}

/** Decode one frame's body and validate it against `limits`; throws `InvalidMessageError`. */
export function decodeMessage (buf: Bytes, limits: MessageLimits): Message {
  return validateMessage(unpackBody(buf, (message, cause) => new InvalidMessageError(message, { cause })), limits)
}

/**
 * msgpackr encoding of the messages, and their length-prefixed frames (an unsigned varint of the
 * body's length, then the body: what `lpStream` of @libp2p/utils reads). The msgpack settings and
 * the framing are those of every batch protocol (../batch/codec.ts, ../batch/frame.ts).
 */
import { packr, unpackBody } from '../batch/codec.js'
import { frameOf, varintLength } from '../batch/frame.js'
import { InvalidMessageError } from './errors.js'
import { validateMessage } from './messages.js'
import type { Message, MessageLimits } from './messages.js'
import type { Bytes } from '../batch/codec.js'

export type { Bytes }
export { varintLength }

/** The message as one frame ready for `stream.send`: varint length, then the msgpack body. */
export function encodeFrame (msg: Message): Uint8Array {
  return frameOf(packr.pack(msg))
}

/** Decode one frame's body and validate it against `limits`; throws `InvalidMessageError`. */
export function decodeMessage (buf: Bytes, limits: MessageLimits): Message {
  return validateMessage(unpackBody(buf, (message, cause) => new InvalidMessageError(message, { cause })), limits)
}

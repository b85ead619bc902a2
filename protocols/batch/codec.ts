/**
 * The msgpackr settings of the batch protocols, shared so that every protocol encodes and
 * decodes the same way.
 */
import { Packr, Unpackr } from 'msgpackr'

/**
 * Plain msgpack maps and arrays. No records (`useRecords`): they carry key lists from one message to
 * the next, state a stream-oriented, stateless protocol must not depend on. `variableMapSize`
 * writes the 1-byte header of a small map instead of map16's 3 bytes.
 */
export const packr = new Packr({ useRecords: false, variableMapSize: true })

/**
 * No structured-clone references: one shared array referenced a thousand times would let a
 * small message stand for a huge one.
 */
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false })

/** Anything the length-prefixed reader hands back: a Uint8Array or a Uint8ArrayList. */
export type Bytes = Uint8Array | { byteLength: number, subarray: () => Uint8Array }

/**
 * The value of one frame's body, not yet validated. A body that is not msgpack throws what
 * `invalid` makes (the protocol's `InvalidMessageError`).
 */
export function unpackBody (buf: Bytes, invalid: (message: string, cause: unknown) => Error): unknown {
  const bytes = buf instanceof Uint8Array ? buf : buf.subarray()
  try {
    return unpackr.unpack(bytes)
  } catch (err: any) {
    // msgpackr may quote what it decoded in its message: keep the log line short.
    throw invalid(`not a msgpack value: ${String(err?.message ?? err).slice(0, 120)}`, err)
  }
}

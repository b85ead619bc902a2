/**
 * Length-prefixed frames: an unsigned varint of the body's length, then the body — what `lpStream`
 * of @libp2p/utils reads. Shared by the batch protocols (links, meta).
 */

/** Bytes of the unsigned varint of `n`. */
export function varintLength (n: number): number {
  let len = 1
  while (n >= 0x80) { n = Math.floor(n / 0x80); len++ }
  return len
}

/**
 * A frame for a body of `n` bytes, its length prefix written: the body goes at `offset`. For a
 * body assembled in place, without the copy `frameOf` makes.
 */
export function allocFrame (n: number): { frame: Uint8Array, offset: number } {
  const frame = new Uint8Array(varintLength(n) + n)
  let i = 0
  let v = n
  while (v >= 0x80) { frame[i++] = (v % 0x80) | 0x80; v = Math.floor(v / 0x80) }
  frame[i++] = v
  return { frame, offset: i }
}

/**
 * `body` as one frame ready for `stream.send`. Always a copy: msgpackr's result is a view of its
 * shared, reused buffer.
 */
export function frameOf (body: Uint8Array): Uint8Array {
  const { frame, offset } = allocFrame(body.byteLength)
  frame.set(body, offset)
  return frame
}

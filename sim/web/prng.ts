/**
 * Small deterministic pseudo-random numbers for the synthetic web. Not for cryptography: the only
 * requirements are that the same seed always gives the same sequence, on every platform and Node
 * version (so only 32-bit integer arithmetic through `Math.imul`), and that it is fast.
 */

/** Avalanche a 32-bit integer (the murmur3 finalizer): every input bit flips about half of the output bits. */
export function fmix32 (x: number): number {
  x ^= x >>> 16
  x = Math.imul(x, 0x85ebca6b)
  x ^= x >>> 13
  x = Math.imul(x, 0xc2b2ae35)
  x ^= x >>> 16
  return x >>> 0
}

/** Combine integers into one 32-bit key, order-sensitive: `mix(seed, host, page)`. */
export function mix (...parts: number[]): number {
  let h = 0x9e3779b9
  for (const p of parts) h = fmix32((h ^ fmix32(p | 0)) + 0x7f4a7c15)
  return h
}

/** 32-bit FNV-1a of a string, then avalanched; turns a string seed into a number. */
export function hashString (s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return fmix32(h)
}

/** A seed option may be a number or a string; both map to a 32-bit integer. */
export function seedToInt (seed: number | string): number {
  return typeof seed === 'number' && Number.isInteger(seed) ? seed >>> 0 : hashString(String(seed))
}

/**
 * A Weyl sequence passed through `fmix32`: period 2^32, one addition and a finalizer per draw.
 * Plenty for picking link targets and filler text.
 */
export class Prng {
  private state: number

  constructor (seed: number) {
    this.state = seed >>> 0
  }

  /** Uniform 32-bit unsigned integer. */
  next (): number {
    this.state = (this.state + 0x9e3779b9) >>> 0
    return fmix32(this.state)
  }

  /** Uniform float in [0, 1). */
  float (): number {
    return this.next() / 4294967296
  }

  /** Uniform integer in [0, n). */
  int (n: number): number {
    return Math.floor(this.float() * n)
  }

  /** Integer in [mean − spread, mean + spread], uniform. */
  around (mean: number, spread: number): number {
    return mean - spread + this.int(2 * spread + 1)
  }
}

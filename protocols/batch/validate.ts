/**
 * The field checks every protocol's message validation is made of, throwing that protocol's own
 * `InvalidMessageError` (whose name the transports look for to close a misbehaving stream):
 *
 *   const { isFields, int, str } = fieldChecks(InvalidMessageError)
 *   int(m.id, 0, 2 ** 32, 'id')   // or throws "id must be an integer from 0 to 4294967296, got a string of 3"
 */

/** A decoded msgpack map. */
export type Fields = Record<string, unknown>

export interface FieldChecks {
  /** A map: not null, not an array, not bytes. */
  isFields: (v: unknown) => v is Fields
  int: (v: unknown, min: number, max: number, what: string) => number
  str: (v: unknown, max: number, what: string) => string
  nonEmpty: (v: unknown, max: number, what: string) => string
  bool: (v: unknown, what: string) => boolean
}

/** What a value is, for an error message: its kind and size, never its content. */
export function describe (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return `an array of ${v.length}`
  if (v instanceof Uint8Array) return `${v.byteLength} bytes`
  if (typeof v === 'string') return `a string of ${v.length}`
  if (typeof v === 'number') return String(v)
  if (typeof v === 'object') return `a ${(v as object).constructor?.name ?? 'object'}`
  return typeof v
}

export function fieldChecks (Invalid: new (message: string) => Error): FieldChecks {
  const str = (v: unknown, max: number, what: string): string => {
    if (typeof v !== 'string') throw new Invalid(`${what} must be a string, got ${describe(v)}`)
    if (v.length > max) throw new Invalid(`${what} is longer than ${max} characters (${v.length})`)
    return v
  }
  return {
    isFields: (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array),
    int: (v, min, max, what) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
        throw new Invalid(`${what} must be an integer from ${min} to ${max}, got ${describe(v)}`)
      }
      return v
    },
    str,
    nonEmpty: (v, max, what) => {
      const s = str(v, max, what)
      if (s.length === 0) throw new Invalid(`${what} must not be empty`)
      return s
    },
    bool: (v, what) => {
      if (typeof v !== 'boolean') throw new Invalid(`${what} must be a boolean, got ${describe(v)}`)
      return v
    }
  }
}

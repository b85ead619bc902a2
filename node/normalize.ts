// STUB — replaced by the full normalizer (helper task). Signature is the contract.
export interface NormalizeOptions {
  /** Query parameters removed from every URL (exact names or prefixes ending in `*`). */
  stripParams?: string[]
}

/**
 * Resolve `href` against `base` (if given) and normalize it. Returns `undefined` for anything that
 * is not an absolute http(s) URL after resolution (mailto:, javascript:, tel:, data:, invalid).
 */
export function normalizeUrl (href: string, base?: string | URL, _opts?: NormalizeOptions): string | undefined {
  let u: URL
  try {
    u = new URL(href, base)
  } catch {
    return undefined
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined
  u.hash = ''
  return u.href
}

/** The partition key of a normalized URL: `host:port` with the scheme's default port made explicit. */
export function hostKey (url: string): string {
  const u = new URL(url)
  const port = u.port !== '' ? u.port : (u.protocol === 'https:' ? '443' : '80')
  return `${u.hostname}:${port}`
}

/**
 * URL normalization: one spelling for every URL, so that the seen-set, the frontier and the
 * partitioning by host all agree on what "the same URL" is.
 *
 * Parsing is the WHATWG URL Standard's (https://url.spec.whatwg.org/), which is what browsers do with
 * an href; on top of it come the safe normalizations of RFC 3986 §6.2.2
 * (https://www.rfc-editor.org/rfc/rfc3986#section-6.2.2) and the removal of configured tracking
 * parameters.
 *
 * What `new URL()` already does for us (so we don't do it twice): strips leading/trailing C0 controls
 * and spaces and every tab/newline inside the href, lower-cases scheme and host, converts IDN hosts to
 * punycode, canonicalizes IPv4/IPv6 hosts, drops the scheme's default port, resolves `.`/`..` segments
 * (also `%2e` spellings), turns `\` into `/` and makes an empty path `/`.
 *
 * This is on the crawler's hot path (every link of every page), so the common case — no `%`, no
 * trailing dot, no query parameter to strip — costs one `new URL()` and a string concatenation.
 */

import { InvalidURLError } from './errors.js'

export interface NormalizeOptions {
  /**
   * Query parameters removed from every URL: exact names, or prefixes written with a trailing `*`
   * (`utm_*`). Names are matched case-sensitively after percent-normalization; a `*` anywhere else is
   * a literal character. Only what is listed here is stripped — pass `DEFAULT_TRACKING_PARAMS` to strip
   * the usual trackers. The array is compiled once and cached by identity: don't mutate it afterwards.
   *
   * @default []
   */
  stripParams?: readonly string[]
  /**
   * Sort the remaining query parameters by name (stable: repeated names keep their order, since
   * `a=1&a=2` and `a=2&a=1` may mean different things). Off by default because parameter order can
   * be significant to a server.
   *
   * @default false
   */
  sortQuery?: boolean
}

/**
 * Query parameters that only track the click and never change the page (utm_*, fbclid, gclid…).
 * Re-exported from constants.ts so that there is one list; config passes it as `stripParams`.
 */
export { DEFAULT_TRACKING_PARAMS } from './constants.js'

/**
 * Resolve `href` against `base` (if given) and normalize it. Returns `undefined` for anything that
 * is not an absolute http(s) URL after resolution (mailto:, javascript:, tel:, data:, ftp:, invalid).
 *
 * The result has: lower-case scheme and host, no userinfo, no default port, no trailing dot on the
 * host, no fragment, no dot-segments, a path of at least `/`, no empty query, percent-encoded
 * unreserved characters decoded and the hex digits of every other escape in upper case, and the
 * parameters named by `opts.stripParams` removed. Normalizing a result again gives the same string.
 *
 * `base` may be a URL or a string; either way it is re-parsed on each call (Node's `URL` serializes
 * its base), so an invalid `base` gives `undefined`.
 */
export function normalizeUrl (href: string, base?: string | URL, opts?: NormalizeOptions): string | undefined {
  let u: URL
  try {
    u = new URL(href, base)
  } catch {
    return undefined
  }
  const protocol = u.protocol
  if (protocol !== 'http:' && protocol !== 'https:') return undefined

  let host = u.hostname
  // "example.com." and "example.com" name the same host in practice (the root label); keep one
  // spelling. Strip every trailing dot so that normalizing twice gives the same result.
  if (host.charCodeAt(host.length - 1) === DOT) {
    host = stripTrailingDots(host)
    if (host === '') return undefined
  }

  let path = u.pathname
  if (path.includes('%')) path = fixPercent(path)

  // `search` is '' both for no query and for a lone '?' (WHATWG: empty query serializes to '').
  let search = u.search
  if (search !== '') {
    if (search.includes('%')) search = fixPercent(search)
    const strip = opts?.stripParams
    const sort = opts?.sortQuery === true
    if ((strip !== undefined && strip.length > 0) || sort) {
      search = rewriteQuery(search, strip === undefined || strip.length === 0 ? undefined : matcherFor(strip), sort)
    }
  }

  // Built from parts rather than with setters: this drops userinfo and fragment for free and is
  // cheaper than three setter calls that each re-serialize the URL.
  const port = u.port
  return port === ''
    ? protocol + '//' + host + path + search
    : protocol + '//' + host + ':' + port + path + search
}

/**
 * The partition key of a URL: `hostname:port` with the scheme's default port made explicit
 * (`http://a.example/` → `a.example:80`, `https://[::1]/` → `[::1]:443`).
 *
 * @throws InvalidURLError-named error if `url` is not an absolute http(s) URL.
 */
export function hostKey (url: string): string {
  const u = parseHttp(url)
  const port = u.port !== '' ? u.port : (u.protocol === 'https:' ? '443' : '80')
  return `${hostOfParsed(u)}:${port}`
}

/**
 * The hostname of a URL, lower-case, punycode, without port and without a trailing dot.
 *
 * @throws InvalidURLError-named error if `url` is not an absolute http(s) URL.
 */
export function hostOf (url: string): string {
  return hostOfParsed(parseHttp(url))
}

// --- internals ---

const DOT = 0x2e

function stripTrailingDots (host: string): string {
  let end = host.length
  while (end > 0 && host.charCodeAt(end - 1) === DOT) end--
  return host.slice(0, end)
}

function hostOfParsed (u: URL): string {
  const h = u.hostname
  return h.charCodeAt(h.length - 1) === DOT ? stripTrailingDots(h) : h
}

function parseHttp (url: string): URL {
  let u: URL
  try {
    u = new URL(url)
  } catch (err) {
    throw new InvalidURLError(`invalid URL: ${preview(url)}`, { cause: err })
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new InvalidURLError(`not an http(s) URL: ${preview(url)}`)
  }
  return u
}

function preview (s: string): string {
  return s.length > 200 ? s.slice(0, 200) + '…' : s
}

/** Value of one hex digit (either case), or -1. */
function hexValue (c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30 // 0-9
  if (c >= 0x41 && c <= 0x46) return c - 0x37 // A-F
  if (c >= 0x61 && c <= 0x66) return c - 0x57 // a-f
  return -1
}

/** RFC 3986 §2.3 unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~" */
function isUnreserved (c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e // - . _ ~
}

const HEX_UPPER = '0123456789ABCDEF'

/**
 * RFC 3986 §6.2.2.1 and §6.2.2.2: decode escapes of unreserved characters (`%7E` → `~`), upper-case
 * the hex digits of all others (`%2f` → `%2F`). Reserved characters stay encoded — decoding `%2F` or
 * `%26` would change the meaning of the URL. A `%` not followed by two hex digits is left alone.
 *
 * Decoding cannot create a new dot-segment: `new URL()` has already resolved every segment spelled
 * `%2e`, `.%2e`, `%2e.` or `%2e%2e`, so an escaped dot left here sits next to other characters.
 */
function fixPercent (s: string): string {
  let out = ''
  let last = 0
  let i = s.indexOf('%')
  while (i !== -1 && i + 2 < s.length) {
    const hi = hexValue(s.charCodeAt(i + 1))
    const lo = hexValue(s.charCodeAt(i + 2))
    if (hi === -1 || lo === -1) {
      i = s.indexOf('%', i + 1)
      continue
    }
    const code = hi * 16 + lo
    if (isUnreserved(code)) {
      out += s.slice(last, i) + String.fromCharCode(code)
      last = i + 3
    } else if (s.charCodeAt(i + 1) >= 0x61 || s.charCodeAt(i + 2) >= 0x61) { // a lower-case hex digit
      out += s.slice(last, i) + '%' + HEX_UPPER[hi] + HEX_UPPER[lo]
      last = i + 3
    }
    i = s.indexOf('%', i + 3)
  }
  return last === 0 ? s : out + s.slice(last)
}

interface ParamMatcher {
  exact: Set<string>
  prefixes: string[]
}

const matchers = new WeakMap<readonly string[], ParamMatcher>()

function matcherFor (list: readonly string[]): ParamMatcher {
  let m = matchers.get(list)
  if (m === undefined) {
    m = { exact: new Set(), prefixes: [] }
    for (const p of list) {
      if (p.length > 0 && p.charCodeAt(p.length - 1) === 0x2a) m.prefixes.push(p.slice(0, -1)) // `*`
      else m.exact.add(p)
    }
    matchers.set(list, m)
  }
  return m
}

function isStripped (name: string, m: ParamMatcher): boolean {
  if (m.exact.has(name)) return true
  for (const p of m.prefixes) {
    if (name.startsWith(p)) return true
  }
  return false
}

/**
 * Remove matching parameters and/or sort by name; `search` starts with '?'. Returns `search` itself
 * when nothing changes. When the query is rewritten, empty pairs (`a=1&&b=2`) are dropped too.
 * Parameters are compared by their raw (percent-normalized) name and are never re-encoded: going
 * through URLSearchParams would re-serialize every value (`%20` → `+`) and change the URL.
 */
function rewriteQuery (search: string, m: ParamMatcher | undefined, sort: boolean): string {
  const parts = search.slice(1).split('&')
  let kept = parts
  if (m !== undefined) {
    let stripped = false
    kept = []
    for (const part of parts) {
      if (part !== '' && isStripped(nameOf(part), m)) stripped = true
      else kept.push(part)
    }
    if (!stripped && !sort) return search
  }
  kept = kept.filter(p => p !== '')
  if (sort) {
    // Decorate with the name once rather than re-splitting in every comparison; sort() is stable.
    const named = kept.map(p => [nameOf(p), p] as const)
    named.sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)
    kept = named.map(e => e[1])
  }
  return kept.length === 0 ? '' : '?' + kept.join('&')
}

function nameOf (part: string): string {
  const eq = part.indexOf('=')
  return eq === -1 ? part : part.slice(0, eq)
}

/**
 * A pure robots.txt parser and matcher, following RFC 9309 (Robots Exclusion Protocol):
 * https://www.rfc-editor.org/rfc/rfc9309.html
 *
 * Parsing happens once per host and keeps only the rules of the group that applies to us, compiled
 * into a list sorted by precedence, so `isAllowed` (run for every URL fetched) is a walk over that
 * list with `startsWith`/`indexOf` — no RegExp, so a hostile pattern like `/*a*a*a*a*b` cannot make
 * matching backtrack exponentially.
 */
import { DEFAULT_MAX_ROBOTS_SIZE } from './constants.js'

export interface RobotsRules {
  /** `pathAndQuery` is the URL's path plus `?query` (no scheme, host or fragment), e.g. `/a/b?c=d`. */
  isAllowed(pathAndQuery: string): boolean
  /** Seconds, from the group that applies (the largest if several merged groups set one). */
  crawlDelay?: number
  /** Every `Sitemap:` value in the file, as written (may be relative), whatever the group. */
  sitemaps: string[]
}

export interface ParseRobotsOptions {
  /**
   * Only the first `maxBytes` bytes (UTF-8) are parsed; RFC 9309 §2.5 requires at least 500 KiB.
   *
   * @default DEFAULT_MAX_ROBOTS_SIZE
   */
  maxBytes?: number
}

const ROBOTS_TXT_PATH = '/robots.txt'

function isRobotsTxt (path: string): boolean {
  // RFC 9309 §2.2.2: "The /robots.txt URI is implicitly allowed." A query string does not change
  // the resource the crawler needs to read.
  return path.startsWith(ROBOTS_TXT_PATH) &&
    (path.length === ROBOTS_TXT_PATH.length || path.charCodeAt(ROBOTS_TXT_PATH.length) === 0x3f /* ? */)
}

const noSitemaps: string[] = []
Object.freeze(noSitemaps)

/** For a robots.txt that is unavailable (4xx): RFC 9309 §2.3.1.3 — the crawler may access anything. */
export const allowAll: RobotsRules = Object.freeze({
  isAllowed: (_pathAndQuery: string): boolean => true,
  sitemaps: noSitemaps
})

/**
 * For a robots.txt that is unreachable (5xx, network error): RFC 9309 §2.3.1.4 — assume complete
 * disallow. `/robots.txt` itself stays allowed (§2.2.2), so the answer is the same as for a parsed
 * `Disallow: /`.
 */
export const disallowAll: RobotsRules = Object.freeze({
  isAllowed: (pathAndQuery: string): boolean => isRobotsTxt(normalizePath(pathAndQuery)),
  sitemaps: noSitemaps
})

// --- percent-encoding -------------------------------------------------------------------------

/**
 * Anything that may need rewriting: `%`, non-ASCII, and the ASCII characters RFC 3986 does not allow
 * in a URI (controls, space, `"<>\^\`{|}`). Everything else is left as it is, which is the common
 * case and keeps `isAllowed` from allocating.
 */
const NEEDS_NORMALIZING = /[^!#$&-;=?-[\]_a-z~]/

/** RFC 3986 §2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved (c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e
}

function hexValue (c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10
  return -1
}

const HEX = '0123456789ABCDEF'

function pct (byte: number): string {
  return '%' + HEX[byte >> 4] + HEX[byte & 0xf]
}

/**
 * Put a path (from a URL or from a robots.txt pattern) in one canonical form so both sides compare
 * octet for octet, per RFC 9309 §2.2.2: non-ASCII is UTF-8 percent-encoded, `%XX` of an unreserved
 * character is decoded (`/%62az` is `/baz`), any other `%XX` keeps its encoding with upper-case hex
 * (`/a%3cd` is `/a%3Cd`). ASCII not allowed in a URI and a `%` not followed by two hex digits are
 * encoded too, because that is the only form a valid URL can carry them in (`/a<d` is `/a%3Cd`).
 * Reserved characters (`/?=&*$`…) are never touched: encoding them changes a URL's meaning.
 */
export function normalizePath (s: string): string {
  if (!NEEDS_NORMALIZING.test(s)) return s
  let out = ''
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0x25 /* % */) {
      const hi = i + 2 < s.length ? hexValue(s.charCodeAt(i + 1)) : -1
      const lo = hi >= 0 ? hexValue(s.charCodeAt(i + 2)) : -1
      if (lo < 0) {
        out += '%25'
        continue
      }
      const byte = hi * 16 + lo
      out += isUnreserved(byte) ? String.fromCharCode(byte) : pct(byte)
      i += 2
    } else if (c < 0x80) {
      out += (c <= 0x20 || c === 0x7f || '"<>\\^`{|}'.includes(s[i])) ? pct(c) : s[i]
    } else {
      let cp = s.codePointAt(i) as number
      if (cp > 0xffff) i++
      else if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd // a lone surrogate cannot be UTF-8
      if (cp < 0x800) {
        out += pct(0xc0 | (cp >> 6)) + pct(0x80 | (cp & 0x3f))
      } else if (cp < 0x10000) {
        out += pct(0xe0 | (cp >> 12)) + pct(0x80 | ((cp >> 6) & 0x3f)) + pct(0x80 | (cp & 0x3f))
      } else {
        out += pct(0xf0 | (cp >> 18)) + pct(0x80 | ((cp >> 12) & 0x3f)) +
          pct(0x80 | ((cp >> 6) & 0x3f)) + pct(0x80 | (cp & 0x3f))
      }
    }
  }
  return out
}

// --- patterns ---------------------------------------------------------------------------------

interface Rule {
  readonly allow: boolean
  /** RFC 9309 §2.2.2: "the most specific match … is the match that has the most octets". */
  readonly priority: number
  /** The pattern split at `*`; segments[0] must match at the start of the path. */
  readonly segments: string[]
  /** The pattern ended in `$`: the last segment must match at the end of the path. */
  readonly anchored: boolean
  /** No path shorter than this can match. */
  readonly minLength: number
}

function compileRule (allow: boolean, pattern: string): Rule {
  // `$` is special only as the last character (RFC 9309 §2.2.3 "end of the match pattern");
  // elsewhere it is a literal octet, as in Google's reference parser.
  const anchored = pattern.endsWith('$')
  const body = anchored ? pattern.slice(0, -1) : pattern
  const segments = body.split('*')
  // Drop the empty segments of `**` between the first and last: they add nothing to the match.
  const compact = segments.length > 2
    ? [segments[0], ...segments.slice(1, -1).filter(s => s !== ''), segments[segments.length - 1]]
    : segments
  let minLength = 0
  for (const s of compact) minLength += s.length
  return { allow, priority: pattern.length, segments: compact, anchored, minLength }
}

/**
 * Does `path` match the wildcard pattern? For a pattern whose only wildcard is `*`, matching each
 * segment at its leftmost place after the previous one is exact, so this is linear in the path for
 * each segment and never backtracks.
 */
function matches (rule: Rule, path: string): boolean {
  if (path.length < rule.minLength) return false
  const { segments, anchored } = rule
  const first = segments[0]
  if (segments.length === 1) return anchored ? path === first : path.startsWith(first)
  if (!path.startsWith(first)) return false
  let pos = first.length
  const last = segments.length - 1
  for (let i = 1; i < last; i++) {
    const at = path.indexOf(segments[i], pos)
    if (at < 0) return false
    pos = at + segments[i].length
  }
  const tail = segments[last]
  if (anchored) return path.length - tail.length >= pos && path.endsWith(tail)
  return tail === '' || path.indexOf(tail, pos) >= 0
}

class CompiledRules implements RobotsRules {
  readonly crawlDelay?: number
  readonly sitemaps: string[]
  /** Sorted by priority, longest first, allow before disallow on a tie: the first match decides. */
  private readonly rules: Rule[]

  constructor (rules: Rule[], crawlDelay: number | undefined, sitemaps: string[]) {
    this.rules = rules.sort((a, b) => (b.priority - a.priority) || (Number(b.allow) - Number(a.allow)))
    if (crawlDelay !== undefined) this.crawlDelay = crawlDelay
    this.sitemaps = sitemaps
  }

  isAllowed (pathAndQuery: string): boolean {
    if (this.rules.length === 0) return true
    const path = pathAndQuery === '' ? '/' : normalizePath(pathAndQuery)
    if (isRobotsTxt(path)) return true
    for (const rule of this.rules) {
      if (matches(rule, path)) return rule.allow
    }
    return true
  }
}

// --- parsing ----------------------------------------------------------------------------------

type Directive = 'user-agent' | 'allow' | 'disallow' | 'crawl-delay' | 'sitemap'

/**
 * Keys are case-insensitive (RFC 9309 §2.2). Besides the spelled-out keys we accept the misspellings
 * Google's parser accepts for user-agent and disallow: reading a misspelled `Disallow` as a rule is
 * the polite choice.
 */
const DIRECTIVES = new Map<string, Directive>([
  ['user-agent', 'user-agent'],
  ['useragent', 'user-agent'],
  ['user agent', 'user-agent'],
  ['allow', 'allow'],
  ['disallow', 'disallow'],
  ['dissallow', 'disallow'],
  ['dissalow', 'disallow'],
  ['disalow', 'disallow'],
  ['diasllow', 'disallow'],
  ['disallaw', 'disallow'],
  ['crawl-delay', 'crawl-delay'],
  ['crawldelay', 'crawl-delay'],
  ['crawl delay', 'crawl-delay'],
  ['sitemap', 'sitemap'],
  ['site-map', 'sitemap']
])

/** RFC 9309 §2.2.1: a product token is letters, `_` and `-`. */
const PRODUCT_TOKEN = /^[A-Za-z_-]+$/
const LEADING_TOKEN = /^[A-Za-z_-]*/
/** A non-negative decimal number: `5`, `0.5`, `.5`, `5.` — no sign, exponent, unit or hex. */
const DECIMAL = /^(?:\d+\.?\d*|\.\d+)$/

/** The longest prefix of `text` that is at most `maxBytes` bytes in UTF-8 and ends at a line break. */
function capText (text: string, maxBytes: number): string {
  // A UTF-16 code unit is at least one UTF-8 byte, so at most `maxBytes` code units can fit.
  if (text.length <= maxBytes / 3) return text
  const head = Buffer.from(text.slice(0, maxBytes), 'utf8')
  if (head.length <= maxBytes && text.length <= maxBytes) return text
  const capped = head.subarray(0, maxBytes).toString('utf8')
  // The cut line is dropped: a truncated `Allow: /foo-bar` would read as `Allow: /f` and allow more
  // than the site wrote.
  const lastBreak = Math.max(capped.lastIndexOf('\n'), capped.lastIndexOf('\r'))
  return capped.slice(0, lastBreak + 1)
}

/**
 * Parse a robots.txt body for the crawler whose product token is `productToken` (e.g. `shoal`).
 *
 * Group selection follows RFC 9309 §2.2.1: every group whose user-agent line names our token
 * (case-insensitively) applies, merged; if none does, every `*` group, merged; otherwise no rule
 * applies. Consecutive user-agent lines open one group; a rule line (allow, disallow, crawl-delay)
 * closes the list, so the next user-agent line opens a new group. Rules before any user-agent line
 * belong to no group and are ignored. Sitemap and unknown lines belong to no group and change nothing.
 */
export function parseRobotsTxt (text: string, productToken: string, opts?: ParseRobotsOptions): RobotsRules {
  if (!PRODUCT_TOKEN.test(productToken)) {
    throw new TypeError(`productToken must be letters, "_" and "-" only (RFC 9309 §2.2.1), got ${JSON.stringify(productToken)}`)
  }
  const maxBytes = opts?.maxBytes ?? DEFAULT_MAX_ROBOTS_SIZE
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new RangeError(`maxBytes must be a positive integer, got ${maxBytes}`)
  }
  const token = productToken.toLowerCase()

  let body = capText(text, maxBytes)
  if (body.charCodeAt(0) === 0xfeff) body = body.slice(1)

  const ours: Rule[] = []
  const global: Rule[] = []
  let oursFound = false
  let globalFound = false
  let oursDelay: number | undefined
  let globalDelay: number | undefined
  const sitemaps = new Set<string>()
  // Whether the current group is ours / `*`, and whether we are still in its user-agent lines.
  let groupIsOurs = false
  let groupIsGlobal = false
  let inAgents = false
  // Merged groups may repeat a pattern; keep each once.
  const seenOurs = new Set<string>()
  const seenGlobal = new Set<string>()

  for (const rawLine of body.split(/\r\n|\r|\n/)) {
    const hash = rawLine.indexOf('#')
    const line = hash >= 0 ? rawLine.slice(0, hash) : rawLine
    const colon = line.indexOf(':')
    if (colon < 0) continue
    const directive = DIRECTIVES.get(line.slice(0, colon).trim().toLowerCase().replace(/\s+/g, ' '))
    if (directive === undefined) continue
    const value = line.slice(colon + 1).trim()

    switch (directive) {
      case 'user-agent': {
        if (!inAgents) {
          groupIsOurs = false
          groupIsGlobal = false
          inAgents = true
        }
        // `*` alone (or followed by a space) is the global group, as in Google's parser; `*bot` is not.
        if (value === '*' || /^\*\s/.test(value)) {
          groupIsGlobal = true
          globalFound = true
        } else if ((LEADING_TOKEN.exec(value) as RegExpExecArray)[0].toLowerCase() === token) {
          // The line may carry more than the token (`shoal/1.0`, `shoal (+https://…)`): compare the
          // leading token only, so `shoal-news` is another crawler and not us.
          groupIsOurs = true
          oursFound = true
        }
        break
      }
      case 'allow':
      case 'disallow': {
        inAgents = false
        // An empty value matches nothing: `Disallow:` alone means everything is allowed.
        if (value === '') break
        const pattern = normalizePath(value)
        const key = directive + ' ' + pattern
        if (groupIsOurs && !seenOurs.has(key)) {
          seenOurs.add(key)
          ours.push(compileRule(directive === 'allow', pattern))
        }
        if (groupIsGlobal && !seenGlobal.has(key)) {
          seenGlobal.add(key)
          global.push(compileRule(directive === 'allow', pattern))
        }
        break
      }
      case 'crawl-delay': {
        // Not in RFC 9309 (§2.2.4 leaves other records to the crawler); it is read as a member of
        // the group it is in, like a rule. Merged groups keep the largest delay: the polite one.
        inAgents = false
        if (!DECIMAL.test(value)) break
        const delay = Number(value)
        if (!Number.isFinite(delay)) break
        if (groupIsOurs) oursDelay = Math.max(oursDelay ?? 0, delay)
        if (groupIsGlobal) globalDelay = Math.max(globalDelay ?? 0, delay)
        break
      }
      case 'sitemap':
        if (value !== '') sitemaps.add(value)
        break
    }
  }

  if (oursFound) return new CompiledRules(ours, oursDelay, [...sitemaps])
  if (globalFound) return new CompiledRules(global, globalDelay, [...sitemaps])
  return new CompiledRules([], undefined, [...sitemaps])
}

/**
 * Crawl scope and trap guards: which discovered URLs the crawler may enqueue at all. Pure and
 * synchronous — no I/O — because it runs for every link of every page before the frontier sees it.
 */
import { DEFAULT_MAX_PATH_REPEATS, DEFAULT_MAX_PATH_SEGMENTS, DEFAULT_MAX_URL_LENGTH } from './constants.js'
import { ConfigError, InvalidURLError } from './errors.js'
import { hostKey, normalizeUrl } from './normalize.js'

/**
 * - `host`: same `hostname:port` as a seed (the port with its scheme's default made explicit, so
 *   `http://a/` and `https://a/` are different hosts, like the crawler's partitions).
 * - `domain`: the host is a seed's registrable domain or a subdomain of it, any port and scheme.
 * - `any`: every http(s) URL.
 */
export type ScopeMode = 'host' | 'domain' | 'any'

export interface ScopeInit {
  /** @default 'host' */
  mode?: ScopeMode
  /**
   * Regular-expression sources (JavaScript syntax, no flags) tested against the whole normalized
   * URL. If any is given, a URL must match at least one.
   *
   * @default []
   */
  include?: string[]
  /**
   * Regular-expression sources tested against the whole normalized URL; a URL that matches any is
   * excluded. Checked before `include`.
   *
   * @default []
   */
  exclude?: string[]
  /** Longest URL accepted, in characters (normalized URLs are ASCII, so also bytes). @default DEFAULT_MAX_URL_LENGTH */
  maxUrlLength?: number
  /**
   * A path segment that appears more than this many times marks a crawler trap (`/a/b/a/b/a/b/…`
   * made by relative links on a page served under any path). @default DEFAULT_MAX_PATH_REPEATS
   */
  maxPathRepeats?: number
  /** Most path segments accepted. @default DEFAULT_MAX_PATH_SEGMENTS */
  maxPathSegments?: number
}

export type ScopeRejection = 'out-of-scope' | 'excluded' | 'not-included' | 'url-too-long' | 'path-repeats' | 'too-many-segments'

export type ScopeVerdict = { ok: true } | { ok: false, reason: ScopeRejection }

const MODES: readonly ScopeMode[] = ['host', 'domain', 'any']

// Verdicts are shared, frozen objects: `check` runs for every link and need not allocate.
const OK: ScopeVerdict = Object.freeze({ ok: true })
const REJECT: Readonly<Record<ScopeRejection, ScopeVerdict>> = Object.freeze({
  'out-of-scope': Object.freeze({ ok: false, reason: 'out-of-scope' }),
  excluded: Object.freeze({ ok: false, reason: 'excluded' }),
  'not-included': Object.freeze({ ok: false, reason: 'not-included' }),
  'url-too-long': Object.freeze({ ok: false, reason: 'url-too-long' }),
  'path-repeats': Object.freeze({ ok: false, reason: 'path-repeats' }),
  'too-many-segments': Object.freeze({ ok: false, reason: 'too-many-segments' })
})

/**
 * Decides whether a URL is in scope. Checks run cheapest first and the first failure is the
 * reason given: length, then scheme and host (`out-of-scope`, also for anything that is not an
 * absolute http(s) URL), then `exclude`, then `include`, then the number of path segments, then
 * repeated segments.
 */
export class Scope {
  readonly mode: ScopeMode
  private readonly include: RegExp[]
  private readonly exclude: RegExp[]
  private readonly maxUrlLength: number
  private readonly maxPathRepeats: number
  private readonly maxPathSegments: number
  /** mode 'host': `hostname:port` of every seed. */
  private readonly hostKeys = new Set<string>()
  /** mode 'domain': registrable domain (or IP address) of every seed. */
  private readonly domains = new Set<string>()

  /**
   * @throws ConfigError naming the option (or the seed) that is wrong and what it must be.
   */
  constructor (init: ScopeInit = {}, seeds: string[] = []) {
    const mode = init.mode ?? 'host'
    if (!MODES.includes(mode)) {
      throw new ConfigError(`scope mode must be one of ${MODES.map(m => `'${m}'`).join(', ')}, got ${JSON.stringify(mode)}`)
    }
    this.mode = mode
    this.include = compilePatterns('include', init.include)
    this.exclude = compilePatterns('exclude', init.exclude)
    this.maxUrlLength = positiveInteger('maxUrlLength', init.maxUrlLength ?? DEFAULT_MAX_URL_LENGTH)
    this.maxPathRepeats = positiveInteger('maxPathRepeats', init.maxPathRepeats ?? DEFAULT_MAX_PATH_REPEATS)
    this.maxPathSegments = positiveInteger('maxPathSegments', init.maxPathSegments ?? DEFAULT_MAX_PATH_SEGMENTS)
    if (!Array.isArray(seeds)) throw new ConfigError('seeds must be an array of absolute http(s) URLs')
    for (const seed of seeds) {
      try {
        this.addSeed(seed)
      } catch {
        throw new ConfigError(`seeds must be absolute http(s) URLs, got ${JSON.stringify(seed)}`)
      }
    }
  }

  /**
   * Widen the scope to a seed's host (mode 'host') or registrable domain (mode 'domain').
   *
   * @throws InvalidURLError if `url` is not an absolute http(s) URL.
   */
  addSeed (url: string): void {
    const normalized = typeof url === 'string' ? normalizeUrl(url) : undefined
    if (normalized === undefined) {
      throw new InvalidURLError(`seed is not an absolute http(s) URL: ${String(url).slice(0, 200)}`)
    }
    this.hostKeys.add(hostKey(normalized))
    this.domains.add(registrableDomain(new URL(normalized).hostname))
  }

  /**
   * `url` is expected normalized (see `normalizeUrl`): lower-case scheme and host, no default port,
   * no userinfo, a path. Such a URL is checked with string operations only (this runs for every
   * discovered link); any other spelling is parsed first.
   */
  check (url: string): ScopeVerdict {
    if (url.length > this.maxUrlLength) return REJECT['url-too-long']
    const start = url.startsWith('https://') ? 8 : url.startsWith('http://') ? 7 : -1
    let end = start === -1 ? -1 : url.indexOf('/', start)
    if (end === -1 || !plainAuthority(url, start, end)) return this.checkParsed(url)
    const authority = url.slice(start, end)
    const colon = authority.lastIndexOf(':')
    const hasPort = colon !== -1 && colon > authority.lastIndexOf(']')
    const hostname = hasPort ? authority.slice(0, colon) : authority
    if (hostname.endsWith('.')) return this.checkParsed(url)
    const hostKey = hasPort ? authority : `${authority}:${start === 8 ? '443' : '80'}`
    if (!this.inScopeHost(hostname, hostKey)) return REJECT['out-of-scope']
    const patterns = this.checkPatterns(url)
    if (patterns !== OK) return patterns
    const q = url.indexOf('?', end)
    end = q === -1 ? url.length : q
    return this.checkPath(url.slice(url.indexOf('/', start), end))
  }

  private checkParsed (url: string): ScopeVerdict {
    let u: URL
    try {
      u = new URL(url)
    } catch {
      return REJECT['out-of-scope']
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return REJECT['out-of-scope']
    if (!this.inScope(u)) return REJECT['out-of-scope']
    const patterns = this.checkPatterns(url)
    if (patterns !== OK) return patterns
    return this.checkPath(u.pathname)
  }

  private checkPatterns (url: string): ScopeVerdict {
    for (const re of this.exclude) {
      if (re.test(url)) return REJECT.excluded
    }
    if (this.include.length > 0 && !this.include.some(re => re.test(url))) return REJECT['not-included']
    return OK
  }

  private inScopeHost (hostname: string, hostKey: string): boolean {
    switch (this.mode) {
      case 'any':
        return true
      case 'host':
        return this.hostKeys.has(hostKey)
      case 'domain': {
        let host = hostname
        if (isIpHost(host)) return this.domains.has(host)
        // The host itself, then each parent: a.b.example.com, b.example.com, example.com, com.
        for (;;) {
          if (this.domains.has(host)) return true
          const dot = host.indexOf('.')
          if (dot === -1) return false
          host = host.slice(dot + 1)
        }
      }
    }
  }

  private inScope (u: URL): boolean {
    const port = u.port !== '' ? u.port : (u.protocol === 'https:' ? '443' : '80')
    const hostname = trimDots(u.hostname)
    return this.inScopeHost(hostname, `${hostname}:${port}`)
  }

  /**
   * Segments are what lies between slashes, compared as they are spelled (normalized URLs spell
   * them one way). A trailing slash adds no segment, so `/a/` has one; empty segments inside the
   * path count (`/a//b` has three), so that `/x////////…` is caught as a repeat too.
   */
  private checkPath (pathname: string): ScopeVerdict {
    // pathname always starts with '/' for http(s).
    let end = pathname.length
    if (end > 1 && pathname.charCodeAt(end - 1) === 0x2f) end--
    if (end <= 1) return OK
    // Most paths have few segments: count them before splitting anything.
    let slashes = 0
    for (let i = 0; i < end; i++) if (pathname.charCodeAt(i) === 0x2f) slashes++
    if (slashes <= this.maxPathRepeats && slashes <= this.maxPathSegments) return OK
    const segments = pathname.slice(1, end).split('/')
    if (segments.length > this.maxPathSegments) return REJECT['too-many-segments']
    if (segments.length <= this.maxPathRepeats) return OK
    const counts = new Map<string, number>()
    for (const s of segments) {
      const n = (counts.get(s) ?? 0) + 1
      if (n > this.maxPathRepeats) return REJECT['path-repeats']
      counts.set(s, n)
    }
    return OK
  }
}

/**
 * Second-level labels that, under a two-letter country-code TLD, are public registries rather than
 * registrants: `example.co.uk`, `example.com.au`, `example.ac.jp`, `example.or.jp`, `example.gob.mx`.
 */
const SECOND_LEVEL_REGISTRIES = new Set(['ac', 'co', 'com', 'edu', 'go', 'gob', 'gov', 'govt', 'mil', 'ne', 'net', 'or', 'org'])

/**
 * The registrable domain of a host, by heuristic: shoal ships no Public Suffix List
 * (https://publicsuffix.org/), so this takes the last two labels, or the last three when the TLD has
 * two letters (a ccTLD) and the label before it is one of SECOND_LEVEL_REGISTRIES. It gets the
 * common cases right and errs wide on the rest (`a.github.io` and `b.github.io` share `github.io`),
 * which for a crawl scope means crawling more of a site-hosting domain, never less of a seed's site.
 * IP addresses are returned as they are: they match only themselves.
 */
export function registrableDomain (hostname: string): string {
  const host = trimDots(hostname.toLowerCase())
  if (isIpHost(host)) return host
  const labels = host.split('.')
  if (labels.length <= 2) return host
  const tld = labels[labels.length - 1]
  const sld = labels[labels.length - 2]
  const keep = tld.length === 2 && SECOND_LEVEL_REGISTRIES.has(sld) ? 3 : 2
  return labels.slice(-keep).join('.')
}

/** An IPv6 literal (WHATWG hostnames keep its brackets) or a dotted-quad IPv4 address. */
function isIpHost (host: string): boolean {
  return host.charCodeAt(0) === 0x5b || IPV4.test(host) // '['
}

// WHATWG URL parsing turns every IPv4 spelling (0x7f.1, 2130706433…) into a dotted quad.
const IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/

/** The authority of a normalized URL: no userinfo, no upper case (else it is parsed in full). */
function plainAuthority (url: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = url.charCodeAt(i)
    if (c === 0x40 || (c >= 0x41 && c <= 0x5a)) return false // '@', 'A'–'Z'
  }
  return true
}

function trimDots (host: string): string {
  let end = host.length
  while (end > 0 && host.charCodeAt(end - 1) === 0x2e) end--
  return end === host.length ? host : host.slice(0, end)
}

function positiveInteger (option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new ConfigError(`${option} must be a positive integer, got ${String(value)}`)
  }
  return value
}

function compilePatterns (option: 'include' | 'exclude', sources: unknown): RegExp[] {
  if (sources === undefined) return []
  if (!Array.isArray(sources)) {
    throw new ConfigError(`${option} must be an array of regular-expression strings`)
  }
  return sources.map((src: unknown) => {
    if (typeof src !== 'string') {
      throw new ConfigError(`${option} patterns must be strings, got ${typeof src}`)
    }
    try {
      return new RegExp(src)
    } catch (err) {
      throw new ConfigError(`${option} pattern ${JSON.stringify(src)} is not a valid regular expression: ${(err as Error).message}`)
    }
  })
}

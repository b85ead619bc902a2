/**
 * The opt-in behaviours of the synthetic web that make it look like the real one — redirects, broken
 * links, flaky and slow servers, traps, odd encodings — and the crawl policy its ground truth assumes.
 *
 * Every behaviour is off unless asked for, one by one in `features`, or all at once with
 * `realistic: true` (the rates of `REALISTIC`, each of which `features` can still override). With
 * none asked for, the site is byte for byte what it was before these existed, so callers that do
 * not opt in keep their web.
 *
 * Rates are shares of pages (or of URLs, for what happens on the wire), decided per page or per URL
 * by a hash of the seed: the same URL behaves the same way in every run and on every request.
 */
import * as C from '../../node/constants.js'
import { ConfigError } from '../../node/errors.js'

export interface SiteFeatures {
  /** Page body sizes drawn log-uniformly from [min, max] bytes, instead of `pageBytes` ±20 %. @default undefined */
  pageBytesRange?: readonly [number, number]
  /** Links per page drawn log-uniformly from [min, max], instead of `linksPerPage` ±20 %. @default undefined */
  linksRange?: readonly [number, number]
  /**
   * robots.txt made by the model: `Disallow: /private/` and `/search`, `Allow: /private/open/`, and
   * on odd hosts a group of its own for shoal while `User-agent: *` is disallowed everything (so a
   * crawler that reads the wrong group crawls nothing there). Pages link to disallowed and allowed
   * URLs under those paths. @default false
   */
  robots?: boolean
  /** robots.txt Crawl-delay, in seconds, of every host or per host index (undefined: none). @default undefined */
  crawlDelay?: number | ((host: number) => number | undefined)
  /** Share of pages with a link to a redirect chain (1–3 hops of 301/302/307/308). @default 0 */
  redirects?: number
  /** Share of redirect hops that move to another host of the site (when hosts > 1). @default 0.3 */
  crossHostRedirects?: number
  /** Share of pages with a link to a URL answered 404 or 410. @default 0 */
  brokenLinks?: number
  /** Share of URLs whose first k requests fail with 500, 503 or 429 (then succeed). @default 0 */
  transient?: number
  /** k is drawn from 1 … this. Above the crawler's maxRetries a URL never succeeds. @default 2 */
  maxTransientFailures?: number
  /** Retry-After of 429 and 503 answers, seconds. @default 1 */
  retryAfter?: number
  /** Share of URLs answered slowly (headers late, or the body in two parts). @default 0 */
  slow?: number
  /** How late a slow answer is, ms (keep it below the crawler's timeouts). @default 50 */
  slowMs?: number
  /** Share of pages with a link to a URL that never answers in time. @default 0 */
  timeouts?: number
  /**
   * How long such a URL stalls before the server drops the connection, ms. Set it above the
   * crawler's request timeout so the crawler times out first (either way it is a retryable failure).
   * @default 30000
   */
  stallMs?: number
  /** Share of pages with a link to a body over the policy's maxBodySize, or a gzip body that inflates over maxDecompressedSize. @default 0 */
  oversize?: number
  /** Share of URLs sent with Content-Encoding gzip or br (when the request accepts it). @default 0 */
  compression?: number
  /** Share of pages in windows-1252 or Shift_JIS (declared by header or meta), or UTF-8 with non-ASCII links. @default 0 */
  charsets?: number
  /** Share of pages with broken markup (unquoted, unclosed, misnested; links in comments and scripts). @default 0 */
  malformed?: number
  /** Spider traps linked from every host's root: a calendar, session ids in the query, /files/files/…. @default false */
  traps?: boolean
  /** Share of pages with a link to the same content under another URL (`?ref=`, `/index.html`, `?utm_…`). @default 0 */
  aliases?: number
  /** Servers that are not part of the site (not seeded, out of scope): no crawl may touch them. @default 0 */
  offsiteHosts?: number
  /** Share of pages with a link to an offsite host (when offsiteHosts > 0). @default 0 */
  offsiteLinks?: number
}

export interface ResolvedFeatures {
  pageBytesRange?: readonly [number, number]
  linksRange?: readonly [number, number]
  robots: boolean
  crawlDelay?: number | ((host: number) => number | undefined)
  redirects: number
  crossHostRedirects: number
  brokenLinks: number
  transient: number
  maxTransientFailures: number
  retryAfter: number
  slow: number
  slowMs: number
  timeouts: number
  stallMs: number
  oversize: number
  compression: number
  charsets: number
  malformed: number
  traps: boolean
  aliases: number
  offsiteHosts: number
  offsiteLinks: number
  /** Any feature that changes bodies or links is on. */
  any: boolean
}

/** All features on, at rates that show each of them a few times on a few hundred pages. */
export const REALISTIC: Readonly<SiteFeatures> = Object.freeze({
  pageBytesRange: [5 * C.KiB, 100 * C.KiB] as const,
  linksRange: [10, 300] as const,
  robots: true,
  crawlDelay: (host: number) => host % 3 === 1 ? 0.01 : undefined,
  redirects: 0.08,
  crossHostRedirects: 0.3,
  brokenLinks: 0.05,
  transient: 0.04,
  maxTransientFailures: 2,
  retryAfter: 1,
  slow: 0.03,
  slowMs: 50,
  timeouts: 0.01,
  stallMs: 30 * C.second,
  oversize: 0.01,
  compression: 0.3,
  charsets: 0.1,
  malformed: 0.1,
  traps: true,
  aliases: 0.05,
  offsiteHosts: 1,
  offsiteLinks: 0.05
})

/**
 * The crawl policy the ground truth assumes: shoal's defaults (node/constants.ts) unless told
 * otherwise. Pass the same values to the crawler. Timing options (delay, timeouts, retry back-off)
 * change when a crawl fetches, never what, so they are not here.
 */
export interface CrawlPolicy {
  maxDepth: number
  maxRedirects: number
  maxRetries: number
  maxBodySize: number
  maxDecompressedSize: number
  maxUrlLength: number
  maxPathRepeats: number
  maxPathSegments: number
  /** Query parameters the crawler strips (names, or prefixes ending in `*`). */
  stripParams: readonly string[]
}

export function resolvePolicy (init: Partial<CrawlPolicy> = {}): CrawlPolicy {
  const int = (name: keyof CrawlPolicy, value: number, min: number): number => {
    if (!Number.isSafeInteger(value) || value < min) throw new ConfigError(`policy.${name} must be an integer ≥ ${min}, got ${value}`)
    return value
  }
  const stripParams = init.stripParams ?? C.DEFAULT_TRACKING_PARAMS
  if (!Array.isArray(stripParams) || !stripParams.every(s => typeof s === 'string')) throw new ConfigError('policy.stripParams must be a list of strings')
  return {
    maxDepth: int('maxDepth', init.maxDepth ?? C.DEFAULT_MAX_DEPTH, 0),
    maxRedirects: int('maxRedirects', init.maxRedirects ?? C.DEFAULT_MAX_REDIRECTS, 0),
    maxRetries: int('maxRetries', init.maxRetries ?? C.DEFAULT_MAX_RETRIES, 0),
    maxBodySize: int('maxBodySize', init.maxBodySize ?? C.DEFAULT_MAX_BODY_SIZE, 1),
    maxDecompressedSize: int('maxDecompressedSize', init.maxDecompressedSize ?? C.DEFAULT_MAX_DECOMPRESSED_SIZE, 1),
    maxUrlLength: int('maxUrlLength', init.maxUrlLength ?? C.DEFAULT_MAX_URL_LENGTH, 1),
    maxPathRepeats: int('maxPathRepeats', init.maxPathRepeats ?? C.DEFAULT_MAX_PATH_REPEATS, 1),
    maxPathSegments: int('maxPathSegments', init.maxPathSegments ?? C.DEFAULT_MAX_PATH_SEGMENTS, 1),
    stripParams
  }
}

function rate (name: string, value: number): number {
  if (!(value >= 0 && value <= 1)) throw new ConfigError(`features.${name} must be a number between 0 and 1, got ${value}`)
  return value
}

function nonNegative (name: string, value: number, integer = false): number {
  if (!(value >= 0) || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new ConfigError(`features.${name} must be ${integer ? 'an integer' : 'a number'} ≥ 0, got ${value}`)
  }
  return value
}

function range (name: string, value: readonly [number, number] | undefined, min: number): readonly [number, number] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || value.length !== 2 || !value.every(Number.isInteger) || value[0] < min || value[1] < value[0]) {
    throw new ConfigError(`features.${name} must be [min, max] integers with ${min} ≤ min ≤ max, got ${JSON.stringify(value)}`)
  }
  return value
}

export function resolveFeatures (realistic: boolean, init: SiteFeatures = {}): ResolvedFeatures {
  const base: SiteFeatures = realistic ? REALISTIC : {}
  const f: SiteFeatures = { ...base, ...Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined)) }
  const crawlDelay = f.crawlDelay
  if (typeof crawlDelay === 'number') nonNegative('crawlDelay', crawlDelay)
  else if (crawlDelay !== undefined && typeof crawlDelay !== 'function') throw new ConfigError('features.crawlDelay must be a number of seconds or a function of the host index')
  const out: ResolvedFeatures = {
    pageBytesRange: range('pageBytesRange', f.pageBytesRange, 256),
    linksRange: range('linksRange', f.linksRange, 2),
    robots: f.robots ?? false,
    crawlDelay,
    redirects: rate('redirects', f.redirects ?? 0),
    crossHostRedirects: rate('crossHostRedirects', f.crossHostRedirects ?? 0.3),
    brokenLinks: rate('brokenLinks', f.brokenLinks ?? 0),
    transient: rate('transient', f.transient ?? 0),
    maxTransientFailures: nonNegative('maxTransientFailures', f.maxTransientFailures ?? 2, true),
    retryAfter: nonNegative('retryAfter', f.retryAfter ?? 1, true),
    slow: rate('slow', f.slow ?? 0),
    slowMs: nonNegative('slowMs', f.slowMs ?? 50, true),
    timeouts: rate('timeouts', f.timeouts ?? 0),
    stallMs: nonNegative('stallMs', f.stallMs ?? 30 * C.second, true),
    oversize: rate('oversize', f.oversize ?? 0),
    compression: rate('compression', f.compression ?? 0),
    charsets: rate('charsets', f.charsets ?? 0),
    malformed: rate('malformed', f.malformed ?? 0),
    traps: f.traps ?? false,
    aliases: rate('aliases', f.aliases ?? 0),
    offsiteHosts: nonNegative('offsiteHosts', f.offsiteHosts ?? 0, true),
    offsiteLinks: rate('offsiteLinks', f.offsiteLinks ?? 0),
    any: false
  }
  if (out.transient > 0 && out.maxTransientFailures < 1) throw new ConfigError('features.maxTransientFailures must be ≥ 1 when transient > 0')
  out.any = out.pageBytesRange !== undefined || out.linksRange !== undefined || out.robots || out.redirects > 0 ||
    out.brokenLinks > 0 || out.timeouts > 0 || out.oversize > 0 || out.charsets > 0 || out.malformed > 0 ||
    out.traps || out.aliases > 0 || (out.offsiteHosts > 0 && out.offsiteLinks > 0)
  return out
}

/** Does a query parameter name match the policy's stripParams (exact, or prefix with a trailing `*`)? */
export function stripped (name: string, stripParams: readonly string[]): boolean {
  for (const p of stripParams) {
    if (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p) return true
  }
  return false
}

const UNRESERVED = /[A-Za-z0-9\-._~]/

/**
 * RFC 3986 §6.2.2.1–2: percent-escapes of unreserved characters decoded (`%7E` → `~`), the hex
 * digits of the others in upper case. Two spellings that agree after this name the same resource.
 */
export function normalizePercent (target: string): string {
  if (!target.includes('%')) return target
  return target.replace(/%([0-9A-Fa-f]{2})/g, (escape, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16))
    return UNRESERVED.test(c) ? c : escape.toUpperCase()
  })
}

/** The request-target a crawler sends for `target`: percent-escapes normalized, the policy's parameters stripped. */
export function normalizeTarget (target: string, stripParams: readonly string[]): string {
  return stripQuery(normalizePercent(target), stripParams)
}

/** The request-target a crawler sends for `target` once it has stripped the policy's parameters. */
export function stripQuery (target: string, stripParams: readonly string[]): string {
  const q = target.indexOf('?')
  if (q === -1 || stripParams.length === 0) return target
  const kept = target.slice(q + 1).split('&').filter(part => part !== '' && !stripped(part.split('=', 1)[0], stripParams))
  return kept.length === 0 ? target.slice(0, q) : target.slice(0, q + 1) + kept.join('&')
}

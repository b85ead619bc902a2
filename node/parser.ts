/**
 * The page parser: every followable URL in an HTML page, the page's meta robots directives, and
 * optionally user-defined fields picked out with CSS selectors.
 *
 * This runs once for every fetched page, so link extraction uses a scanner that only reads the start
 * tags it needs (html-scan.ts) and builds no DOM; only user-defined extraction (off by default) pays
 * for cheerio.
 *
 * URL resolution follows the HTML Standard: a `<base href>` sets the base URL for the whole document,
 * also for links that come before it (https://html.spec.whatwg.org/multipage/urls-and-fetching.html#document-base-url),
 * so hrefs are collected as written and resolved once the whole page has been read.
 */

import { createRequire } from 'node:module'
import type { CheerioAPI } from 'cheerio'
import { DEFAULT_MAX_LINKS_PER_PAGE, DEFAULT_MAX_URL_LENGTH } from './constants.js'
import { ConfigError } from './errors.js'
import { scanStartTags, TagSet } from './html-scan.js'
import { normalizeUrl, type NormalizeOptions } from './normalize.js'
import { MET, REPEAT, type RepeatFilter } from './recent.js'
import type { ParsedPage } from './types.js'

// cheerio takes ~0.1–0.4 s to load and only extraction needs it: load it on first use.
const require = createRequire(import.meta.url)
let cheerioLoad: ((html: string) => CheerioAPI) | undefined
function load (html: string): CheerioAPI {
  cheerioLoad ??= (require('cheerio') as typeof import('cheerio')).load
  return cheerioLoad(html)
}

export interface ParseOptions {
  /**
   * Query parameters removed from every link (see `NormalizeOptions.stripParams`). Pass the same array
   * on every call: the normalizer compiles it once and caches it by identity.
   *
   * @default []
   */
  stripParams?: string[]
  /**
   * Distinct links kept from one page, in document order; the rest are dropped.
   *
   * @default DEFAULT_MAX_LINKS_PER_PAGE
   */
  maxLinks?: number
  /**
   * An href longer than this (after trimming whitespace) is skipped without being resolved.
   *
   * @default DEFAULT_MAX_URL_LENGTH
   */
  maxHrefLength?: number
  /**
   * User-defined fields: field name → CSS selector. A selector ending in `@name` selects that attribute
   * of the matched elements instead of their text (`".price@data-value"`). A field is a string when one
   * element matches, an array when several do, and absent when none does.
   *
   * @default undefined (no extraction, and cheerio is never run)
   */
  extract?: Record<string, string>
}

/**
 * Distinct raw hrefs collected per page, as a multiple of `maxLinks`. Hrefs are resolved only at the
 * end of the page (a late `<base>` changes them all), so this bounds the memory and resolution work a
 * link-farm page can cost. Several spellings of one URL (`a`, `./a`, `/dir/a`) are why it is more than 1.
 */
const RAW_HREFS_PER_LINK = 4

/** Values kept per user-defined field: a selector like `*` must not put a whole page in a record. */
const MAX_FIELD_VALUES = 1000

/** `rel` tokens of `<link>` that name a connection hint, not a resource. */
const SKIPPED_LINK_RELS = ['preconnect', 'dns-prefetch']

/**
 * Parse one HTML page. Never throws because of the page, whatever it holds: malformed markup yields
 * whatever links a tolerant tokenizer finds in it. With `repeats`, the links its filter met within
 * `recrawlAfter` of `now` (a thread's links already handed on) are dropped and the rest remembered
 * as handed on at `now`; `linkCount` is then the page's distinct links and `repeats` how many were
 * dropped (as `RepeatFilter.apply` on the whole page's links, without building the dropped ones).
 *
 * @throws ConfigError-named error if `maxLinks` or `maxHrefLength` is not a valid number
 */
export function parsePage (html: string, pageUrl: string, opts: ParseOptions = {}, repeats?: RepeatCheck): ParsedPage {
  const maxLinks = opts.maxLinks ?? DEFAULT_MAX_LINKS_PER_PAGE
  const maxHrefLength = opts.maxHrefLength ?? DEFAULT_MAX_URL_LENGTH
  // Options are the caller's, not the page's: a wrong one is a bug to report, not a page to skip.
  if (!Number.isSafeInteger(maxLinks) || maxLinks < 0) throw new ConfigError('maxLinks must be a non-negative integer')
  if (!Number.isSafeInteger(maxHrefLength) || maxHrefLength < 1) throw new ConfigError('maxHrefLength must be a positive integer')
  const collector = new LinkCollector(maxHrefLength, maxLinks * RAW_HREFS_PER_LINK)
  try {
    scanStartTags(html, LINK_TAGS, collector.onopentag)
  } catch {
    // The scanner is not known to throw on any input; if it ever does, keep what was collected.
  }

  // The filter is asked as links are resolved when it holds more than a page's links (a page cannot
  // then rotate it twice, and so forget a link it met earlier on the page); a smaller one filters
  // the page's distinct links afterwards.
  const during = repeats !== undefined && repeats.filter.enabled && repeats.filter.size >= 2 * maxLinks
  const links = new PageLinks(during ? repeats : undefined)
  if (!collector.nofollow) resolveLinks(collector, pageUrl, maxLinks, { stripParams: opts.stripParams }, links)
  const page: ParsedPage = { links: links.out, noindex: collector.noindex, nofollow: collector.nofollow }
  if (during) {
    page.linkCount = links.distinct
    page.repeats = links.repeats
  } else if (repeats !== undefined) {
    repeats.filter.apply(page, repeats.now)
  }
  if (opts.extract !== undefined && Object.keys(opts.extract).length > 0) {
    page.fields = extractFields(html, opts.extract)
  }
  return page
}

/**
 * Throw a `ConfigError` naming the first field whose selector cheerio cannot compile. Call it when
 * loading the configuration; `parsePage` itself skips such a field so that one bad selector cannot
 * stop a crawl.
 */
export function validateExtract (extract: Record<string, string>): void {
  const $ = load('')
  for (const [field, spec] of Object.entries(extract)) {
    if (typeof spec !== 'string' || spec.trim() === '') {
      throw new ConfigError(`extract.${field} must be a non-empty CSS selector, optionally ending in @attribute`)
    }
    const { selector } = parseFieldSpec(spec)
    if (selector === '') throw new ConfigError(`extract.${field} must have a CSS selector before its @attribute`)
    try {
      $(selector)
    } catch (err) {
      throw new ConfigError(`extract.${field} must be a valid CSS selector: ${(err as Error).message}`)
    }
  }
}

// --- link collection ---

/** The start tags the collector reads. */
const LINK_TAGS = new TagSet(['a', 'area', 'link', 'img', 'source', 'script', 'iframe', 'frame', 'video', 'audio', 'base', 'meta'],
  ['href', 'rel', 'src', 'srcset', 'name', 'content', 'http-equiv'])

/** Gathers raw hrefs, the first `<base href>` and the meta robots flags from the scanner's start tags. */
class LinkCollector {
  /** Distinct hrefs as written (trimmed), in document order. */
  readonly hrefs = new Set<string>()
  baseHref: string | undefined
  noindex = false
  nofollow = false
  private readonly maxHrefLength: number
  private readonly maxHrefs: number

  constructor (maxHrefLength: number, maxHrefs: number) {
    this.maxHrefLength = maxHrefLength
    this.maxHrefs = maxHrefs
  }

  readonly onopentag = (name: string, attribs: Record<string, string>): void => {
    switch (name) {
      case 'a':
      case 'area':
        if (attribs.href !== undefined && (attribs.rel === undefined || !hasToken(attribs.rel, 'nofollow'))) {
          this.add(attribs.href)
        }
        break
      case 'link':
        if (attribs.href !== undefined && (attribs.rel === undefined || !SKIPPED_LINK_RELS.some(rel => hasToken(attribs.rel, rel)))) {
          this.add(attribs.href)
        }
        break
      case 'img':
      case 'source':
        if (attribs.src !== undefined) this.add(attribs.src)
        if (attribs.srcset !== undefined) {
          for (const url of srcsetUrls(attribs.srcset)) this.add(url)
        }
        break
      case 'script':
      case 'iframe':
      case 'frame':
      case 'video':
      case 'audio':
        if (attribs.src !== undefined) this.add(attribs.src)
        break
      case 'base':
        // Only the first <base> with an href counts (HTML Standard, "frozen base URL").
        if (this.baseHref === undefined && attribs.href !== undefined) this.baseHref = attribs.href
        break
      case 'meta':
        this.onMeta(attribs)
        break
    }
  }

  private onMeta (attribs: Record<string, string>): void {
    const content = attribs.content
    if (content === undefined) return
    if (attribs.name !== undefined && attribs.name.trim().toLowerCase() === 'robots') {
      // Directives are comma-separated; some sites separate them with spaces only.
      for (const directive of content.toLowerCase().split(/[\s,]+/)) {
        if (directive === 'noindex') this.noindex = true
        else if (directive === 'nofollow') this.nofollow = true
        else if (directive === 'none') {
          this.noindex = true
          this.nofollow = true
        }
      }
    } else if (attribs['http-equiv'] !== undefined && attribs['http-equiv'].trim().toLowerCase() === 'refresh') {
      const url = refreshUrl(content)
      if (url !== undefined) this.add(url)
    }
  }

  private add (raw: string): void {
    if (this.hrefs.size >= this.maxHrefs) return
    const href = trimUrl(raw)
    // Empty and fragment-only hrefs point at this very page.
    if (href === '' || href.charCodeAt(0) === HASH) return
    if (href.length > this.maxHrefLength) return
    // Not http(s) (mailto:, javascript:, tel:, data:…): drop it before it takes a place in `hrefs`.
    // The normalizer would reject it too; this only saves the work and the slot.
    const scheme = schemeOf(href)
    if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') return
    this.hrefs.add(href)
  }
}

const HASH = 0x23

/**
 * Strip what the URL parser strips from both ends: C0 controls and space
 * (WHATWG URL Standard, basic URL parser step 1). Returns the same string in the common case.
 */
function trimUrl (s: string): string {
  let start = 0
  let end = s.length
  while (start < end && s.charCodeAt(start) <= 0x20) start++
  while (end > start && s.charCodeAt(end - 1) <= 0x20) end--
  return start === 0 && end === s.length ? s : s.slice(start, end)
}

/**
 * The lower-cased scheme of an absolute URL (`http`, `mailto`), or `undefined` for a relative one.
 * Follows the URL Standard's scheme state: a letter, then letters, digits, `+`, `-`, `.`, then `:`.
 * A tab or newline inside the scheme (which the URL parser would remove) makes it look relative here,
 * which is safe: the normalizer then decides.
 */
function schemeOf (href: string): string | undefined {
  const first = href.charCodeAt(0)
  if (!isAsciiAlpha(first)) return undefined
  const max = Math.min(href.length, 32)
  for (let i = 1; i < max; i++) {
    const c = href.charCodeAt(i)
    if (c === 0x3A /* : */) return href.slice(0, i).toLowerCase()
    if (!(isAsciiAlpha(c) || (c >= 0x30 && c <= 0x39) || c === 0x2B || c === 0x2D || c === 0x2E)) return undefined
  }
  return undefined
}

function isAsciiAlpha (c: number): boolean {
  return (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
}

/** Whether `http://` or `https://` starts `href`: then the base URL cannot change the result. */
function isAbsoluteHttp (href: string): boolean {
  const c = href.charCodeAt(4)
  if (c === 0x3A /* : */) return href.startsWith('//', 5) && href.slice(0, 4).toLowerCase() === 'http'
  if (c === 0x73 || c === 0x53 /* s */) return href.charCodeAt(5) === 0x3A && href.startsWith('//', 6) && href.slice(0, 4).toLowerCase() === 'http'
  return false
}

/** Whether the space-separated token list `list` (a `rel`) holds `token`, ASCII case-insensitively. */
function hasToken (list: string, token: string): boolean {
  const lower = list.toLowerCase()
  let at = lower.indexOf(token)
  while (at >= 0) {
    const before = at === 0 ? 0x20 : lower.charCodeAt(at - 1)
    const after = at + token.length === lower.length ? 0x20 : lower.charCodeAt(at + token.length)
    if (isAsciiWhitespace(before) && isAsciiWhitespace(after)) return true
    at = lower.indexOf(token, at + 1)
  }
  return false
}

function isAsciiWhitespace (c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0A || c === 0x0C || c === 0x0D
}

function skipWhitespace (s: string, pos: number): number {
  while (pos < s.length && isAsciiWhitespace(s.charCodeAt(pos))) pos++
  return pos
}

/**
 * The URL of every image candidate in a `srcset`, per the HTML Standard's "parse a srcset attribute":
 * a URL runs to the next whitespace, so it may contain commas (`a.jpg?w=1,2 2x`); trailing commas end
 * a candidate without descriptors; descriptors run to the next comma outside parentheses.
 * https://html.spec.whatwg.org/multipage/images.html#parsing-a-srcset-attribute
 */
export function srcsetUrls (srcset: string): string[] {
  const urls: string[] = []
  const n = srcset.length
  let pos = 0
  while (pos < n) {
    // Skip whitespace and commas between candidates.
    while (pos < n && (isAsciiWhitespace(srcset.charCodeAt(pos)) || srcset.charCodeAt(pos) === 0x2C)) pos++
    if (pos >= n) break
    const start = pos
    while (pos < n && !isAsciiWhitespace(srcset.charCodeAt(pos))) pos++
    let end = pos
    if (srcset.charCodeAt(end - 1) === 0x2C) {
      // "a.jpg, b.jpg": the commas end the candidate, which has no descriptors.
      while (end > start && srcset.charCodeAt(end - 1) === 0x2C) end--
      if (end > start) urls.push(srcset.slice(start, end))
      continue
    }
    urls.push(srcset.slice(start, end))
    // Descriptors ("2x", "300w", or junk): up to a comma that is not inside parentheses.
    let inParens = false
    while (pos < n) {
      const c = srcset.charCodeAt(pos++)
      if (c === 0x28 /* ( */) inParens = true
      else if (c === 0x29 /* ) */) inParens = false
      else if (c === 0x2C /* , */ && !inParens) break
    }
  }
  return urls
}

const URL_EQUALS = /^url[\t\n\f\r ]*=[\t\n\f\r ]*/i

/**
 * The target of a `<meta http-equiv="refresh">` content such as `5; url='/next'`, or `undefined` when
 * it has none (a plain reload) or cannot be parsed. The HTML Standard's "shared declarative refresh
 * steps": a time, a `;` or `,` or whitespace, an optional `url=`, an optional quote that is stripped
 * with everything after its match.
 * https://html.spec.whatwg.org/multipage/semantics.html#shared-declarative-refresh-steps
 */
export function refreshUrl (content: string): string | undefined {
  const n = content.length
  let pos = skipWhitespace(content, 0)
  const timeStart = pos
  while (pos < n && isDigit(content.charCodeAt(pos))) pos++
  if (pos === timeStart && content.charCodeAt(pos) !== 0x2E /* . */) return undefined
  while (pos < n && (isDigit(content.charCodeAt(pos)) || content.charCodeAt(pos) === 0x2E)) pos++
  if (pos >= n) return undefined
  let c = content.charCodeAt(pos)
  if (c !== 0x3B /* ; */ && c !== 0x2C /* , */ && !isAsciiWhitespace(c)) return undefined
  pos = skipWhitespace(content, pos)
  c = content.charCodeAt(pos)
  if (c === 0x3B || c === 0x2C) pos++
  pos = skipWhitespace(content, pos)
  if (pos >= n) return undefined

  let rest = content.slice(pos)
  const urlEquals = URL_EQUALS.exec(rest)
  if (urlEquals !== null) {
    rest = rest.slice(urlEquals[0].length)
  } else if (rest[0] === 'u' || rest[0] === 'U') {
    // "u…" that is not "url=": the whole rest is the URL, quotes and all.
    return rest
  }
  const quote = rest[0]
  if (quote === '"' || quote === "'") {
    rest = rest.slice(1)
    const close = rest.indexOf(quote)
    if (close >= 0) rest = rest.slice(0, close)
  }
  return rest
}

function isDigit (c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

// --- resolution ---

/**
 * Resolve the collected hrefs against the document's base URL, normalize, de-duplicate, cap.
 * Each distinct href is resolved once; `http(s)://…` hrefs skip the base, which cannot change them.
 */
function resolveLinks (collector: LinkCollector, pageUrl: string, maxLinks: number, normalizeOpts: NormalizeOptions, links: PageLinks): void {
  const base = documentBase(collector.baseHref, pageUrl)
  const cache = resolveCacheFor(normalizeOpts)
  // What an href resolves to depends only on part of the base: nothing for an absolute URL, the
  // origin for '/path', the directory for 'a/b', the whole base for '?q' or ''. Keying the cache on
  // (that part, href) lets the links every page repeats (navigation, footers) skip URL parsing
  // without building a key string per link.
  let origin: string | undefined
  let dir: string | undefined
  // Whether the origin and the directory are already in normalized form: then a plain path
  // resolves against them by concatenation (computed once a page, when first needed).
  let originPlain: boolean | undefined
  let dirPlain: boolean | undefined
  for (const href of collector.hrefs) {
    if (links.distinct >= maxLinks) break
    // Fast paths, before the cache (they would take a slot each): an href that is a plain path
    // ('/a/b-c_d.e~f', 'b/c.html') or an absolute URL already in normalized form needs no parsing:
    // the WHATWG parser and the normalizer give it back as written. A fragment is dropped anyway.
    const hash = href.indexOf('#')
    const bare = hash === -1 ? href : href.slice(0, hash)
    if (base !== undefined && bare.length > 0) {
      const c = bare.charCodeAt(0)
      if (c === 0x2f) {
        if (isPlainPath(bare, 0)) {
          origin ??= originOfBase(base)
          originPlain ??= isNormalizedAbsolute(origin + '/')
          if (originPlain) {
            links.offer(origin, bare)
            continue
          }
        }
      } else if (isPlainRelativePath(bare)) {
        dir ??= dirOfBase(base)
        dirPlain ??= isNormalizedAbsolute(dir)
        if (dirPlain) {
          links.offer(dir, bare)
          continue
        }
      }
    }
    if (isNormalizedAbsolute(bare)) {
      links.offer('', bare)
      continue
    }
    let part: string
    if (isAbsoluteHttp(href)) {
      part = ''
    } else if (base === undefined) {
      continue
    } else if (href.charCodeAt(0) === 0x2f && href.charCodeAt(1) !== 0x2f) { // '/x', not '//host'
      part = origin ??= originOfBase(base)
    } else if (href === '' || href.charCodeAt(0) === 0x3f || href.charCodeAt(0) === 0x23 || href.charCodeAt(0) === 0x2f) { // '', '?q', '#f', '//host'
      part = base
    } else if (hasScheme(href)) {
      // 'http:', 'http:x' (relative to a base of the same scheme: its query counts) or 'mailto:x'.
      part = base
    } else {
      part = dir ??= dirOfBase(base)
    }
    let url = cache.get(part, href)
    if (url === undefined) {
      url = resolveHref(href, part === '' ? undefined : base, normalizeOpts)
      cache.set(part, detach(href), url)
    }
    if (url !== null) links.offer('', url)
  }
}

/** Drop the links a thread handed on recently as a page's links are resolved (see `parsePage`). */
export interface RepeatCheck {
  filter: RepeatFilter
  now: number
}

/**
 * A page's links as resolution finds them, each offered as a prefix (the page's origin or directory,
 * or '') and the rest: de-duplicated in document order and, with a repeat check, without the links
 * handed on recently, which are dropped before their string is built.
 */
class PageLinks {
  readonly out: string[] = []
  /** Distinct links offered (kept or dropped as repeats). */
  distinct = 0
  repeats = 0
  private readonly set: Set<string> | undefined
  private readonly check: RepeatCheck | undefined

  constructor (check: RepeatCheck | undefined) {
    if (check !== undefined) {
      this.check = check
      check.filter.beginPage()
    } else {
      this.set = new Set()
    }
  }

  offer (prefix: string, rest: string): void {
    const check = this.check
    if (check === undefined) {
      const url = prefix + rest
      const set = this.set as Set<string>
      if (set.has(url)) return
      set.add(url)
      this.out.push(url)
      this.distinct++
      return
    }
    const met = check.filter.check(prefix, rest, check.now)
    if (met === MET) return
    this.distinct++
    if (met === REPEAT) this.repeats++
    else this.out.push(prefix + rest)
  }
}

/**
 * A copy of `s` that does not hold on to the string it was cut from. V8 makes a substring of 13 or
 * more characters a view into its parent (a "sliced string") and `a + b` a pair of references (a
 * "cons string"), so a link cut out of a page's HTML keeps the whole decoded page (~30 KB) alive for
 * as long as the link lives: in the frontier's buffer, in the router's pending batches, in a LevelDB
 * write, as a key of the href cache. Concatenating makes a cons string whose slice flattens it into
 * a fresh string (the slice then refers to that copy, one character longer, not to the page).
 */
export function detach (s: string): string {
  return (' ' + s).slice(1)
}

/** One href's normalized URL, or null when it is not a crawlable URL. */
function resolveHref (href: string, base: string | undefined, normalizeOpts: NormalizeOptions): string | null {
  try {
    return normalizeUrl(href, base, normalizeOpts) ?? null
  } catch {
    // The normalizer returns undefined for bad input; this only keeps a bug there from losing the page.
    return null
  }
}

/** Whether `href` has a ':' before any '/', '?' or '#': a scheme, so the whole base matters. */
function hasScheme (href: string): boolean {
  for (let i = 0; i < href.length; i++) {
    const c = href.charCodeAt(i)
    if (c === 0x3a) return true
    if (c === 0x2f || c === 0x3f || c === 0x23) return false
  }
  return false
}

/** An unreserved character (RFC 3986 §2.3) other than '.': ALPHA, DIGIT, '-', '_', '~'. */
function isPlainChar (c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f || c === 0x7e
}

/**
 * From `start` (a '/') to the end, a path of unreserved characters and '/', with no empty first
 * segment ('//' would be a network path), no segment starting with '.' (a dot segment, or one
 * spelled like it) and no query or fragment: the WHATWG URL parser serializes such a path as it is
 * written, and the normalizer leaves it as it is (RFC 3986 §2.3, §6.2.2).
 */
function isPlainPath (s: string, start: number): boolean {
  if (start + 1 < s.length && s.charCodeAt(start + 1) === 0x2f) return false
  return isPlainFrom(s, start + 1)
}

/**
 * A relative path ('b/c.html') of unreserved characters and '/' whose segments don't start with
 * '.': resolved against a directory URL it is appended as it is. It has no ':' (so no scheme), and
 * does not start with '/', '?' or '#'.
 */
function isPlainRelativePath (s: string): boolean {
  return isPlainChar(s.charCodeAt(0)) && isPlainFrom(s, 1)
}

/** From `i` (not 0) to the end: unreserved characters and '/', a '.' never first in a segment. */
function isPlainFrom (s: string, i: number): boolean {
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (isPlainChar(c) || c === 0x2f) continue
    if (c === 0x2e && s.charCodeAt(i - 1) !== 0x2f) continue
    return false
  }
  return true
}

/**
 * Whether `url` is an http(s) URL that `normalizeUrl` gives back unchanged, checked without parsing
 * it, for the common spelling only: a lower-case scheme, a host of lower-case ASCII letters, digits,
 * '-' and '.' (no trailing dot, no 'xn--' label; a last label starting with a digit only as a
 * canonical dotted-quad IPv4 address, since the URL parser reads such hosts as numbers), an optional
 * port in canonical form that is not the scheme's default, and a plain path (`isPlainPath`) with no
 * query. Anything else — false here — goes through the URL parser.
 */
export function isNormalizedAbsolute (url: string): boolean {
  let i: number
  if (url.startsWith('http://')) i = 7
  else if (url.startsWith('https://')) i = 8
  else return false
  const hostStart = i
  const n = url.length
  let lastLabel = i
  for (; i < n; i++) {
    const c = url.charCodeAt(i)
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d) continue
    if (c === 0x2e) {
      lastLabel = i + 1
      continue
    }
    break
  }
  const hostEnd = i
  if (hostEnd === hostStart || url.charCodeAt(hostEnd - 1) === 0x2e) return false
  const xn = url.indexOf('xn--', hostStart)
  if (xn !== -1 && xn < hostEnd) return false
  const first = url.charCodeAt(lastLabel)
  if (first >= 0x30 && first <= 0x39 && !isDottedQuad(url, hostStart, hostEnd)) return false
  if (url.charCodeAt(i) === 0x3a) {
    const portStart = ++i
    let port = 0
    for (; i < n && i - portStart < 6; i++) {
      const c = url.charCodeAt(i)
      if (c < 0x30 || c > 0x39) break
      port = port * 10 + c - 0x30
    }
    const digits = i - portStart
    if (digits === 0 || digits > 5 || port > 65535 || (digits > 1 && url.charCodeAt(portStart) === 0x30)) return false
    if (port === (hostStart === 7 ? 80 : 443)) return false
  }
  return url.charCodeAt(i) === 0x2f && isPlainPath(url, i)
}

/** `s` from `start` to `end` is four decimal numbers 0-255 without leading zeros, joined by '.'. */
function isDottedQuad (s: string, start: number, end: number): boolean {
  let parts = 0
  let i = start
  while (i <= end) {
    const from = i
    let v = 0
    while (i < end && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) {
      v = v * 10 + s.charCodeAt(i) - 0x30
      i++
    }
    const digits = i - from
    if (digits === 0 || digits > 3 || v > 255 || (digits > 1 && s.charCodeAt(from) === 0x30)) return false
    parts++
    if (i === end) return parts === 4
    if (s.charCodeAt(i) !== 0x2e) return false
    i++
  }
  return false
}

/** scheme://authority of a serialized base URL. */
function originOfBase (base: string): string {
  const end = base.indexOf('/', base.indexOf('//') + 2)
  return end === -1 ? base : base.slice(0, end)
}

/** The base up to its last '/' before any query: what a relative path resolves against. */
function dirOfBase (base: string): string {
  const q = base.search(/[?#]/)
  const path = q === -1 ? base : base.slice(0, q)
  return path.slice(0, path.lastIndexOf('/') + 1)
}

/**
 * (part of the base, href) → normalized URL (null: not a crawlable URL), one per set of normalize
 * options, bounded in two generations like `RecentMap`: when the young one holds half the entries
 * it becomes the old one and the old one is dropped; a hit in the old one is copied to the young.
 */
class ResolveCache {
  private young = new Map<string, Map<string, string | null>>()
  private old = new Map<string, Map<string, string | null>>()
  private count = 0
  constructor (private readonly half: number) {}

  get (part: string, href: string): string | null | undefined {
    const v = this.young.get(part)?.get(href)
    if (v !== undefined) return v
    const o = this.old.get(part)?.get(href)
    if (o !== undefined) this.set(part, href, o)
    return o
  }

  set (part: string, href: string, value: string | null): void {
    let m = this.young.get(part)
    if (m == null) this.young.set(part, m = new Map())
    m.set(href, value)
    if (++this.count >= this.half) {
      this.old = this.young
      this.young = new Map()
      this.count = 0
    }
  }
}

const RESOLVE_CACHE_ENTRIES = 20_000
const resolveCaches = new WeakMap<object, ResolveCache>()
const defaultResolveCache = new ResolveCache(RESOLVE_CACHE_ENTRIES / 2)

function resolveCacheFor (opts: NormalizeOptions): ResolveCache {
  const key = opts.stripParams
  if (key == null) return defaultResolveCache
  let c = resolveCaches.get(key)
  if (c == null) resolveCaches.set(key, c = new ResolveCache(RESOLVE_CACHE_ENTRIES / 2))
  return c
}

/**
 * The base URL links resolve against: the first `<base href>` resolved against the page URL, or the
 * page URL when there is none or it does not parse (the "fallback base URL"), as a serialized URL.
 * `undefined` only when the page URL itself is not a URL; then only absolute hrefs can be resolved.
 */
function documentBase (baseHref: string | undefined, pageUrl: string): string | undefined {
  let page: URL
  try {
    page = new URL(pageUrl)
  } catch {
    return undefined
  }
  if (baseHref === undefined) return page.href
  try {
    return new URL(baseHref, page).href
  } catch {
    return page.href
  }
}

// --- user-defined extraction ---

const ATTRIBUTE_SUFFIX = /@([^\s@()[\]"'=]+)$/

/** Split `".price@data-value"` into its selector and attribute. */
function parseFieldSpec (spec: string): { selector: string, attribute?: string } {
  const match = ATTRIBUTE_SUFFIX.exec(spec)
  if (match === null) return { selector: spec.trim() }
  return { selector: spec.slice(0, match.index).trim(), attribute: match[1].toLowerCase() }
}

function extractFields (html: string, extract: Record<string, string>): Record<string, string | string[]> {
  const fields: Record<string, string | string[]> = {}
  let $: ReturnType<typeof load>
  try {
    $ = load(html)
  } catch {
    return fields
  }
  for (const [field, spec] of Object.entries(extract)) {
    const { selector, attribute } = parseFieldSpec(spec)
    const values: string[] = []
    try {
      for (const element of $(selector)) {
        if (values.length >= MAX_FIELD_VALUES) break
        if (attribute === undefined) {
          // Text as a reader sees it: runs of whitespace from the markup's layout collapse to one space.
          values.push($(element).text().replace(/\s+/g, ' ').trim())
        } else {
          const value = $(element).attr(attribute)
          if (value !== undefined) values.push(value)
        }
      }
    } catch {
      // An invalid selector; validateExtract reports it at configuration time.
      continue
    }
    if (values.length === 1) fields[field] = values[0]
    else if (values.length > 1) fields[field] = values
  }
  return fields
}

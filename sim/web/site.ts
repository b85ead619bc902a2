/**
 * The pure, deterministic model of the synthetic web: which hosts and pages exist, what every page
 * links to, and every body byte. Nothing here does I/O; `sim/web.ts` serves it over HTTP.
 *
 * Everything is a function of the seed and the options: a page is generated from a generator keyed
 * by (seed, host, page), never from a shared stream, so any page can be rendered alone, in any order,
 * and the site costs no memory beyond a small text pool, whatever its size.
 *
 * Link graph. Page j of a host links to page j + 1 of the same host (so every page is reachable
 * from the host's root `/` through same-host links alone, whatever the scope of the crawler), to `/`,
 * and to random pages: half drawn uniformly, half from a power law that favours low page numbers
 * (a few very popular pages, a long tail), plus a share of absolute links to other hosts.
 *
 * Features (./features.ts, all opt-in) add links to other kinds of resources (./resources.ts):
 * redirect chains, broken links, stalls, oversized bodies, aliases, offsite hosts, traps; and
 * per-page or per-URL behaviour: charsets, broken markup, flaky, slow and compressed answers. Each
 * is drawn from its own generator, so turning one on changes nothing the others draw, and with none
 * on, the site is what it was before they existed.
 */
import { KiB } from '../../node/constants.js'
import { ConfigError } from '../../node/errors.js'
import { Prng, hashString, mix, seedToInt } from './prng.js'
import { normalizePercent, resolveFeatures, resolvePolicy } from './features.js'
import type { CrawlPolicy, ResolvedFeatures, SiteFeatures } from './features.js'
import { ALL_WORDS, SAMPLE_TEXT, WORDS, encode, wordTarget } from './charsets.js'
import type { Charset } from './charsets.js'
import { CALENDAR_ENTRY, FIRST_MONTH, LAST_MONTH, QUERIES, REFS, calendarPath, cartPath, filesPath, movedPath, pagePath, parseTarget } from './resources.js'
import type { Resource } from './resources.js'

export { pagePath } from './resources.js'
export type { Resource, ResourceKind } from './resources.js'

/** robots.txt of every host unless features or options say otherwise. */
export const DEFAULT_ROBOTS_TXT = 'User-agent: *\nDisallow: /private/\n'

export type SiteProfile = 'small' | 'large'

/** Page size and link count of each profile. */
export const PROFILES: Record<SiteProfile, { pageBytes: number, linksPerPage: number }> = {
  small: { pageBytes: 5 * KiB, linksPerPage: 20 },
  large: { pageBytes: 30 * KiB, linksPerPage: 150 }
}

export interface SiteInit {
  /** Same seed and options → same site, byte for byte. @default 1 */
  seed?: number | string
  /** Number of hosts (each served on its own port). @default 1 */
  hosts?: number
  /** Pages in total, split evenly over the hosts; page 0 of each host is its root `/`. @default 1000 */
  pages?: number
  /** Page size and link count preset. @default 'small' */
  profile?: SiteProfile
  /** Mean body size of a page in bytes, ±20 %. @default the profile's (5 KiB small, 30 KiB large) */
  pageBytes?: number
  /** Mean number of links on a page, ±20 %. @default the profile's (20 small, 150 large) */
  linksPerPage?: number
  /** `<img>` tags per page, pointing at `/img/N.png` (a 1×1 PNG). @default 0 */
  imagesPerPage?: number
  /** Share of a page's random links that point to another host (only when hosts > 1). @default 0.05 */
  crossHostLinkRatio?: number
  /** Links per page to `/private/N.html`, which the default robots.txt disallows. @default 0 */
  privateLinksPerPage?: number
  /**
   * Turn every feature on at the rates of `REALISTIC` (features.ts); `features` overrides them one
   * by one. Also makes `imagesPerPage` 1 unless it is given. @default false
   */
  realistic?: boolean
  /** Behaviours of a real web, one by one (see features.ts); all off by default. */
  features?: SiteFeatures
  /** The crawl policy the ground truth assumes (and the caps oversized bodies exceed). @default shoal's defaults */
  policy?: Partial<CrawlPolicy>
}

/** Options after defaults are applied. */
export interface SiteOptions {
  seed: number
  hosts: number
  pages: number
  profile: SiteProfile
  pageBytes: number
  linksPerPage: number
  imagesPerPage: number
  crossHostLinkRatio: number
  privateLinksPerPage: number
  realistic: boolean
  features: ResolvedFeatures
  policy: CrawlPolicy
}

/** A link target: page `page` of host `host` (indexes into the site, not URLs). */
export interface PageRef {
  host: number
  page: number
}

/** A link of a resource as a crawler resolves it (fragment dropped). */
export interface Outlink {
  /** Host index; `-1 - i` for offsite host i. */
  host: number
  /** The request-target it names (path and query), before the crawler strips any parameter. */
  target: string
  /** `link`: an href or src, one hop deeper; `redirect`: a Location, at the same depth. */
  via: 'link' | 'redirect'
}

/** A link a feature adds to a page. */
interface Extra {
  /** Host index; `-1 - i` for offsite host i. */
  host: number
  target: string
  text: string
}

/** The redirect chain page `page` of host `origin` links to: hop s is `/moved/origin/page/s` on `hops[s].host`. */
export interface RedirectChain {
  /** `form` of the Location: a path, an absolute URL, or a network-path reference (`//host:port/path`). */
  hops: Array<{ host: number, status: number, form: LocationForm }>
  /** Where the last hop points; host `-1 - i` is offsite host i. */
  final: { host: number, target: string }
}

export type LocationForm = 'path' | 'absolute' | 'network'

/** How the server answers one URL, whatever the page: a pure function of (seed, host, target). */
export interface Wire {
  /** The first `failures` requests are answered `failStatus`. */
  failures: number
  failStatus: number
  /** `headers`: answered `slowMs` late; `drip`: half the body, then the rest `slowMs` later. */
  slow: 'no' | 'headers' | 'drip'
  /** Content-Encoding used when the request accepts it. */
  encoding: 'identity' | 'gzip' | 'br'
}

/** How a page is written: its charset and how it is declared, and whether its markup is broken. */
export interface PageStyle {
  charset: Charset
  /** Content-Type header of the page. */
  contentType: string
  /** The `<meta>` that declares the charset, or '' (declared by the header only). */
  meta: string
  malformed: boolean
  /** `<meta name="robots" content="noindex, nofollow">`: a crawler follows none of its links. */
  nofollow: boolean
  /** The `/w/<word>` a non-ASCII link points to (an index into ALL_WORDS), when there is one. */
  word?: number
}

const PLAIN_STYLE: PageStyle = Object.freeze({ charset: 'utf-8', contentType: 'text/html; charset=utf-8', meta: '<meta charset="utf-8">', malformed: false, nofollow: false })

/** Charset declarations: Content-Type header and meta. Labels are WHATWG Encoding Standard labels of the charset. */
const DECLARATIONS: Record<Exclude<Charset, 'utf-8'>, Array<[string, string]>> = {
  'windows-1252': [
    ['text/html; charset=windows-1252', ''],
    ['text/html', '<meta charset="windows-1252">'],
    // What iso-8859-1 means on the web: windows-1252 (0x80–0x9F are € ‘ ’ …, not C1 controls).
    ['text/html; charset=ISO-8859-1', '']
  ],
  shift_jis: [
    ['text/html; charset=Shift_JIS', ''],
    ['text/html', '<meta http-equiv="Content-Type" content="text/html; charset=shift_jis">'],
    ['text/html', '<meta charset="x-sjis">']
  ]
}

function logUniform (rng: Prng, [min, max]: readonly [number, number]): number {
  return Math.round(min * (max / min) ** rng.float())
}

const NONE: Resource = Object.freeze({ kind: 'none' })

/** How a link is written in the HTML; all resolve to the same absolute URL. */
const enum LinkForm {
  /** `/page/7.html` */
  RootRelative,
  /** `7.html` from a page under /page/, `page/7.html` from `/`, `../` to the root */
  Relative,
  /** `http://127.0.0.1:PORT/page/7.html` (always used across hosts) */
  Absolute
}

/** Share of random link targets drawn from the power law rather than uniformly. */
const POPULAR_LINK_RATIO = 0.5
/** target = ⌊n·u^k⌋: density ∝ x^(1/k − 1), so k = 3 gives a steep head and a long tail. */
const POPULARITY_EXPONENT = 3
/** Share of links written with a `#fragment`, which a crawler must strip before de-duplicating. */
const FRAGMENT_RATIO = 0.05
const VOCABULARY_SIZE = 4096
const PARAGRAPH_POOL_SIZE = 1024
/** Streams of one page's generator, so the link graph can be walked without rendering text. */
const STREAM_LINKS = 1
const STREAM_BODY = 2
const STREAM_TITLE = 3
const STREAM_EXTRAS = 4
/** Streams of the features: links per feature, chains, page style, broken markup, per-URL wire behaviour. */
const STREAM_FEATURES = 5
const STREAM_REDIRECT = 6
const STREAM_STYLE = 7
const STREAM_MALFORMED = 8
const STREAM_WIRE = 9
const STREAM_TRAP = 10
const REDIRECT_CODES = [301, 302, 307, 308] as const
const FAILURE_CODES = [500, 503, 429] as const
/** Share of redirect chains that end at a 404, and (with offsite hosts) at an offsite page. */
const CHAIN_TO_MISSING = 0.07
const CHAIN_TO_OFFSITE = 0.05
const FOOTER_TRUNCATED = Buffer.from('</main>\n<footer><p>Generated by the shoal synthetic web.\n', 'latin1')
/** Last-Modified dates are spread over the year after this instant. */
const EPOCH_2024 = Date.UTC(2024, 0, 1)
const dayMs = 24 * 60 * 60 * 1000
const FOOTER = Buffer.from('</main>\n<footer><p>Generated by the shoal synthetic web.</p></footer>\n</body>\n</html>\n', 'latin1')

const SYLLABLES = [
  'ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'ze', 'ba', 'do', 'fi', 'gu', 'ha', 'je', 'ko',
  'la', 'mo', 'nu', 'pe', 'qui', 'ri', 'so', 'ta', 'un', 'ver', 'wa', 'xe', 'yo', 'zu', 'an', 'el',
  'in', 'or', 'ul', 'ser', 'tan', 'mor', 'lin', 'dar'
]

function positiveInteger (name: string, value: number, min = 1): number {
  if (!Number.isInteger(value) || value < min) throw new ConfigError(`${name} must be an integer ≥ ${min}, got ${value}`)
  return value
}

function ratio (name: string, value: number): number {
  if (!(value >= 0 && value <= 1)) throw new ConfigError(`${name} must be a number between 0 and 1, got ${value}`)
  return value
}

export function resolveSiteOptions (init: SiteInit = {}): SiteOptions {
  const profile = init.profile ?? 'small'
  if (PROFILES[profile] === undefined) throw new ConfigError(`profile must be 'small' or 'large', got ${String(profile)}`)
  const hosts = positiveInteger('hosts', init.hosts ?? 1)
  const pages = positiveInteger('pages', init.pages ?? 1000)
  if (pages < hosts) throw new ConfigError(`pages must be ≥ hosts (every host has a root page), got ${pages} pages for ${hosts} hosts`)
  return {
    seed: seedToInt(init.seed ?? 1),
    hosts,
    pages,
    profile,
    pageBytes: positiveInteger('pageBytes', init.pageBytes ?? PROFILES[profile].pageBytes, 256),
    linksPerPage: positiveInteger('linksPerPage', init.linksPerPage ?? PROFILES[profile].linksPerPage, 2),
    imagesPerPage: positiveInteger('imagesPerPage', init.imagesPerPage ?? (init.realistic === true ? 1 : 0), 0),
    crossHostLinkRatio: ratio('crossHostLinkRatio', init.crossHostLinkRatio ?? 0.05),
    privateLinksPerPage: positiveInteger('privateLinksPerPage', init.privateLinksPerPage ?? 0, 0),
    realistic: init.realistic === true,
    features: resolveFeatures(init.realistic === true, init.features),
    policy: resolvePolicy(init.policy)
  }
}

export class SiteModel {
  readonly options: SiteOptions
  private readonly words: string[]
  private readonly paragraphs: string[]
  /** The same paragraphs, encoded once with their opening `<p>`: a body is mostly copies of these. */
  private readonly paragraphBuffers: Buffer[]
  private readonly paragraphMeanLength: number
  /** Titles are asked for once per link, so they are kept once made (about 25 bytes a page). */
  private readonly titles: Array<Array<string | undefined>>

  constructor (init: SiteInit = {}) {
    this.options = resolveSiteOptions(init)
    const rng = new Prng(mix(this.options.seed, 0x7e47))
    this.words = []
    for (let i = 0; i < VOCABULARY_SIZE; i++) {
      let w = ''
      const n = 1 + rng.int(3)
      for (let s = 0; s < n; s++) w += SYLLABLES[rng.int(SYLLABLES.length)]
      this.words.push(w)
    }
    this.paragraphs = []
    let total = 0
    for (let i = 0; i < PARAGRAPH_POOL_SIZE; i++) {
      const n = 40 + rng.int(80)
      const parts: string[] = []
      for (let k = 0; k < n; k++) {
        let w = this.words[this.zipfWord(rng)]
        if (k === 0) w = w[0].toUpperCase() + w.slice(1)
        parts.push(w)
        if (k > 0 && k < n - 1 && rng.float() < 0.08) parts[parts.length - 1] += rng.float() < 0.5 ? ',' : '.'
      }
      const p = parts.join(' ') + '.'
      this.paragraphs.push(p)
      total += p.length
    }
    this.paragraphMeanLength = total / PARAGRAPH_POOL_SIZE
    this.paragraphBuffers = this.paragraphs.map(p => Buffer.from('<p>' + p, 'latin1'))
    this.titles = Array.from({ length: this.options.hosts }, () => [])
  }

  /** Word frequencies follow a power law too, as in real text. */
  private zipfWord (rng: Prng): number {
    return Math.floor(VOCABULARY_SIZE * rng.float() ** 2)
  }

  /** Number of pages on host `host`. */
  hostPages (host: number): number {
    const { pages, hosts } = this.options
    return Math.floor(pages / hosts) + (host < pages % hosts ? 1 : 0)
  }

  /** What `path` (the request-target without query) names on a host. */
  resolve (host: number, path: string): Resource {
    return this.resolveTarget(host, path.includes('?') ? path.slice(0, path.indexOf('?')) : path)
  }

  /**
   * What a request-target (path and query, as sent) names on a host: `none` (404) for anything the
   * site does not have, resources of features that are off included.
   */
  resolveTarget (host: number, target: string): Resource {
    // Spellings RFC 3986 calls equivalent (`%31`, `%c3`) name the same resource.
    const r = parseTarget(normalizePercent(target))
    const f = this.options.features
    const n = this.hostPages(host)
    switch (r.kind) {
      case 'page': case 'private': return r.page < n ? r : NONE
      case 'image': return r.image < n ? r : NONE
      case 'robots': case 'none': return r
      case 'open': return f.robots && r.n < n ? r : NONE
      case 'search': return f.robots ? r : NONE
      case 'alias': return f.aliases > 0 && r.page < n ? r : NONE
      case 'redirect': {
        if (f.redirects === 0 || r.origin >= this.options.hosts || r.page >= this.hostPages(r.origin)) return NONE
        const hop = this.chain(r.origin, r.page).hops[r.step]
        return hop !== undefined && hop.host === host ? r : NONE
      }
      case 'missing': case 'gone': return f.brokenLinks > 0 || f.redirects > 0 ? r : NONE
      case 'stall': return f.timeouts > 0 && r.n < n ? r : NONE
      case 'huge': case 'bomb': return f.oversize > 0 && r.n < n ? r : NONE
      case 'word': return f.charsets > 0 ? r : NONE
      case 'calendar': return f.traps && r.month >= FIRST_MONTH && r.month <= LAST_MONTH ? r : NONE
      case 'cart': case 'files': return f.traps ? r : NONE
    }
  }

  private pickTarget (rng: Prng, n: number): number {
    return rng.float() < POPULAR_LINK_RATIO ? Math.floor(n * rng.float() ** POPULARITY_EXPONENT) : rng.int(n)
  }

  /**
   * Every link of a page, in document order: `visit(host, page, form, fragment)`. The body is written
   * from the same sequence, so walking these is the same as parsing the rendered page.
   */
  private forEachLink (host: number, page: number, visit: (host: number, page: number, form: LinkForm, fragment: number) => void): void {
    const { hosts, linksPerPage, crossHostLinkRatio } = this.options
    const n = this.hostPages(host)
    const rng = new Prng(mix(this.options.seed, host, page, STREAM_LINKS))
    const range = this.options.features.linksRange
    const count = range !== undefined ? logUniform(rng, range) : rng.around(linksPerPage, Math.floor(linksPerPage / 5))
    const form = (): LinkForm => {
      const u = rng.float()
      return u < 0.7 ? LinkForm.RootRelative : u < 0.85 ? LinkForm.Relative : LinkForm.Absolute
    }
    const fragment = (): number => rng.float() < FRAGMENT_RATIO ? 1 + rng.int(9) : 0
    let emitted = 0
    if (page + 1 < n) { visit(host, page + 1, form(), 0); emitted++ }
    if (page > 0) { visit(host, 0, LinkForm.RootRelative, 0); emitted++ }
    for (; emitted < count; emitted++) {
      if (hosts > 1 && rng.float() < crossHostLinkRatio) {
        const other = (host + 1 + rng.int(hosts - 1)) % hosts
        visit(other, this.pickTarget(rng, this.hostPages(other)), LinkForm.Absolute, fragment())
      } else {
        visit(host, this.pickTarget(rng, n), form(), fragment())
      }
    }
  }

  /** Images (`/img/N.png` of the same host) a page shows, in document order. */
  images (host: number, page: number): number[] {
    const n = this.options.imagesPerPage
    if (n === 0) return []
    const rng = new Prng(mix(this.options.seed, host, page, STREAM_EXTRAS))
    return Array.from({ length: n }, () => rng.int(this.hostPages(host)))
  }

  /** Pages under /private/ (same host) a page links to, after its other links. */
  privateLinks (host: number, page: number): number[] {
    const n = this.options.privateLinksPerPage
    if (n === 0) return []
    const rng = new Prng(mix(this.options.seed, host, page, STREAM_EXTRAS, 1))
    return Array.from({ length: n }, () => rng.int(this.hostPages(host)))
  }

  /** The page links of a page (not those features add), in document order, duplicates kept. */
  forEachPageLink (host: number, page: number, visit: (host: number, page: number) => void): void {
    this.forEachLink(host, page, visit)
  }

  /** The pages a page links to, in document order, duplicates kept. */
  links (host: number, page: number): PageRef[] {
    const out: PageRef[] = []
    this.forEachLink(host, page, (h, p) => { out.push({ host: h, page: p }) })
    return out
  }

  /**
   * The links features add to a page, in document order (the non-ASCII word link of a charset page
   * is not among them: see `pageStyle`). The root links the traps; its aliases (`alias`) do not, so
   * a trap is entered only from depth 1 and its depth limits are exact (see truth.ts).
   */
  extras (host: number, page: number, alias = false): Extra[] {
    const f = this.options.features
    if (!f.any) return []
    const { seed } = this.options
    const n = this.hostPages(host)
    const out: Extra[] = []
    const same = (target: string, text: string): void => { out.push({ host, target, text }) }
    const draw = (feature: number, rate: number): Prng | undefined => {
      if (rate === 0) return undefined
      const rng = new Prng(mix(seed, host, page, STREAM_FEATURES, feature))
      return rng.float() < rate ? rng : undefined
    }
    if (f.robots) {
      const rng = new Prng(mix(seed, host, page, STREAM_FEATURES, 0))
      if (rng.float() < 0.1) same(`/private/${rng.int(n)}.html`, 'Members only')
      if (rng.float() < 0.1) same(`/search?q=${QUERIES[rng.int(QUERIES.length)]}`, 'Search')
      if (rng.float() < 0.05) same(`/private/open/${rng.int(n)}.html`, 'Open archive')
    }
    let rng = draw(1, f.redirects)
    if (rng !== undefined) same(movedPath(host, page, 0), 'Moved')
    rng = draw(2, f.brokenLinks)
    if (rng !== undefined) same(rng.float() < 0.7 ? `/missing/${rng.int(n)}.html` : `/gone/${rng.int(n)}.html`, 'Old link')
    rng = draw(3, f.timeouts)
    if (rng !== undefined) same(`/stall/${rng.int(n)}.html`, 'Live feed')
    rng = draw(4, f.oversize)
    if (rng !== undefined) same(rng.float() < 0.5 ? `/huge/${rng.int(n)}.html` : `/bomb/${rng.int(n)}.html`, 'Full archive')
    rng = draw(5, f.aliases)
    if (rng !== undefined) {
      const u = rng.float()
      const t = this.pickTarget(rng, n)
      if (u < 0.2) same('/index.html', 'Home')
      else if (u < 0.6) same(`${pagePath(t)}?ref=${REFS[rng.int(REFS.length)]}`, this.title(host, t))
      else if (u < 0.8 || t === 0) same(`${pagePath(t)}?utm_source=newsletter&utm_medium=email`, this.title(host, t))
      // The same URL spelled with escaped digits (RFC 3986 §6.2.2.2): a normalizing crawler asks for /page/N.html.
      else same(`/page/${[...String(t)].map(d => '%3' + d).join('')}.html`, this.title(host, t))
    }
    rng = f.offsiteHosts > 0 ? draw(6, f.offsiteLinks) : undefined
    if (rng !== undefined) out.push({ host: -1 - rng.int(f.offsiteHosts), target: `/page/${1 + rng.int(1000)}.html`, text: 'Elsewhere' })
    if (page === 0 && f.traps && !alias) {
      same(calendarPath(CALENDAR_ENTRY), 'Calendar')
      same(cartPath(this.firstSession(host)), 'Your cart')
      same(filesPath(0), 'Files')
    }
    return out
  }

  /** The session id of the cart the root links to. */
  private firstSession (host: number): number {
    return mix(this.options.seed, host, STREAM_TRAP)
  }

  /** The next session id: every cart page links to the cart under a new one. */
  private nextSession (sid: number): number {
    return mix(this.options.seed, sid, STREAM_TRAP, 1)
  }

  /** The redirect chain page `page` of host `origin` links to (when it does: see `extras`). */
  chain (origin: number, page: number): RedirectChain {
    const { hosts, features: f } = this.options
    const rng = new Prng(mix(this.options.seed, origin, page, STREAM_REDIRECT))
    const length = 1 + rng.int(3)
    const other = (h: number): number => hosts > 1 && rng.float() < f.crossHostRedirects ? (h + 1 + rng.int(hosts - 1)) % hosts : h
    const hops: RedirectChain['hops'] = []
    let host = origin
    for (let s = 0; s < length; s++) {
      if (s > 0) host = other(host)
      hops.push({ host, status: REDIRECT_CODES[rng.int(REDIRECT_CODES.length)], form: 'path' })
    }
    const u = rng.float()
    let final: RedirectChain['final']
    if (f.offsiteHosts > 0 && u < CHAIN_TO_OFFSITE) {
      final = { host: -1 - rng.int(f.offsiteHosts), target: `/page/${1 + rng.int(1000)}.html` }
    } else {
      const h = other(host)
      final = { host: h, target: u < CHAIN_TO_OFFSITE + CHAIN_TO_MISSING ? `/missing/${rng.int(1000)}.html` : pagePath(this.pickTarget(rng, this.hostPages(h))) }
    }
    // A Location names the host when it changes host, and now and then when it does not.
    for (let s = 0; s < length; s++) {
      const next = s + 1 < length ? hops[s + 1].host : final.host
      if (next !== hops[s].host || rng.float() < 0.3) hops[s].form = rng.float() < 0.2 ? 'network' : 'absolute'
    }
    return { hops, final }
  }

  /** Where hop `step` of a chain points: the next hop, or the chain's end. */
  redirectTarget (origin: number, page: number, step: number): { status: number, host: number, target: string, form: LocationForm } {
    const c = this.chain(origin, page)
    const hop = c.hops[step]
    const next = step + 1 < c.hops.length ? { host: c.hops[step + 1].host, target: movedPath(origin, page, step + 1) } : c.final
    return { status: hop.status, host: next.host, target: next.target, form: hop.form }
  }

  /** How the server answers a URL on the wire (failures first, slowness, compression). */
  wire (host: number, target: string): Wire {
    const f = this.options.features
    const rng = new Prng(mix(this.options.seed, host, hashString(target), STREAM_WIRE))
    const w: Wire = { failures: 0, failStatus: 200, slow: 'no', encoding: 'identity' }
    if (rng.float() < f.transient) {
      w.failures = 1 + rng.int(f.maxTransientFailures)
      w.failStatus = FAILURE_CODES[rng.int(FAILURE_CODES.length)]
    }
    if (rng.float() < f.slow) w.slow = rng.float() < 0.5 ? 'headers' : 'drip'
    if (rng.float() < f.compression) w.encoding = rng.float() < 0.5 ? 'gzip' : 'br'
    return w
  }

  /** The charset and markup of a page (its aliases share it). */
  pageStyle (host: number, page: number): PageStyle {
    const f = this.options.features
    if (f.charsets === 0 && f.malformed === 0 && !f.robots) return PLAIN_STYLE
    const rng = new Prng(mix(this.options.seed, host, page, STREAM_STYLE))
    const style: PageStyle = { ...PLAIN_STYLE }
    // Never the root: a host whose root says nofollow has nothing else to crawl.
    if (rng.float() < (f.robots && page !== 0 ? 0.03 : 0)) style.nofollow = true
    if (rng.float() < f.charsets) {
      const u = rng.float()
      if (u < 0.2) {
        style.word = rng.int(ALL_WORDS.length)
      } else {
        const charset: Charset = u < 0.6 ? 'windows-1252' : 'shift_jis'
        const [contentType, meta] = DECLARATIONS[charset][rng.int(3)]
        const words = WORDS[charset]
        Object.assign(style, { charset, contentType, meta, word: ALL_WORDS.indexOf(words[rng.int(words.length)]) })
      }
    }
    style.malformed = rng.float() < f.malformed
    // A sloppy server: no Content-Type, or a useless one; the body is sniffed (it has a <meta charset>).
    if (style.malformed && style.charset === 'utf-8' && rng.float() < 0.25) style.contentType = rng.float() < 0.5 ? '' : 'application/octet-stream'
    return style
  }

  /**
   * Every link of a resource, as a crawler resolves it: what the served body holds (href, src) or,
   * for a redirect, its Location. Empty for what has no links (errors, images, stalls).
   * `skipPageLinks` leaves out a page's links to pages (`forEachPageLink`); a page with a nofollow
   * meta has none.
   */
  outlinks (host: number, r: Resource, visit: (link: Outlink) => void, skipPageLinks = false): void {
    const link = (h: number, target: string): void => { visit({ host: h, target, via: 'link' }) }
    switch (r.kind) {
      case 'page': case 'alias': {
        const page = r.page
        if (this.pageStyle(host, page).nofollow) return
        // The ground truth walks these by index (forEachPageLink), without making strings.
        if (!skipPageLinks) this.forEachLink(host, page, (h, p) => { link(h, pagePath(p)) })
        for (const p of this.privateLinks(host, page)) link(host, `/private/${p}.html`)
        for (const e of this.extras(host, page, r.kind === 'alias')) link(e.host, e.target)
        const word = this.pageStyle(host, page).word
        if (word !== undefined) link(host, wordTarget(ALL_WORDS[word]))
        for (const i of this.images(host, page)) link(host, `/img/${i}.png`)
        return
      }
      case 'redirect': {
        const t = this.redirectTarget(r.origin, r.page, r.step)
        visit({ host: t.host, target: t.target, via: 'redirect' })
        return
      }
      case 'calendar':
        if (r.month > FIRST_MONTH) link(host, calendarPath(r.month - 1))
        if (r.month < LAST_MONTH) link(host, calendarPath(r.month + 1))
        link(host, '/')
        return
      case 'cart':
        link(host, cartPath(this.nextSession(r.sid ?? this.firstSession(host))))
        link(host, '/')
        return
      case 'files':
        link(host, filesPath(r.level + 1))
        link(host, '/')
        return
      case 'open': case 'word': case 'search':
        link(host, '/')
    }
  }

  /** robots.txt of a host: the model's (features.robots) or the default, with its Crawl-delay if any. */
  robotsTxt (host: number): string {
    const f = this.options.features
    const delay = typeof f.crawlDelay === 'function' ? f.crawlDelay(host) : f.crawlDelay
    const crawlDelay = delay === undefined ? '' : `Crawl-delay: ${delay}\n`
    if (!f.robots) return crawlDelay === '' ? DEFAULT_ROBOTS_TXT : DEFAULT_ROBOTS_TXT + crawlDelay
    const rules = 'Disallow: /private/\nAllow: /private/open/\nDisallow: /search\n' + crawlDelay
    if (host % 2 === 0) return `# robots.txt of host ${host}\nUser-agent: *\n${rules}`
    // RFC 9309 §2.2.1: a crawler obeys the group that names it and only that one; the `*` group
    // below would shut it out.
    return `# robots.txt of host ${host}\nUser-agent: googlebot\nDisallow: /nogoogle/\n\nUser-agent: shoal\nUser-agent: otherbot\n${rules}\n` +
      'User-agent: *\nDisallow: /\n'
  }

  /**
   * Does robots.txt let shoal fetch `target` on a host? The model's rules for shoal (longest match
   * wins, Allow on a tie: RFC 9309 §2.2.2), or the default `Disallow: /private/`.
   */
  allowed (target: string): boolean {
    if (!this.options.features.robots) return !target.startsWith('/private/')
    if (target.startsWith('/private/open/')) return true
    return !target.startsWith('/private/') && !target.startsWith('/search')
  }

  /**
   * Every page reachable from the given roots (default: every host's `/`) by following links,
   * breadth-first; `sameHostOnly` stays on each root's host, like a crawler scoped to its seeds' hosts.
   */
  reachable (roots: PageRef[] = this.roots(), sameHostOnly = false): PageRef[] {
    const seen: Uint8Array[] = []
    for (let h = 0; h < this.options.hosts; h++) seen.push(new Uint8Array(this.hostPages(h)))
    const order: PageRef[] = []
    for (const r of roots) {
      if (seen[r.host][r.page] === 0) { seen[r.host][r.page] = 1; order.push(r) }
    }
    for (let i = 0; i < order.length; i++) {
      const from = order[i]
      this.forEachLink(from.host, from.page, (h, p) => {
        if (sameHostOnly && h !== from.host) return
        if (seen[h][p] === 0) { seen[h][p] = 1; order.push({ host: h, page: p }) }
      })
    }
    return order
  }

  /** Page 0 of every host. */
  roots (): PageRef[] {
    return Array.from({ length: this.options.hosts }, (_, host) => ({ host, page: 0 }))
  }

  /** A page's title: 2–4 words, stable, used as the anchor text of links to it. */
  title (host: number, page: number): string {
    const cached = this.titles[host][page]
    if (cached !== undefined) return cached
    const rng = new Prng(mix(this.options.seed, host, page, STREAM_TITLE))
    const n = 2 + rng.int(3)
    let t = ''
    for (let i = 0; i < n; i++) {
      const w = this.words[rng.int(VOCABULARY_SIZE)]
      t += (i === 0 ? '' : ' ') + w[0].toUpperCase() + w.slice(1)
    }
    this.titles[host][page] = t
    return t
  }

  /** Strong validator for conditional requests; changes with the seed and the options that shape the body. */
  etag (host: number, page: number, alias = false): string {
    const o = this.options
    const tag = `"${mix(o.seed, o.pageBytes, o.linksPerPage, o.imagesPerPage, o.privateLinksPerPage, host, page).toString(36)}-${page}`
    if (!o.features.any) return tag + '"'
    // Features shape bodies too; the root's aliases lack its trap links.
    const { crawlDelay, ...rates } = o.features
    return `${tag}-${hashString(JSON.stringify([rates, o.policy])).toString(36)}${alias && page === 0 ? '-a' : ''}"`
  }

  /** A fixed Last-Modified date in 2024, per page. */
  lastModified (host: number, page: number): string {
    return new Date(EPOCH_2024 + (mix(this.options.seed, host, page) % 365) * dayMs).toUTCString()
  }

  /** The HTML of a page as a string (see `body`). */
  html (host: number, page: number, origins: readonly string[], offsite: readonly string[] = []): string {
    return this.body(host, page, origins, offsite).toString('latin1')
  }

  /**
   * The body of a page. `origins[h]` is the `http://host:port` of host h, used by absolute links;
   * `offsite[i]` that of offsite host i. Built as a list of buffers, most of them pre-encoded
   * paragraphs, and copied once: flattening one big string costs more. Only ASCII is emitted unless
   * the page has a charset of its own (features.charsets); `alias`: the body served under an alias
   * of the page (the root's lacks its trap links).
   */
  body (host: number, page: number, origins: readonly string[], offsite: readonly string[] = [], alias = false): Buffer {
    const { pageBytes, features } = this.options
    const rng = new Prng(mix(this.options.seed, host, page, STREAM_BODY))
    const target = features.pageBytesRange !== undefined ? logUniform(rng, features.pageBytesRange) : rng.around(pageBytes, Math.floor(pageBytes / 5))
    const fromRoot = page === 0
    const style = this.pageStyle(host, page)
    const broken = style.malformed ? new Prng(mix(this.options.seed, host, page, STREAM_MALFORMED)) : undefined
    const anchor = broken === undefined
      ? (href: string, text: string) => `<a href="${href}">${text}</a>`
      : (href: string, text: string) => brokenAnchor(broken, href, text)
    const anchors: string[] = []
    let anchorBytes = 0
    this.forEachLink(host, page, (h, p, form, fragment) => {
      let href: string
      if (form === LinkForm.Absolute || h !== host) href = origins[h] + pagePath(p)
      else if (form === LinkForm.RootRelative || (fromRoot && p === 0)) href = pagePath(p)
      else if (p === 0) href = '../'
      else href = fromRoot ? `page/${p}.html` : `${p}.html`
      if (fragment !== 0) href += `#s${fragment}`
      const a = anchor(href, this.title(h, p))
      anchors.push(a)
      anchorBytes += a.length + 1
    })
    for (const p of this.privateLinks(host, page)) {
      const a = anchor(`/private/${p}.html`, 'Members only')
      anchors.push(a)
      anchorBytes += a.length + 1
    }
    for (const e of this.extras(host, page, alias)) {
      const origin = e.host < 0 ? (offsite[-1 - e.host] ?? `http://offsite${-1 - e.host}.invalid`) : e.host === host ? '' : origins[e.host]
      const a = anchor((origin + e.target).replaceAll('&', '&amp;'), e.text)
      anchors.push(a)
      anchorBytes += a.length + 1
    }
    if (broken !== undefined) {
      // Links a browser never sees: a crawler must not request them.
      for (const a of [`<!-- <a href="/commented/${broken.int(1000)}.html">old version</a> -->`,
        `<script>var promo = '<a href="/commented/${broken.int(1000)}.html">x</a>'; if (promo.length < 0) document.write(promo)</script>`]) {
        anchors.splice(1 + broken.int(anchors.length), 0, a)
        anchorBytes += a.length + 1
      }
    }
    if (features.robots) {
      const rng = new Prng(mix(this.options.seed, host, page, STREAM_FEATURES, 7))
      if (rng.float() < 0.1) {
        const a = `<a href="/commented/${rng.int(1000)}.html" rel="sponsored nofollow">Sponsored</a>`
        anchors.push(a)
        anchorBytes += a.length + 1
      }
    }
    const title = this.title(host, page)
    let meta = style.meta === '' ? '' : style.meta + '\n'
    if (style.nofollow) meta += '<meta name="robots" content="noindex, nofollow">\n'
    let head = `<!DOCTYPE html>\n<html lang="en">\n<head>\n${meta}` +
      `<title>${title}</title>\n<meta name="description" content="${this.paragraphs[rng.int(PARAGRAPH_POOL_SIZE)].slice(0, 120)}">\n` +
      `</head>\n<body>\n<header><nav>${anchors.length > 0 ? anchors[0] : ''}</nav></header>\n<main>\n<h1>${title}</h1>\n`
    const images = this.images(host, page)
    for (let i = 0; i < images.length; i++) {
      head += `<img src="/img/${images[i]}.png" alt="figure ${i + 1}" width="1" height="1">\n`
    }
    const parts: Buffer[] = [Buffer.from(head, 'latin1')]
    if (style.word !== undefined) {
      // Text and a link written raw in the page's own charset: decoded wrongly, the link names a page that does not exist.
      const word = ALL_WORDS[style.word]
      const text = SAMPLE_TEXT[style.charset][mix(host, page) % SAMPLE_TEXT[style.charset].length]
      // UTF-8 pages write it escaped half the time, with lower-case hex (which a crawler normalizes).
      const href = style.charset === 'utf-8' && (host + page) % 2 === 1 ? wordTarget(word).replace(/%[0-9A-F]{2}/g, e => e.toLowerCase()) : `/w/${word}`
      parts.push(encode(`<p class="i18n">${text} <a href="${href}">${word}</a></p>\n`, style.charset))
    }
    const footer = broken === undefined ? FOOTER : FOOTER_TRUNCATED
    let size = footer.length
    for (const p of parts) size += p.length
    // Spread the remaining links over as many paragraphs as the target size needs, a few per paragraph.
    const room = target - size - anchorBytes
    const paragraphs = Math.max(1, Math.round(room / (this.paragraphMeanLength + 8)))
    let next = 1
    for (let i = 0; i < paragraphs; i++) {
      const p = this.paragraphBuffers[rng.int(PARAGRAPH_POOL_SIZE)]
      let tail = ''
      const until = Math.round(((i + 1) * (anchors.length - 1)) / paragraphs) + 1
      for (; next < until; next++) tail += ' ' + anchors[next]
      const t = Buffer.from(tail + (broken === undefined ? '</p>\n' : brokenCloser(broken)), 'latin1')
      parts.push(p, t)
      size += p.length + t.length
    }
    parts.push(footer)
    return Buffer.concat(parts, size)
  }

  /**
   * The body of a resource that is not a page (a trap, a `/w/` or `/private/open/` page, a search
   * result): a small UTF-8 page with the links `outlinks` lists.
   */
  smallHtml (host: number, r: Resource): string {
    const links: string[] = []
    let title: string
    switch (r.kind) {
      case 'calendar': {
        const name = calendarPath(r.month).slice(10, -1)
        title = `Events of ${name}`
        if (r.month > FIRST_MONTH) links.push(`<a href="${calendarPath(r.month - 1)}" rel="prev">Previous month</a>`)
        if (r.month < LAST_MONTH) links.push(`<a href="${calendarPath(r.month + 1)}" rel="next">Next month</a>`)
        break
      }
      case 'cart':
        title = 'Your cart is empty'
        links.push(`<a href="${cartPath(this.nextSession(r.sid ?? this.firstSession(host)))}">Continue shopping</a>`)
        break
      case 'files':
        title = `Index of ${filesPath(r.level)}`
        // The classic relative-link bug: a link meant to be /files/ written relative to the page.
        links.push('<a href="files/">files/</a>')
        break
      case 'word':
        title = ALL_WORDS[r.word]
        break
      case 'open':
        title = `Open archive ${r.n}`
        break
      default:
        title = 'Search results'
    }
    links.push('<a href="/">Home</a>')
    return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>\n` +
      `<body><h1>${title}</h1><p>${links.join(' | ')}</p></body></html>\n`
  }

  /** A leaf page under /private/, disallowed by the default robots.txt and linked only if `privateLinksPerPage` > 0. */
  privateHtml (host: number, page: number): string {
    return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Private ${page}</title></head>\n` +
      `<body><p>Host ${host}, private page ${page}. A crawler that obeys robots.txt never sees this.</p></body></html>\n`
  }
}

/**
 * One anchor of a page with broken markup, in a form a conforming HTML tokenizer still reads as a
 * link to `href` (WHATWG HTML §13.2.5: unquoted values, missing whitespace between attributes,
 * duplicate attributes — the first wins —, a newline inside a URL — the URL parser drops it).
 */
function brokenAnchor (rng: Prng, href: string, text: string): string {
  switch (rng.int(10)) {
    case 1: if (/^[^\s"'=<>`]+$/.test(href)) return `<a href=${href}>${text}</a>`; break
    case 2: return `<A HREF='${href}'>${text}</A>`
    case 3: return `<a href="${href}">${text}`
    case 4: return `<a class="x"href="${href}" data-empty=>${text}</a>`
    case 5: {
      const slash = href.lastIndexOf('/')
      if (slash > 0 && slash < href.length - 1) return `<a\n  href="${href.slice(0, slash + 1)}\n\t${href.slice(slash + 1)}"\n  title="a > b">${text}</a>`
      break
    }
    case 6: return `<a href="${href}"/>${text}</a>`
    case 7: return `<a href="${href}" href="/commented/${rng.int(1000)}.html">${text}</a>`
    case 8: return `<a title='<b>' href = "${href}" >${text}</a>`
  }
  return `<a href="${href}">${text}</a>`
}

/** How a paragraph of a page with broken markup ends: closed, left open, stray or misnested tags. */
function brokenCloser (rng: Prng): string {
  switch (rng.int(5)) {
    case 0: return '</p>\n'
    case 1: return '\n'
    case 2: return '</p></span>\n'
    case 3: return '\n<div class="box">\n'
    default: return '</p>\n<b><i>note</b></i>\n'
  }
}

/**
 * The ground truth of a crawl of the synthetic web: every URL a correct crawl requests, how many
 * times, and why — computed from the model alone, never from a crawl.
 *
 * "Correct" is shoal's crawl policy (node/config.ts defaults, or the site's `policy`), with the
 * simulator's settings (allowPrivate, delay 0), seeded with every host's root:
 *
 * - Scope is the seeds' hosts: links to offsite hosts are never requested (nor their robots.txt).
 * - A link is one hop deeper than its page; a page at maxDepth is fetched but its links are not
 *   followed. A redirect's target is a new URL at the depth of the redirecting URL (which gets a
 *   record and one request of its own); the target after hop n is followed only if n ≤ maxRedirects.
 * - URLs are de-duplicated after the crawler's normalization: fragments dropped, percent-escapes
 *   normalized (RFC 3986 §6.2.2), stripParams (tracking parameters) removed; `?ref=` aliases and
 *   `/index.html` are distinct URLs and fetched.
 * - `rel=nofollow` links and every link of a page with `<meta name="robots" content="nofollow">`
 *   are not followed (node/parser.ts); links in comments and scripts are not links.
 * - robots.txt: a disallowed URL is never requested; hosts' robots.txt is fetched once each.
 * - Scope guards: maxUrlLength, maxPathSegments, maxPathRepeats (as node/scope.ts counts them).
 * - Retries: 500, 503, 429 and timeouts are retried up to maxRetries times, so a URL whose first k
 *   requests fail is requested k + 1 times, or 1 + maxRetries times (and fails) when k > maxRetries;
 *   a URL that always stalls 1 + maxRetries times. 404, 410 and bodies over a cap: once, no retry.
 * - Links are followed only from a 2xx HTML page whose body is within the caps.
 *
 * Exactness. Depths are the shortest (BFS) ones. A crawler admits a URL at the depth it first meets
 * it, which may be deeper than the shortest when pages are fetched out of breadth-first order; that
 * changes the fetched set only for URLs whose shortest depth is near maxDepth. Ordinary pages sit
 * a few hops from a root (links follow a power law), far below the default maxDepth of 20. Traps are
 * the ones that reach maxDepth, so each is entered from its host's root only (depth 1, not even from
 * the root's aliases) and is a chain (calendar months both ways, session ids, /files/files/…) where
 * the only way to a trap page is through the one before it: their depths are exact whatever the
 * order of the crawl, and so is how many trap pages a crawl fetches. Also assumed: no host reaches
 * maxPagesPerHost, and robots.txt is the model's (a `robots` option given to the web replaces the
 * text but not these rules).
 */
import type { SiteModel } from './site.js'
import type { Resource } from './resources.js'
import { pagePath } from './resources.js'
import { normalizeTarget } from './features.js'

export type ExpectedKind = 'page' | 'alias' | 'redirect' | 'error' | 'timeout' | 'oversize' | 'trap' | 'image'

export interface ExpectedUrl {
  host: number
  /** Request-target (path and query) as the crawler sends it. */
  target: string
  kind: ExpectedKind
  /** Requests a correct crawl makes for it. */
  requests: number
  /** Shortest number of link hops from a root (redirects add none). */
  depth: number
  /** Answered 2xx in the end (its links, if any, followed). */
  ok: boolean
}

export interface GroundTruth {
  /** Breadth-first order. */
  urls: ExpectedUrl[]
  /** Per host: request-target → its entry. */
  byHost: Array<Map<string, ExpectedUrl>>
}

interface Node { host: number, target: string, depth: number, redirects: number, page: number }

function kindOf (r: Resource): ExpectedKind {
  switch (r.kind) {
    case 'page': case 'open': case 'word': case 'search': case 'private': return 'page'
    case 'alias': return 'alias'
    case 'redirect': return 'redirect'
    case 'stall': return 'timeout'
    case 'huge': case 'bomb': return 'oversize'
    case 'calendar': case 'cart': case 'files': return 'trap'
    case 'image': return 'image'
    default: return 'error'
  }
}

/** Path segments and repeats as node/scope.ts counts them: a trailing slash adds none, empty inner segments count. */
function pathOk (target: string, maxSegments: number, maxRepeats: number): boolean {
  const q = target.indexOf('?')
  let path = q === -1 ? target : target.slice(0, q)
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1)
  if (path.length <= 1) return true
  let slashes = 0
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 0x2f) slashes++
  if (slashes <= maxSegments && slashes <= maxRepeats) return true
  const segments = path.slice(1).split('/')
  if (segments.length > maxSegments) return false
  const counts = new Map<string, number>()
  for (const s of segments) {
    const c = (counts.get(s) ?? 0) + 1
    if (c > maxRepeats) return false
    counts.set(s, c)
  }
  return true
}

/** Every URL a correct crawl of `site` requests, seeded with every host's root served at `origins`. */
export function groundTruth (site: SiteModel, origins: readonly string[]): GroundTruth {
  const { hosts, policy } = site.options
  const byHost = Array.from({ length: hosts }, () => new Map<string, ExpectedUrl>())
  /** Pages by index, so the bulk of the links is checked without making strings. */
  const pageSeen = Array.from({ length: hosts }, (_, h) => new Uint8Array(site.hostPages(h)))
  const urls: ExpectedUrl[] = []
  const stripParams = policy.stripParams

  const admit = (level: Node[], host: number, target: string, depth: number, redirects: number): void => {
    if (host < 0 || host >= hosts) return // offsite: out of scope
    target = normalizeTarget(target, stripParams)
    const r = site.resolveTarget(host, target)
    const page = r.kind === 'page' ? r.page : -1
    if (page >= 0 ? pageSeen[host][page] === 1 : byHost[host].has(target)) return
    // Scope guards (node/scope.ts), then robots.txt: either way never requested.
    if (origins[host].length + target.length > policy.maxUrlLength) return
    if (!pathOk(target, policy.maxPathSegments, policy.maxPathRepeats) || !site.allowed(target)) return
    // Reserve the target now; `expand` fills in the entry.
    if (page >= 0) pageSeen[host][page] = 1
    else byHost[host].set(target, undefined as unknown as ExpectedUrl)
    level.push({ host, target, depth, redirects, page })
  }

  const expand = (node: Node, level: Node[], next: Node[]): void => {
    const { host, target, depth } = node
    const r = node.page >= 0 ? { kind: 'page' as const, page: node.page } : site.resolveTarget(host, target)
    const kind = kindOf(r)
    let requests = 1
    let ok = kind === 'page' || kind === 'alias' || kind === 'trap' || kind === 'redirect' || kind === 'image'
    if (kind === 'timeout') {
      requests = 1 + policy.maxRetries
    } else if (ok && kind !== 'image') {
      const { failures } = site.wire(host, target)
      ok = failures <= policy.maxRetries
      requests = 1 + Math.min(failures, policy.maxRetries)
    }
    const entry: ExpectedUrl = { host, target, kind, requests, depth, ok }
    urls.push(entry)
    byHost[host].set(target, entry)
    if (!ok) return
    if (r.kind === 'page' || r.kind === 'alias') {
      if (depth + 1 > policy.maxDepth) return
      site.forEachPageLink(host, r.page, (h, p) => {
        if (pageSeen[h][p] === 0) admit(next, h, pagePath(p), depth + 1, 0)
      })
    }
    site.outlinks(host, r, (l) => {
      if (l.via === 'redirect') {
        if (node.redirects + 1 <= policy.maxRedirects) admit(level, l.host, l.target, depth, node.redirects + 1)
      } else if (depth + 1 <= policy.maxDepth) {
        admit(next, l.host, l.target, depth + 1, 0)
      }
    }, true)
  }

  let level: Node[] = []
  for (let h = 0; h < hosts; h++) admit(level, h, '/', 0, 0)
  while (level.length > 0) {
    const next: Node[] = []
    // Redirect targets join the level being walked: they are at the same depth.
    for (let i = 0; i < level.length; i++) expand(level[i], level, next)
    level = next
  }
  return { urls, byHost }
}

/**
 * The synthetic web: a deterministic site generated from a seed, served by real HTTP servers on
 * loopback, one server (port) per host, that knows its own ground truth (every URL a crawler should
 * find) and counts every request it gets, so tests and benchmarks can check a crawl from the
 * outside: coverage, duplicate fetches, robots.txt obedience, who fetched what and when.
 *
 *   const web = await startSyntheticWeb({ seed: 7, hosts: 2, pages: 500 })
 *   // crawl web.rootUrls …
 *   web.summary()   // { pagesExpected, pagesFetched, coverage, duplicateFetches, … }
 *   await web.close()
 *
 * The site itself (pages, links, bodies) is `SiteModel` in ./web/site.ts; this file is the HTTP
 * side. A request is resolved to a resource kind and answered by `respond`; new behaviours of the
 * simulated web (redirects, errors, traps, slow or broken responses) are new resource kinds there.
 */
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { deflateSync, crc32 } from 'node:zlib'
import { ConfigError } from '../node/errors.js'
import { RequestCounters } from './web/counters.js'
import type { RequestLogEntry, UrlCounter } from './web/counters.js'
import { SiteModel, pagePath } from './web/site.js'
import type { PageRef, SiteInit, SiteOptions } from './web/site.js'

export { SiteModel, PROFILES, pagePath } from './web/site.js'
export type { PageRef, SiteInit, SiteOptions, SiteProfile } from './web/site.js'
export type { RequestLogEntry, UrlCounter } from './web/counters.js'

export const DEFAULT_ROBOTS_TXT = 'User-agent: *\nDisallow: /private/\n'

export interface SyntheticWebInit extends SiteInit {
  /** Address every host's server binds. Loopback only: the simulator never listens elsewhere. @default '127.0.0.1' */
  bindAddress?: string
  /** Port of each host, by host index; 0 or missing picks an ephemeral port. @default all ephemeral */
  ports?: number[]
  /**
   * robots.txt of every host: its text, `false` to answer 404, or a function of the host index.
   * @default DEFAULT_ROBOTS_TXT (`User-agent: *` / `Disallow: /private/`)
   */
  robots?: string | false | ((host: number) => string | false)
  /** Keep every request in `stats().log` (costly on big crawls: counters are kept anyway). @default false */
  log?: boolean
  /** Width of one bucket of `stats().timeline`. @default 1000 (ms) */
  timelineBucketMs?: number
  /**
   * Keep rendered page bodies, least recently used first out, up to this many bytes; 0 renders each
   * request anew (about 20 µs for a small page and 80 µs for a large one). @default 0
   */
  cacheBytes?: number
  /** Answer a matching If-None-Match with 304 Not Modified. @default true */
  conditional?: boolean
}

/** What a crawl did to the site, from the server's point of view. */
export interface CrawlSummary {
  pagesExpected: number
  /** Expected pages requested at least once. */
  pagesFetched: number
  /** pagesFetched / pagesExpected. */
  coverage: number
  /** Every request, whatever it asked for. */
  requests: number
  /** Requests for expected pages, repeats included. */
  pageRequests: number
  /** Requests beyond the first, summed over every URL. */
  duplicateFetches: number
  robotsRequests: number
  /** Requests under /private/, which the default robots.txt disallows. */
  disallowedRequests: number
  imageRequests: number
  /** Requests answered 404 (URLs the site does not have). */
  notFound: number
  /** Body bytes sent. */
  bytes: number
  /** TCP connections accepted. */
  connections: number
  /** First and last request arrival (ms since the epoch), 0 when none. */
  firstRequestAt: number
  lastRequestAt: number
  /** lastRequestAt − firstRequestAt, in seconds. */
  activeSeconds: number
  byUserAgent: Record<string, number>
  byStatus: Record<string, number>
}

/** The raw counters (live objects: copy what you keep across a `reset`). */
export interface WebStats {
  requests: number
  connections: number
  bytes: number
  firstAt: number
  lastAt: number
  /** Per host index: request-target (path and query) → counter. */
  urls: ReadonlyArray<ReadonlyMap<string, UrlCounter>>
  byUserAgent: ReadonlyMap<string, number>
  byStatus: ReadonlyMap<number, number>
  byMethod: ReadonlyMap<string, number>
  /** Requests per `timelineBucketMs`, from the first request. */
  timeline: readonly number[]
  timelineBucketMs: number
  /** Every request, when started with `log: true`. */
  log?: readonly RequestLogEntry[]
}

export interface SyntheticWeb {
  readonly site: SiteModel
  readonly options: SiteOptions
  /** `http://127.0.0.1:PORT` of each host, by host index. */
  readonly origins: readonly string[]
  /** `/` of every host: the seeds of a crawl of the whole site. */
  readonly rootUrls: readonly string[]
  /** The absolute URL of page `page` of host `host`. */
  url: (host: number, page: number) => string
  /** Every page URL reachable from the root URLs by following links (robots.txt and images not counted). */
  expectedUrls: () => string[]
  /** Every image URL shown by an expected page (empty unless `imagesPerPage` > 0). */
  expectedImageUrls: () => string[]
  /** Ground truth: the body served for an absolute page URL of this site, or undefined. */
  body: (url: string) => Buffer | undefined
  stats: () => WebStats
  summary: () => CrawlSummary
  /** Forget every count (between two crawls of the same site). */
  reset: () => void
  /** Render every page into the cache (needs `cacheBytes` large enough), so no crawl pays for rendering. */
  warm: () => void
  close: () => Promise<void>
}

/** A valid 1×1 grey PNG (RFC 2083): signature, IHDR, IDAT, IEND. */
function onePixelPng (): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(data.length)
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(crc32(body))
    return Buffer.concat([len, body, crc])
  }
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]) // 1×1, 8-bit greyscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.from([0, 0x80]))),
    chunk('IEND', Buffer.alloc(0))
  ])
}

const PNG = onePixelPng()
const NOT_FOUND = Buffer.from('<!DOCTYPE html>\n<html><head><title>Not found</title></head><body><p>Not found.</p></body></html>\n', 'latin1')
const HTML = 'text/html; charset=utf-8'

/** Insertion-ordered map as an LRU cache of rendered bodies, bounded in bytes. */
class BodyCache {
  private readonly map = new Map<string, Buffer>()
  private bytes = 0
  constructor (private readonly maxBytes: number) {}

  get (key: string): Buffer | undefined {
    const b = this.map.get(key)
    if (b !== undefined) { this.map.delete(key); this.map.set(key, b) }
    return b
  }

  set (key: string, body: Buffer): void {
    if (body.length > this.maxBytes) return
    this.map.set(key, body)
    this.bytes += body.length
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes) break
      this.map.delete(k)
      this.bytes -= v.length
    }
  }
}

interface Reply {
  status: number
  headers: Record<string, string | number>
  body: Buffer
}

export async function startSyntheticWeb (init: SyntheticWebInit = {}): Promise<SyntheticWeb> {
  const site = new SiteModel(init)
  const { hosts } = site.options
  const bindAddress = init.bindAddress ?? '127.0.0.1'
  const robotsOption = init.robots ?? DEFAULT_ROBOTS_TXT
  const robotsOf = (h: number): string | false => typeof robotsOption === 'function' ? robotsOption(h) : robotsOption
  const conditional = init.conditional ?? true
  const bucketMs = init.timelineBucketMs ?? 1000
  const cacheBytes = init.cacheBytes ?? 0
  const ports = init.ports ?? []
  if (!(bucketMs > 0)) throw new ConfigError(`timelineBucketMs must be a positive number, got ${bucketMs}`)
  if (!(cacheBytes >= 0)) throw new ConfigError(`cacheBytes must be a number ≥ 0, got ${cacheBytes}`)
  if (ports.length > hosts) throw new ConfigError(`ports has ${ports.length} entries for ${hosts} hosts`)
  const cache = cacheBytes > 0 ? new BodyCache(cacheBytes) : undefined
  let counters = new RequestCounters(hosts, bucketMs, init.log ?? false)
  const origins: string[] = []

  const pageBody = (host: number, page: number): Buffer => {
    if (cache === undefined) return site.body(host, page, origins)
    const key = `${host}/${page}`
    let b = cache.get(key)
    if (b === undefined) { b = site.body(host, page, origins); cache.set(key, b) }
    return b
  }

  const respond = (host: number, req: IncomingMessage, target: string): Reply => {
    // A query string names no resource of this site: everything it links to is query-free.
    const r = target.includes('?') ? { kind: 'none' as const } : site.resolve(host, target)
    switch (r.kind) {
      case 'page': {
        const etag = site.etag(host, r.page)
        const headers = { 'content-type': HTML, etag, 'last-modified': site.lastModified(host, r.page) }
        if (conditional && req.headers['if-none-match'] === etag) return { status: 304, headers, body: Buffer.alloc(0) }
        return { status: 200, headers, body: pageBody(host, r.page) }
      }
      case 'robots': {
        const text = robotsOf(host)
        if (text === false) return { status: 404, headers: { 'content-type': HTML }, body: NOT_FOUND }
        return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: Buffer.from(text, 'utf8') }
      }
      case 'image':
        return { status: 200, headers: { 'content-type': 'image/png' }, body: PNG }
      case 'private':
        return { status: 200, headers: { 'content-type': HTML }, body: Buffer.from(site.privateHtml(host, r.page), 'latin1') }
      case 'none':
        return { status: 404, headers: { 'content-type': HTML }, body: NOT_FOUND }
    }
  }

  const handler = (host: number) => (req: IncomingMessage, res: ServerResponse): void => {
    const at = Date.now()
    const target = req.url ?? '/'
    const method = req.method ?? 'GET'
    let reply: Reply
    if (method !== 'GET' && method !== 'HEAD') {
      reply = { status: 405, headers: { allow: 'GET, HEAD', 'content-type': HTML }, body: NOT_FOUND }
    } else {
      reply = respond(host, req, target)
    }
    const sent = method === 'HEAD' || reply.status === 304 ? 0 : reply.body.length
    counters.record(host, method, target, req.headers['user-agent'] ?? '', reply.status, sent, at)
    reply.headers['content-length'] = reply.status === 304 ? 0 : reply.body.length
    res.writeHead(reply.status, reply.headers)
    if (sent === 0) res.end()
    else res.end(reply.body)
  }

  const servers: Server[] = []
  try {
    for (let h = 0; h < hosts; h++) {
      const server = createServer({ keepAlive: true }, handler(h))
      server.on('connection', () => { counters.connections++ })
      servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(ports[h] ?? 0, bindAddress, () => { server.off('error', reject); resolve() })
      })
      const { port } = server.address() as AddressInfo
      origins.push(`http://${bindAddress.includes(':') ? `[${bindAddress}]` : bindAddress}:${port}`)
    }
  } catch (err) {
    await closeServers(servers)
    throw err
  }

  const url = (host: number, page: number): string => origins[host] + pagePath(page)
  let reachable: PageRef[] | undefined
  const expectedPages = (): PageRef[] => (reachable ??= site.reachable())
  let expectedPaths: Array<Set<string>> | undefined
  const expectedPathSets = (): Array<Set<string>> => {
    if (expectedPaths === undefined) {
      expectedPaths = Array.from({ length: hosts }, () => new Set<string>())
      for (const p of expectedPages()) expectedPaths[p.host].add(pagePath(p.page))
    }
    return expectedPaths
  }

  return {
    site,
    options: site.options,
    origins,
    rootUrls: origins.map(o => o + '/'),
    url,
    expectedUrls: () => expectedPages().map(p => url(p.host, p.page)),
    expectedImageUrls: () => {
      const out = new Set<string>()
      for (const p of expectedPages()) for (const i of site.images(p.host, p.page)) out.add(`${origins[p.host]}/img/${i}.png`)
      return [...out]
    },
    body: (u: string) => {
      let parsed: URL
      try { parsed = new URL(u) } catch { return undefined }
      const host = origins.indexOf(parsed.origin)
      if (host < 0 || parsed.search !== '') return undefined
      const r = site.resolve(host, parsed.pathname)
      return r.kind === 'page' ? site.body(host, r.page, origins) : undefined
    },
    stats: () => ({
      requests: counters.requests,
      connections: counters.connections,
      bytes: counters.bytes,
      firstAt: counters.firstAt,
      lastAt: counters.lastAt,
      urls: counters.urls,
      byUserAgent: counters.byUserAgent,
      byStatus: counters.byStatus,
      byMethod: counters.byMethod,
      timeline: counters.timeline,
      timelineBucketMs: bucketMs,
      log: counters.log
    }),
    summary: () => {
      const expected = expectedPathSets()
      let pagesFetched = 0
      let pageRequests = 0
      let robotsRequests = 0
      let disallowedRequests = 0
      let imageRequests = 0
      for (let h = 0; h < hosts; h++) {
        for (const [target, c] of counters.urls[h]) {
          if (expected[h].has(target)) {
            pagesFetched++
            pageRequests += c.count
          } else if (target === '/robots.txt') robotsRequests += c.count
          else if (target.startsWith('/private/')) disallowedRequests += c.count
          else if (target.startsWith('/img/')) imageRequests += c.count
        }
      }
      let pagesExpected = 0
      for (const s of expected) pagesExpected += s.size
      return {
        pagesExpected,
        pagesFetched,
        coverage: pagesExpected === 0 ? 1 : pagesFetched / pagesExpected,
        requests: counters.requests,
        pageRequests,
        duplicateFetches: counters.duplicates(),
        robotsRequests,
        disallowedRequests,
        imageRequests,
        notFound: counters.byStatus.get(404) ?? 0,
        bytes: counters.bytes,
        connections: counters.connections,
        firstRequestAt: counters.firstAt,
        lastRequestAt: counters.lastAt,
        activeSeconds: (counters.lastAt - counters.firstAt) / 1000,
        byUserAgent: Object.fromEntries(counters.byUserAgent),
        byStatus: Object.fromEntries([...counters.byStatus].map(([k, v]) => [String(k), v]))
      }
    },
    reset: () => { counters = new RequestCounters(hosts, bucketMs, init.log ?? false) },
    warm: () => {
      for (let h = 0; h < hosts; h++) for (let p = 0; p < site.hostPages(h); p++) pageBody(h, p)
    },
    close: async () => { await closeServers(servers) }
  }
}

async function closeServers (servers: Server[]): Promise<void> {
  await Promise.all(servers.map(async s => {
    if (!s.listening) return
    await new Promise<void>(resolve => {
      s.close(() => { resolve() })
      // Keep-alive connections would hold close() open until their timeout.
      s.closeAllConnections()
    })
  }))
}

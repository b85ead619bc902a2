/**
 * A small web of real HTTP servers on 127.0.0.1 (node:http, ephemeral ports) for end-to-end crawl
 * tests, and the exact outcome a correct single-peer crawl of it has.
 *
 * Every server logs every request it receives — the URL as asked for (Host header + target), when
 * it arrived, when its response ended and the User-Agent — so a test judges the crawler by what the
 * servers saw, not by what the crawler says it did.
 */
import { lookup } from 'node:dns/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { RecordStatus } from '../../node/types.js'

// ---------------------------------------------------------------------------------------------
// One server and its request log.
// ---------------------------------------------------------------------------------------------

export interface Hit {
  /** The server's name (`a`, `b`, `c`…). */
  server: string
  /** `http://` + Host header + request target: the URL exactly as the client asked for it. */
  url: string
  /** Request target (path and query) as received. */
  path: string
  /** `performance.now()` when the request head arrived. */
  start: number
  /** `performance.now()` when the response finished or its connection closed; undefined while open. */
  end?: number
  userAgent?: string
}

export type Handler = (req: IncomingMessage, res: ServerResponse, hit: Hit) => void

export class TestServer {
  readonly name: string
  readonly hits: Hit[] = []
  private readonly server: Server
  private readonly handler: Handler

  private constructor (name: string, handler: Handler) {
    this.name = name
    this.handler = handler
    this.server = createServer((req, res) => { this.onRequest(req, res) })
  }

  /** Listen on 127.0.0.1 on an ephemeral port. */
  static async start (name: string, handler: Handler): Promise<TestServer> {
    const s = new TestServer(name, handler)
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject)
      s.server.listen(0, '127.0.0.1', () => { resolve() })
    })
    return s
  }

  get port (): number {
    return (this.server.address() as AddressInfo).port
  }

  /** `http://127.0.0.1:PORT` */
  get origin (): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** Requests received for a request target (path and query). */
  count (path: string): number {
    return this.hits.filter(h => h.path === path).length
  }

  private onRequest (req: IncomingMessage, res: ServerResponse): void {
    const hit: Hit = {
      server: this.name,
      url: `http://${req.headers.host ?? ''}${req.url ?? ''}`,
      path: req.url ?? '',
      start: performance.now(),
      userAgent: req.headers['user-agent']
    }
    this.hits.push(hit)
    const ended = (): void => { hit.end ??= performance.now() }
    res.once('finish', ended)
    res.once('close', ended)
    try {
      this.handler(req, res, hit)
    } catch (err: any) {
      if (!res.headersSent) res.writeHead(599, { 'content-type': 'text/plain' })
      res.end(`fixture handler threw: ${String(err?.message)}`)
    }
  }

  /** Drop open connections (hung and dripping responses included), then stop listening. */
  async close (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => { this.server.close(() => { resolve() }) })
  }
}

// ---------------------------------------------------------------------------------------------
// Static pages and route tables.
// ---------------------------------------------------------------------------------------------

export interface Page {
  /** @default 200 */
  status?: number
  /** Content-Type. @default 'text/html; charset=utf-8' */
  type?: string
  headers?: Record<string, string | number>
  body?: string | Uint8Array
}

export type Route = Page | Handler

/** The exact bytes a page's body is sent as. */
export function bytesOf (page: Page): Uint8Array {
  const body = page.body ?? ''
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body
}

/** Send a page, with a Content-Length. */
export function send (res: ServerResponse, page: Page): void {
  const body = bytesOf(page)
  res.writeHead(page.status ?? 200, {
    'content-type': page.type ?? 'text/html; charset=utf-8',
    'content-length': body.byteLength,
    ...page.headers
  })
  res.end(body)
}

/**
 * A handler that serves `table[target]`, else `table[pathname]` (for pages that read their query),
 * else a 404 marked as unknown: a crawl that asks for a URL nobody linked shows up in the hit log.
 */
export function routes (table: Record<string, Route>): Handler {
  return (req, res, hit) => {
    const target = req.url ?? '/'
    const route = table[target] ?? table[target.split('?', 1)[0]]
    if (route === undefined) {
      send(res, { status: 404, type: 'text/plain', headers: { 'x-fixture': 'unknown' }, body: `no such page: ${target}` })
    } else if (typeof route === 'function') {
      route(req, res, hit)
    } else {
      send(res, route)
    }
  }
}

/** A minimal HTML document. */
export function html (title: string, body: string, head = ''): string {
  return `<!doctype html>\n<html><head><title>${title}</title>${head}</head>\n<body>\n${body}\n</body></html>\n`
}

/** One `<a>` per href, one a line. */
export function anchors (...hrefs: string[]): string {
  return hrefs.map(h => `<a href="${h}">${h.slice(0, 40)}</a>`).join('\n')
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

/** Bytes that start like a PNG; `label` makes each one distinct (and so its CID). */
export function png (label: string): Uint8Array {
  return Buffer.concat([PNG_SIGNATURE, Buffer.from(`fixture image ${label}`)])
}

/**
 * `localhost` when it resolves to 127.0.0.1 only (then it can be spelled `LocalHost` in links), else
 * `127.0.0.1`: the servers listen on IPv4 loopback only, and on some systems localhost is ::1 first.
 */
export async function loopbackName (): Promise<string> {
  try {
    const all = await lookup('localhost', { all: true })
    if (all.length > 0 && all.every(a => a.address === '127.0.0.1')) return 'localhost'
  } catch {
    // No resolver answer: use the address.
  }
  return '127.0.0.1'
}

// ---------------------------------------------------------------------------------------------
// The fixture web.
// ---------------------------------------------------------------------------------------------

/** What the store must hold for a URL after a correct crawl (fields absent here are not checked). */
export interface ExpectedRecord {
  status: RecordStatus
  httpStatus?: number
  depth: number
  attempts?: number
  redirectTo?: string
  contentType?: string
  /** A substring of the record's `error`. */
  error?: string
  links?: number
  noindex?: boolean
}

export interface FixtureWebOptions {
  /** The crawl's maxDepth: bounds the calendar trap. @default 4 */
  maxDepth?: number
  /** The crawl's maxRetries: how often the 500 page is asked for. @default 2 */
  maxRetries?: number
}

export interface FixtureWeb {
  /** Seed host A: `http://localhost:PORT` when localhost is 127.0.0.1 here, else `http://127.0.0.1:PORT`. */
  a: TestServer
  /** Seed host B: robots.txt with a Crawl-delay; target of a cross-host redirect. */
  b: TestServer
  /** Out of scope (not a seed): must receive no request at all. */
  c: TestServer
  originA: string
  originB: string
  originC: string
  /** The seeds, spelled as a user might (mixed case, no trailing slash); both hosts are seeds. */
  seeds: string[]
  /** The options the expectations assume; add a dataDir and seeds. */
  crawlOptions: { allowPrivate: true, delay: 0, maxDepth: number, maxRetries: number, retryBaseDelay: number }
  /** Exactly the URLs (normalized) a correct crawl requests, robots.txt excluded. */
  expected: Set<string>
  /** Requests each expected URL costs: 1, or more for the retried ones. */
  requests: Map<string, number>
  /** Disallowed by robots.txt: a 'blocked' record, never requested. */
  blocked: Set<string>
  /** Linked but never to be requested, nor recorded: nofollow, meta nofollow, out of scope, beyond maxDepth, not parsed. */
  never: Set<string>
  /** The robots.txt URL of each seed host: each requested exactly once. */
  robots: string[]
  /** The record of every expected and every blocked URL. */
  records: Map<string, ExpectedRecord>
  /** The exact bytes sent for every URL that ends in a 200. */
  bodies: Map<string, Uint8Array>
  /** The calendar trap: `${originA}/calendar?month=N` for N = 1… */
  calendar: (month: number) => string
  /** Every request of every server, in arrival order per server. */
  hits: () => Hit[]
  close: () => Promise<void>
}

/**
 * Three servers. A and B are seeds; C is linked from both and must never be asked for anything.
 *
 * Depths (maxDepth 4): every page linked from A's home is admitted at depth 1 in one batch when the
 * home page is processed, before any of them is fetched, so depths below do not depend on the
 * order of fetching. Redirect targets keep their redirect's depth. Only the calendar goes deeper
 * than 3, and it is reached by one path only.
 */
export async function startFixtureWeb (opts: FixtureWebOptions = {}): Promise<FixtureWeb> {
  const maxDepth = opts.maxDepth ?? 4
  const maxRetries = opts.maxRetries ?? 2
  if (maxDepth < 3) throw new RangeError('fixture web: maxDepth must be at least 3 (its pages go three links deep)')

  const tableA: Record<string, Route> = {}
  const tableB: Record<string, Route> = {}
  const a = await TestServer.start('a', routes(tableA))
  const b = await TestServer.start('b', routes(tableB))
  const c = await TestServer.start('c', routes({
    '/': { body: html('out of scope', 'nobody should see this') }
  }))
  const nameA = await loopbackName()
  const A = `http://${nameA}:${a.port}`
  // Same host and scheme, other spelling: normalizes to A.
  const mixedA = nameA === 'localhost' ? `HTTP://LocalHost:${a.port}` : `HTTP://127.0.0.1:${a.port}`
  const B = b.origin
  const C = c.origin

  const expected = new Set<string>()
  const requests = new Map<string, number>()
  const blocked = new Set<string>()
  const never = new Set<string>()
  const records = new Map<string, ExpectedRecord>()
  const bodies = new Map<string, Uint8Array>()

  /** A page served with a 200 and fetched by a correct crawl at `depth`. */
  const page = (table: Record<string, Route>, origin: string, path: string, depth: number, p: Page, extra: Partial<ExpectedRecord> = {}): void => {
    table[path] = p
    const url = origin + path
    expected.add(url)
    requests.set(url, 1)
    bodies.set(url, bytesOf(p))
    records.set(url, { status: 'fetched', httpStatus: 200, depth, attempts: 1, contentType: p.type ?? 'text/html; charset=utf-8', ...extra })
  }
  const redirect = (table: Record<string, Route>, origin: string, path: string, depth: number, status: number, location: string, to: string): void => {
    table[path] = { status, headers: { location }, body: `moved to ${location}` }
    const url = origin + path
    expected.add(url)
    requests.set(url, 1)
    records.set(url, { status: 'redirect', httpStatus: status, depth, attempts: 1, redirectTo: to })
  }

  // --- host A ---------------------------------------------------------------------------------
  tableA['/robots.txt'] = {
    type: 'text/plain',
    body: '# fixture\nUser-agent: otherbot\nDisallow: /\n\nUser-agent: *\nDisallow: /private/\n'
  }
  const home = [
    anchors(
      'a.html',
      './b.html',
      'a.html#section', // same as a.html
      '#frag', // this page
      '', // this page
      '?q=1',
      '/dir/sub/page.html',
      'dir/index.html',
      '/dots/./x/../y.html',
      '/%7Etilde.html', // unreserved escape: /~tilde.html
      `${mixedA}/Case.html`,
      `//127.0.0.1:${b.port}/b-from-a.html`,
      '/images.html',
      '/base/page.html',
      '/redirect-301',
      '/redirect-302',
      '/old-home',
      '/missing.html',
      '/error-500.html',
      '/flaky.html',
      '/private/secret.html',
      '/private-notes.html', // "Disallow: /private/" does not cover it
      '/meta-nofollow.html',
      '/noindex.html',
      '/calendar?month=1',
      'mailto:someone@example.com',
      'javascript:void(0)',
      'tel:+15555550100',
      `${C}/from-a.html`
    ),
    '<a href="/nofollow.html" rel="nofollow">nofollow</a>',
    '<a href="/nofollow-2.html" rel="external NoFollow">nofollow, mixed case, among other tokens</a>'
  ]
  if (nameA === 'localhost') {
    // The same server by its address is another host as far as scope goes.
    home.push(anchors(`http://127.0.0.1:${a.port}/by-address.html`))
    never.add(`http://127.0.0.1:${a.port}/by-address.html`)
  }
  page(tableA, A, '/', 0, { body: html('Fixture home', home.join('\n')) })
  page(tableA, A, '/a.html', 1, { body: html('a', anchors('/', 'b.html')) })
  page(tableA, A, '/b.html', 1, { body: html('b', 'a leaf') })
  page(tableA, A, '/?q=1', 1, { body: html('query', anchors('/')) })
  page(tableA, A, '/dir/sub/page.html', 1, {
    body: html('dot segments', anchors('../x/a.html', '../../top.html', './same.html', '../../../../above-root.html'))
  })
  page(tableA, A, '/dir/x/a.html', 2, { body: html('dir x a', 'leaf') })
  page(tableA, A, '/top.html', 2, { body: html('top', 'leaf') })
  page(tableA, A, '/dir/sub/same.html', 2, { body: html('same', 'leaf') })
  page(tableA, A, '/above-root.html', 2, { body: html('above root', 'leaf') })
  page(tableA, A, '/dir/index.html', 1, { body: html('dir', anchors('sub/page.html', '../a.html')) })
  page(tableA, A, '/dots/y.html', 1, { body: html('y', 'leaf') })
  page(tableA, A, '/~tilde.html', 1, { body: html('tilde', 'leaf') })
  page(tableA, A, '/Case.html', 1, { body: html('Case', 'path case is kept') })
  page(tableA, A, '/images.html', 1, {
    body: html('resources', [
      '<img src="img/logo.png" alt="logo">',
      '<img src="/img/s1.png" srcset="img/s1.png 1x, img/s2.png 2x, /img/s3.png 300w">',
      '<script src="/js/app.js"></script>',
      '<iframe src="/frame.html"></iframe>'
    ].join('\n'), `<link rel="stylesheet" href="/css/site.css"><link rel="preconnect" href="${A}/preconnect-only">`)
  })
  never.add(`${A}/preconnect-only`)
  for (const name of ['logo', 's1', 's2', 's3']) {
    page(tableA, A, `/img/${name}.png`, 2, { type: 'image/png', body: png(name) })
  }
  // Scripts and style sheets are stored, not parsed: what they mention is not requested.
  page(tableA, A, '/js/app.js', 2, { type: 'text/javascript', body: 'location.href = "/not-a-link.html"\n' })
  page(tableA, A, '/css/site.css', 2, { type: 'text/css', body: 'body { background: url(/css-bg.png) }\n' })
  never.add(`${A}/not-a-link.html`)
  never.add(`${A}/css-bg.png`)
  page(tableA, A, '/frame.html', 2, { body: html('frame', anchors('/from-frame.html')) })
  page(tableA, A, '/from-frame.html', 3, { body: html('from frame', 'leaf') })
  // <base href> counts for the whole document, also for the <link> that comes before it.
  page(tableA, A, '/base/page.html', 1, {
    body: html('base', anchors('rel.html', '../up.html'), '<link rel="stylesheet" href="style.css"><base href="/based/">')
  })
  page(tableA, A, '/based/style.css', 2, { type: 'text/css', body: 'p { margin: 0 }\n' })
  page(tableA, A, '/based/rel.html', 2, { body: html('based rel', 'leaf') })
  page(tableA, A, '/up.html', 2, { body: html('up', 'leaf') })
  redirect(tableA, A, '/redirect-301', 1, 301, '/moved.html', `${A}/moved.html`)
  page(tableA, A, '/moved.html', 1, { body: html('moved', 'leaf') })
  redirect(tableA, A, '/redirect-302', 1, 302, `${B}/landing.html`, `${B}/landing.html`)
  // To a URL already crawled (the seed), spelled differently: recorded, nothing more fetched.
  redirect(tableA, A, '/old-home', 1, 301, `${mixedA}/`, `${A}/`)

  tableA['/missing.html'] = { status: 404, body: html('not found', anchors('/from-404.html')) }
  expected.add(`${A}/missing.html`)
  requests.set(`${A}/missing.html`, 1)
  records.set(`${A}/missing.html`, { status: 'http-error', httpStatus: 404, depth: 1, attempts: 1, error: 'HTTP 404' })
  // An error page's links are not followed.
  never.add(`${A}/from-404.html`)

  tableA['/error-500.html'] = { status: 500, body: 'boom' }
  expected.add(`${A}/error-500.html`)
  requests.set(`${A}/error-500.html`, 1 + maxRetries)
  records.set(`${A}/error-500.html`, {
    status: 'http-error', httpStatus: 500, depth: 1, attempts: 1 + maxRetries, error: `HTTP 500 (after ${1 + maxRetries} attempts)`
  })

  // 503 once, then the page.
  const flaky: Page = { body: html('flaky', 'second time lucky') }
  let flakyCalls = 0
  tableA['/flaky.html'] = (_req, res) => {
    if (flakyCalls++ === 0) send(res, { status: 503, type: 'text/plain', body: 'try again' })
    else send(res, flaky)
  }
  expected.add(`${A}/flaky.html`)
  requests.set(`${A}/flaky.html`, 2)
  bodies.set(`${A}/flaky.html`, bytesOf(flaky))
  records.set(`${A}/flaky.html`, { status: 'fetched', httpStatus: 200, depth: 1, attempts: 2 })

  blocked.add(`${A}/private/secret.html`)
  records.set(`${A}/private/secret.html`, { status: 'blocked', depth: 1 })
  tableA['/private/secret.html'] = { body: html('secret', 'robots.txt says no') }
  page(tableA, A, '/private-notes.html', 1, { body: html('private notes', 'not under /private/') })

  never.add(`${A}/nofollow.html`)
  never.add(`${A}/nofollow-2.html`)
  page(tableA, A, '/meta-nofollow.html', 1, {
    body: html('meta nofollow', anchors('/mn-target.html'), '<meta name="robots" content="noindex, nofollow">')
  }, { links: 0, noindex: true })
  never.add(`${A}/mn-target.html`)
  page(tableA, A, '/noindex.html', 1, {
    body: html('noindex', anchors('/from-noindex.html'), '<META NAME="robots" CONTENT="noindex">')
  }, { links: 1, noindex: true })
  page(tableA, A, '/from-noindex.html', 2, { body: html('from noindex', 'leaf') })

  // The trap: every month links to the next, forever. Only maxDepth stops it.
  const calendarPage = (month: number): Page => ({ body: html(`month ${month}`, anchors(`/calendar?month=${month + 1}`)) })
  tableA['/calendar'] = (req, res) => {
    const month = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('month'))
    send(res, calendarPage(month))
  }
  const calendar = (month: number): string => `${A}/calendar?month=${month}`
  for (let month = 1; month <= maxDepth; month++) {
    expected.add(calendar(month))
    requests.set(calendar(month), 1)
    bodies.set(calendar(month), bytesOf(calendarPage(month)))
    records.set(calendar(month), { status: 'fetched', httpStatus: 200, depth: month, attempts: 1, links: 1 })
  }
  never.add(calendar(maxDepth + 1))
  never.add(`${C}/from-a.html`)

  // --- host B ---------------------------------------------------------------------------------
  tableB['/robots.txt'] = {
    type: 'text/plain',
    body: 'User-agent: *\nCrawl-delay: 0.02\nDisallow: /secret\n'
  }
  page(tableB, B, '/', 0, {
    body: html('B home', anchors('landing.html', '/secret/x.html', `${C}/from-b.html`, `${A}/`, `HTTP://127.0.0.1:${b.port}/Upper.html`))
  })
  page(tableB, B, '/landing.html', 1, { body: html('landing', anchors(`${A}/a.html`)) })
  page(tableB, B, '/b-from-a.html', 1, { body: html('b from a', 'leaf') })
  page(tableB, B, '/Upper.html', 1, { body: html('Upper', 'leaf') })
  blocked.add(`${B}/secret/x.html`)
  records.set(`${B}/secret/x.html`, { status: 'blocked', depth: 1 })
  never.add(`${C}/from-b.html`)

  return {
    a,
    b,
    c,
    originA: A,
    originB: B,
    originC: C,
    seeds: [`${mixedA}/#start`, `HTTP://127.0.0.1:${b.port}`],
    crawlOptions: { allowPrivate: true, delay: 0, maxDepth, maxRetries, retryBaseDelay: 10 },
    expected,
    requests,
    blocked,
    never,
    robots: [`${A}/robots.txt`, `${B}/robots.txt`],
    records,
    bodies,
    calendar,
    hits: () => [...a.hits, ...b.hits, ...c.hits],
    close: async () => { await Promise.all([a.close(), b.close(), c.close()]) }
  }
}

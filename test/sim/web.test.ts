import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { DEFAULT_TRACKING_PARAMS } from '../../node/constants.js'
import { decodeBody, isHtml } from '../../node/decode.js'
import { parsePage } from '../../node/parser.js'
import { REALISTIC, SiteModel, groundTruth, startSyntheticWeb } from '../../sim/web.js'
import type { ExpectedUrl, SyntheticWeb, SyntheticWebInit } from '../../sim/web.js'
import { decode, encode } from '../../sim/web/charsets.js'
import { normalizePercent, normalizeTarget } from '../../sim/web/features.js'

async function get (url: string, headers: Record<string, string> = {}): Promise<{ status: number, body: string, headers: Headers }> {
  const res = await fetch(url, { headers })
  return { status: res.status, body: await res.text(), headers: res.headers }
}

/** Absolute link targets of a page, fragments dropped, in document order. */
function hrefs (html: string, base: string): string[] {
  const out: string[] = []
  for (const m of html.matchAll(/<a href="([^"]*)"/g)) {
    const u = new URL(m[1], base)
    u.hash = ''
    out.push(u.href)
  }
  return out
}

/** Origins replaced by their host index, so bodies served on different ports can be compared. */
function portless (body: string, web: SyntheticWeb): string {
  // Without the scheme, so that network-path references (`//127.0.0.1:PORT/…`) are replaced too.
  const named = web.origins.reduce((b, o, i) => b.replaceAll(o.slice(5), `//host${i}`), body)
  return web.offsiteOrigins.reduce((b, o, i) => b.replaceAll(o.slice(5), `//offsite${i}`), named)
}

interface Raw { status: number, headers: IncomingHttpHeaders, body: Buffer }

/** One GET with node:http: no decompression, no redirects, headers as sent; `timeoutMs` rejects. */
async function raw (url: string, headers: Record<string, string> = {}, timeoutMs = 5000): Promise<Raw> {
  return await new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: false, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => { chunks.push(c) })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** A body with its Content-Encoding undone. */
function decoded (r: Raw): Buffer {
  const enc = r.headers['content-encoding']
  return enc === 'gzip' ? gunzipSync(r.body) : enc === 'br' ? brotliDecompressSync(r.body) : r.body
}

/** GET until the answer is not a deliberate failure (a flaky URL fails its first requests). */
async function settled (url: string, headers: Record<string, string> = {}): Promise<Raw> {
  for (let i = 0; ; i++) {
    const r = await raw(url, headers)
    if (![500, 503, 429].includes(r.status) || i > 5) return r
  }
}

/** The first expected URL of a kind that `pick` accepts. */
function find (web: SyntheticWeb, kind: ExpectedUrl['kind'], pick: (e: ExpectedUrl) => boolean = () => true): ExpectedUrl {
  const e = web.truth().urls.find(u => u.kind === kind && pick(u))
  assert.ok(e !== undefined, `no expected URL of kind ${kind} matches`)
  return e
}

/** A small realistic web: every feature, few pages, nothing slow unless asked. */
const SMALL: SyntheticWebInit = { seed: 6, hosts: 2, pages: 120, realistic: true, features: { slow: 0, timeouts: 0.02, stallMs: 300 } }

describe('sim/web: the synthetic web', function () {
  let web: SyntheticWeb | undefined
  let other: SyntheticWeb | undefined

  afterEach(async function () {
    await web?.close()
    await other?.close()
    web = other = undefined
  })

  describe('determinism', function () {
    it('serves the same bytes for the same seed, on any ports', async function () {
      const init = { seed: 42, hosts: 2, pages: 60, imagesPerPage: 2 }
      web = await startSyntheticWeb(init)
      other = await startSyntheticWeb(init)
      assert.notDeepEqual(web.origins, other.origins)
      const a = web.expectedUrls()
      const b = other.expectedUrls()
      assert.deepEqual(a.map(u => portless(u, web!)), b.map(u => portless(u, other!)))
      for (let i = 0; i < a.length; i++) {
        const [x, y] = await Promise.all([get(a[i]), get(b[i])])
        assert.equal(x.status, 200)
        assert.equal(portless(x.body, web), portless(y.body, other), `page ${a[i]}`)
        assert.equal(x.body, web.body(a[i])?.toString('utf8'))
      }
    })

    it('renders different sites for different seeds', function () {
      const origins = ['http://127.0.0.1:1']
      const s1 = new SiteModel({ seed: 1, pages: 200, profile: 'large' })
      const s1again = new SiteModel({ seed: 1, pages: 200, profile: 'large' })
      const s2 = new SiteModel({ seed: 2, pages: 200, profile: 'large' })
      let differ = 0
      for (let p = 0; p < 200; p++) {
        assert.ok(s1.body(0, p, origins).equals(s1again.body(0, p, origins)), `page ${p}`)
        if (!s1.body(0, p, origins).equals(s2.body(0, p, origins))) differ++
      }
      assert.equal(differ, 200)
    })

    it('accepts a string seed', function () {
      const a = new SiteModel({ seed: 'hello', pages: 10 }).html(0, 3, ['http://x'])
      const b = new SiteModel({ seed: 'hello', pages: 10 }).html(0, 3, ['http://x'])
      assert.equal(a, b)
    })
  })

  describe('ground truth', function () {
    it('every expected URL is reachable from the roots through the links of served pages, and nothing else', async function () {
      web = await startSyntheticWeb({ seed: 3, hosts: 3, pages: 300, privateLinksPerPage: 1 })
      const origins = new Set(web.origins)
      const seen = new Set<string>(web.rootUrls)
      const queue = [...web.rootUrls]
      const fetched = new Set<string>()
      while (queue.length > 0) {
        const batch = queue.splice(0, 32)
        await Promise.all(batch.map(async url => {
          const { status, body } = await get(url)
          assert.equal(status, 200, url)
          fetched.add(url)
          for (const link of hrefs(body, url)) {
            const u = new URL(link)
            // The default robots.txt disallows /private/: a polite crawler goes no further.
            if (!origins.has(u.origin) || u.pathname.startsWith('/private/') || seen.has(link)) continue
            seen.add(link)
            queue.push(link)
          }
        }))
      }
      assert.deepEqual([...fetched].sort(), web.expectedUrls().sort())
      assert.equal(fetched.size, 300)
    })

    it('every page is reachable from its own host root through same-host links alone', function () {
      const site = new SiteModel({ seed: 9, hosts: 4, pages: 400 })
      assert.equal(site.reachable(site.roots(), true).length, 400)
    })

    it('the link model agrees with the links in the served HTML', async function () {
      const w = web = await startSyntheticWeb({ seed: 5, hosts: 2, pages: 100, profile: 'large' })
      for (const page of [0, 1, 17, 49]) {
        const url = w.url(1, page)
        const { body } = await get(url)
        const expected = w.site.links(1, page).map(r => w.url(r.host, r.page))
        assert.deepEqual(hrefs(body, url), expected)
      }
    })

    it('sizes and link counts follow the profile', function () {
      const origins = ['http://127.0.0.1:65535']
      for (const [profile, bytes, links] of [['small', 5 * 1024, 20], ['large', 30 * 1024, 150]] as const) {
        const site = new SiteModel({ seed: 11, pages: 500, profile })
        let b = 0
        let l = 0
        for (let p = 0; p < 500; p++) {
          b += site.body(0, p, origins).length
          l += site.links(0, p).length
        }
        assert.ok(Math.abs(b / 500 - bytes) < bytes * 0.1, `${profile}: mean size ${b / 500}`)
        assert.ok(Math.abs(l / 500 - links) < links * 0.1, `${profile}: mean links ${l / 500}`)
      }
    })

    it('links favour a few popular pages', function () {
      const site = new SiteModel({ seed: 13, pages: 2000 })
      const inDegree = new Array<number>(2000).fill(0)
      for (let p = 0; p < 2000; p++) for (const r of site.links(0, p)) inDegree[r.page]++
      inDegree[0] = 0 // every page links home
      const sorted = [...inDegree].sort((x, y) => y - x)
      const top = sorted.slice(0, 20).reduce((s, x) => s + x, 0)
      const median = sorted[1000]
      assert.ok(top / 20 > 5 * median, `top-20 mean ${top / 20}, median ${median}`)
    })

    it('lists the images of expected pages', async function () {
      web = await startSyntheticWeb({ seed: 1, pages: 20, imagesPerPage: 3 })
      const images = web.expectedImageUrls()
      assert.ok(images.length > 0)
      const res = await fetch(images[0])
      assert.equal(res.headers.get('content-type'), 'image/png')
      const png = Buffer.from(await res.arrayBuffer())
      assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
    })
  })

  describe('HTTP', function () {
    it('serves robots.txt, 404 for unknown URLs and 304 for a matching If-None-Match', async function () {
      web = await startSyntheticWeb({ pages: 10 })
      const robots = await get(web.origins[0] + '/robots.txt')
      assert.equal(robots.status, 200)
      assert.equal(robots.body, 'User-agent: *\nDisallow: /private/\n')
      assert.equal((await get(web.origins[0] + '/page/10.html')).status, 404)
      assert.equal((await get(web.origins[0] + '/page/1.html?x=1')).status, 404)
      assert.equal((await get(web.origins[0] + '/page/01.html')).status, 404)
      const page = await get(web.url(0, 1))
      const etag = page.headers.get('etag')
      assert.ok(etag !== null)
      assert.equal((await get(web.url(0, 1), { 'if-none-match': etag })).status, 304)
    })

    it('robots.txt can be replaced or removed per host', async function () {
      web = await startSyntheticWeb({ hosts: 2, pages: 4, robots: h => h === 0 ? 'User-agent: *\nDisallow: /\n' : false })
      assert.equal((await get(web.origins[0] + '/robots.txt')).body, 'User-agent: *\nDisallow: /\n')
      assert.equal((await get(web.origins[1] + '/robots.txt')).status, 404)
    })

    it('close() stops every host, keep-alive connections included', async function () {
      web = await startSyntheticWeb({ hosts: 2, pages: 4 })
      await get(web.rootUrls[0])
      await get(web.rootUrls[1])
      const roots = web.rootUrls
      await web.close()
      web = undefined
      for (const r of roots) await assert.rejects(fetch(r))
    })

    it('rejects options it cannot honour, naming them', async function () {
      await assert.rejects(startSyntheticWeb({ hosts: 3, pages: 2 }), (err: Error) => err.name === 'ConfigError' && /pages/.test(err.message))
      await assert.rejects(startSyntheticWeb({ pages: 0 }), (err: Error) => err.name === 'ConfigError' && /pages/.test(err.message))
      await assert.rejects(startSyntheticWeb({ crossHostLinkRatio: 2 }), (err: Error) => err.name === 'ConfigError' && /crossHostLinkRatio/.test(err.message))
    })

    it('a body cache serves the same bytes', async function () {
      web = await startSyntheticWeb({ seed: 8, pages: 30, cacheBytes: 20 * 1024 })
      web.warm()
      for (const u of web.expectedUrls()) assert.equal((await get(u)).body, web.body(u)?.toString('utf8'))
    })
  })

  describe('counters', function () {
    it('count requests per URL, per User-Agent and per status, with arrival times', async function () {
      web = await startSyntheticWeb({ pages: 10, log: true })
      const before = Date.now()
      await get(web.url(0, 0), { 'user-agent': 'a' })
      await get(web.url(0, 0), { 'user-agent': 'a' })
      await get(web.url(0, 1), { 'user-agent': 'b' })
      await get(web.origins[0] + '/robots.txt', { 'user-agent': 'b' })
      await get(web.origins[0] + '/private/1.html', { 'user-agent': 'b' })
      await get(web.origins[0] + '/nope', { 'user-agent': 'b' })
      const after = Date.now()

      const stats = web.stats()
      assert.equal(stats.requests, 6)
      const root = stats.urls[0].get('/')
      assert.ok(root !== undefined)
      assert.equal(root.count, 2)
      assert.ok(before <= root.firstAt && root.firstAt <= root.lastAt && root.lastAt <= after)
      assert.equal(stats.urls[0].get('/page/1.html')?.count, 1)
      assert.deepEqual(Object.fromEntries(stats.byUserAgent), { a: 2, b: 4 })
      assert.deepEqual(Object.fromEntries(stats.byStatus), { 200: 5, 404: 1 })
      assert.equal(stats.log?.length, 6)
      assert.deepEqual(stats.log?.map(e => e.target), ['/', '/', '/page/1.html', '/robots.txt', '/private/1.html', '/nope'])
      assert.equal(stats.timeline.reduce((s, x) => s + x, 0), 6)

      const s = web.summary()
      assert.equal(s.pagesExpected, 10)
      assert.equal(s.pagesFetched, 2)
      assert.equal(s.coverage, 0.2)
      assert.equal(s.pageRequests, 3)
      assert.equal(s.duplicateFetches, 1)
      assert.equal(s.robotsRequests, 1)
      assert.equal(s.disallowedRequests, 1)
      assert.equal(s.notFound, 1)
      assert.deepEqual(s.byUserAgent, { a: 2, b: 4 })
      assert.ok(s.bytes > 0)

      web.reset()
      assert.equal(web.stats().requests, 0)
      assert.equal(web.summary().pagesFetched, 0)
    })
  })

  describe('features: opt-in, and a realistic preset', function () {
    it('with no feature asked for, pages are byte for byte those of before features existed', function () {
      const h = createHash('sha256')
      for (const init of [{ seed: 1, pages: 40 }, { seed: 7, hosts: 3, pages: 60, profile: 'large' as const, imagesPerPage: 2, privateLinksPerPage: 1 }]) {
        const site = new SiteModel(init)
        assert.equal(site.options.features.any, false)
        const origins = Array.from({ length: site.options.hosts }, (_, i) => `http://host${i}`)
        for (let host = 0; host < site.options.hosts; host++) {
          for (let p = 0; p < site.hostPages(host); p++) { h.update(site.body(host, p, origins)); h.update(site.etag(host, p)) }
          assert.equal(site.robotsTxt(host), 'User-agent: *\nDisallow: /private/\n')
        }
      }
      // Digest of the bodies the site served before features were added (sim/web/site.ts of then).
      assert.equal(h.digest('hex'), 'd09e678594863900a290288093d8f8e64a639c7be1fb479ca250350f71b514fe')
    })

    it('ground truth without features: the pages reachable by links, breadth-first, images apart', function () {
      const site = new SiteModel({ seed: 3, hosts: 3, pages: 300, imagesPerPage: 1, privateLinksPerPage: 1 })
      const origins = ['http://a:1', 'http://b:2', 'http://c:3']
      const truth = groundTruth(site, origins)
      const pages = truth.urls.filter(u => u.kind !== 'image')
      assert.deepEqual(pages.map(u => [u.host, u.target]), site.reachable().map(r => [r.host, r.page === 0 ? '/' : `/page/${r.page}.html`]))
      assert.ok(pages.every(u => u.kind === 'page' && u.requests === 1 && u.ok))
      const images = new Set(site.reachable().flatMap(r => site.images(r.host, r.page).map(i => `${r.host}/img/${i}.png`)))
      assert.deepEqual(new Set(truth.urls.filter(u => u.kind === 'image').map(u => `${u.host}${u.target}`)), images)
    })

    it('realistic: true turns every feature on; features and imagesPerPage override it one by one', function () {
      const site = new SiteModel({ realistic: true, features: { redirects: 0, traps: false }, pages: 10 })
      const f = site.options.features
      assert.equal(f.any, true)
      assert.equal(f.redirects, 0)
      assert.equal(f.traps, false)
      assert.equal(f.transient, REALISTIC.transient)
      assert.deepEqual(f.pageBytesRange, REALISTIC.pageBytesRange)
      assert.equal(site.options.imagesPerPage, 1)
      assert.equal(new SiteModel({ realistic: true, imagesPerPage: 0, pages: 10 }).options.imagesPerPage, 0)
      assert.equal(new SiteModel({ features: { traps: true }, pages: 10 }).options.features.redirects, 0)
    })

    it('realistic pages: 5–100 KiB, 10–300 links, a power law of in-degree', function () {
      const site = new SiteModel({ seed: 4, pages: 600, realistic: true })
      const origins = ['http://127.0.0.1:65535']
      const sizes: number[] = []
      const links: number[] = []
      const inDegree = new Array<number>(600).fill(0)
      for (let p = 0; p < 600; p++) {
        sizes.push(site.body(0, p, origins).length)
        const l = site.links(0, p)
        links.push(l.length)
        for (const r of l) if (r.page !== 0) inDegree[r.page]++
      }
      assert.ok(Math.min(...sizes) >= 5 * 1024 * 0.95 && Math.max(...sizes) <= 100 * 1024 * 1.2, `sizes ${Math.min(...sizes)}–${Math.max(...sizes)}`)
      assert.ok(sizes.filter(b => b > 50 * 1024).length > 60, 'large pages are common')
      assert.ok(Math.min(...links) >= 10 && Math.max(...links) <= 300, `links ${Math.min(...links)}–${Math.max(...links)}`)
      const sorted = inDegree.sort((x, y) => y - x)
      assert.ok(sorted.slice(0, 20).reduce((s, x) => s + x, 0) / 20 > 3 * sorted[300] && sorted[0] > 10 * sorted[300], `in-degrees ${sorted.slice(0, 5)}…, median ${sorted[300]}`)
    })

    it('encodes windows-1252 and Shift_JIS as their tables say, and decodes them back', function () {
      assert.deepEqual([...encode('€uro café', 'windows-1252')], [0x80, 0x75, 0x72, 0x6f, 0x20, 0x63, 0x61, 0x66, 0xe9])
      assert.deepEqual([...encode('日本', 'shift_jis')], [0x93, 0xfa, 0x96, 0x7b])
      assert.deepEqual([...encode('ﾊ', 'shift_jis')], [0xca])
      for (const text of ['Déjà vu: 5 € – “très bon”.', '‘quoted’ Œuvre ‰ ™']) assert.equal(decode(encode(text, 'windows-1252'), 'windows-1252'), text)
      assert.equal(decode(encode('今日は東京で桜を見ました。ﾊﾝｶｸ', 'shift_jis'), 'shift_jis'), '今日は東京で桜を見ました。ﾊﾝｶｸ')
      assert.throws(() => encode('日本', 'windows-1252'), /windows-1252 cannot encode/)
    })

    it('rejects feature and policy options it cannot honour, naming them', function () {
      const bad = (init: SyntheticWebInit, name: RegExp): void => {
        assert.throws(() => new SiteModel(init), (err: Error) => err.name === 'ConfigError' && name.test(err.message))
      }
      bad({ features: { redirects: 1.5 } }, /features\.redirects/)
      bad({ features: { linksRange: [50, 10] } }, /features\.linksRange/)
      bad({ features: { slowMs: -1 } }, /features\.slowMs/)
      bad({ features: { crawlDelay: -2 } }, /features\.crawlDelay/)
      bad({ policy: { maxDepth: 1.5 } }, /policy\.maxDepth/)
    })
  })

  describe('realistic web: HTTP', function () {
    it('serves the same bytes for the same seed, features and all', async function () {
      web = await startSyntheticWeb(SMALL)
      other = await startSyntheticWeb(SMALL)
      const a = web.truth().urls.filter(u => u.kind !== 'timeout' && u.kind !== 'oversize')
      const b = other.truth().urls.filter(u => u.kind !== 'timeout' && u.kind !== 'oversize')
      assert.deepEqual(a.map(u => [u.host, u.target, u.kind, u.requests]), b.map(u => [u.host, u.target, u.kind, u.requests]))
      const accept = { 'accept-encoding': 'gzip, br' }
      for (let i = 0; i < a.length; i++) {
        const [x, y]: Raw[] = await Promise.all([raw(web.absolute(a[i].host, a[i].target), accept), raw(other.absolute(b[i].host, b[i].target), accept)])
        assert.equal(x.status, y.status, a[i].target)
        for (const h of ['content-type', 'content-encoding', 'retry-after']) {
          if (h === 'retry-after' && x.status === 503) continue // an HTTP-date: the time of the answer
          assert.equal(x.headers[h], y.headers[h], `${a[i].target}: ${h}`)
        }
        assert.equal(portless(x.headers.location ?? '', web), portless(y.headers.location ?? '', other), a[i].target)
        assert.equal(portless(decoded(x).toString('latin1'), web), portless(decoded(y).toString('latin1'), other), a[i].target)
      }
    })

    it('every served page links what the model says, as shoal\'s decoder and parser read it (broken markup, charsets, compression)', async function () {
      this.timeout(20000)
      web = await startSyntheticWeb({ ...SMALL, features: { ...SMALL.features, transient: 0 } })
      const w = web
      const site = w.site
      const urlOf = (host: number, target: string): string => host < 0 ? w.offsiteOrigins[-1 - host] + target : w.absolute(host, target)
      let checked = 0
      let broken = 0
      for (const e of w.truth().urls) {
        if (!['page', 'alias', 'trap'].includes(e.kind)) continue
        const url = w.absolute(e.host, e.target)
        const r = await raw(url, { 'accept-encoding': 'gzip, br' })
        assert.equal(r.status, 200, url)
        const body = decoded(r)
        assert.deepEqual(body, w.body(url), url)
        const type = r.headers['content-type']
        assert.ok(isHtml(type, body), `${url} is HTML`)
        const parsed = parsePage(decodeBody(type, body), url, { stripParams: DEFAULT_TRACKING_PARAMS })
        const expected = new Set<string>()
        site.outlinks(e.host, site.resolveTarget(e.host, e.target), (l) => { expected.add(urlOf(l.host, normalizeTarget(l.target, DEFAULT_TRACKING_PARAMS))) })
        assert.deepEqual(new Set(parsed.links), expected, url)
        assert.ok(!parsed.links.some(l => l.includes('/commented/')), url)
        checked++
        const page = site.resolveTarget(e.host, e.target)
        if (page.kind === 'page' && site.pageStyle(e.host, page.page).malformed) broken++
      }
      assert.ok(checked > 100 && broken > 5, `${checked} pages checked, ${broken} with broken markup`)
    })

    it('redirect chains: 1–3 hops of 301/302/307/308, same- and cross-host, with path, absolute and network-path Locations', async function () {
      web = await startSyntheticWeb({ ...SMALL, features: { ...SMALL.features, transient: 0 } })
      const w = web
      const codes = new Set<number>()
      const forms = new Set<string>()
      const lengths = new Set<number>()
      let crossHost = 0
      const starts = w.truth().urls.filter(u => u.kind === 'redirect' && u.target.endsWith('/0'))
      assert.ok(starts.length > 5)
      for (const start of starts) {
        let url = w.absolute(start.host, start.target)
        let hops = 0
        for (;;) {
          const r = await raw(url)
          if (r.status < 300 || r.status >= 400) break
          codes.add(r.status)
          const location = String(r.headers.location)
          forms.add(location.startsWith('//') ? 'network' : location.startsWith('/') ? 'path' : 'absolute')
          const next = new URL(location, url)
          if (next.origin !== new URL(url).origin) crossHost++
          url = next.href
          hops++
        }
        lengths.add(hops)
      }
      assert.deepEqual([...codes].sort(), [301, 302, 307, 308])
      assert.deepEqual([...forms].sort(), ['absolute', 'network', 'path'])
      assert.ok([1, 2, 3].every(n => lengths.has(n)) && Math.max(...lengths) === 3, `chain lengths ${[...lengths]}`)
      assert.ok(crossHost > 0)
      // A hop asked of the wrong host does not exist.
      const hop = find(w, 'redirect')
      assert.equal((await raw(w.absolute(1 - hop.host, hop.target))).status, 404)
    })

    it('broken links answer 404 and 410, once expected each', async function () {
      web = await startSyntheticWeb(SMALL)
      const errors = web.truth().urls.filter(u => u.kind === 'error')
      const statuses = new Set<number>()
      for (const e of errors) {
        assert.equal(e.requests, 1)
        statuses.add((await raw(web.absolute(e.host, e.target))).status)
      }
      assert.deepEqual([...statuses].sort(), [404, 410])
    })

    it('a flaky URL fails its first k requests (500; 503 with an HTTP-date; 429 with seconds), then succeeds: retries, not duplicates', async function () {
      web = await startSyntheticWeb({ ...SMALL, features: { ...SMALL.features, transient: 0.3, retryAfter: 2 } })
      const w = web
      const seen = new Set<number>()
      for (const status of [500, 503, 429]) {
        const e = find(w, 'page', u => w.site.wire(u.host, u.target).failStatus === status && u.requests === 3)
        const url = w.absolute(e.host, e.target)
        for (let i = 0; i < 2; i++) {
          const r = await raw(url)
          assert.equal(r.status, status)
          const after = r.headers['retry-after']
          if (status === 500) assert.equal(after, undefined)
          if (status === 429) assert.equal(after, '2')
          if (status === 503) {
            const wait = Date.parse(String(after)) - Date.now()
            assert.ok(wait > 900 && wait <= 3000, `503 Retry-After ${after}: ${wait} ms`)
          }
        }
        assert.equal((await raw(url)).status, 200)
        assert.equal((await raw(url)).status, 200) // a re-fetch of a served page: a duplicate
        seen.add(status)
      }
      const s = w.summary()
      assert.equal(s.transientErrors, 6)
      assert.equal(s.retries, 6)
      assert.equal(s.duplicateFetches, 3)
      assert.equal(s.extraRequests, 3)
      // A new crawl of the same site: the flaky URLs fail again.
      w.reset()
      const e = find(w, 'page', u => u.requests > 1)
      assert.notEqual((await raw(w.absolute(e.host, e.target))).status, 200)
    })

    it('slow answers come late, or in two parts', async function () {
      web = await startSyntheticWeb({ ...SMALL, features: { ...SMALL.features, slow: 0.5, slowMs: 120, transient: 0 } })
      const w = web
      for (const mode of ['headers', 'drip'] as const) {
        const e = find(w, 'page', u => w.site.wire(u.host, u.target).slow === mode)
        const started = Date.now()
        const chunks: number[] = []
        await new Promise<void>((resolve, reject) => {
          request(w.absolute(e.host, e.target), (res) => {
            chunks.push(Date.now() - started)
            res.on('data', () => { chunks.push(Date.now() - started) })
            res.on('end', resolve)
          }).on('error', reject).end()
        })
        if (mode === 'headers') assert.ok(chunks[0] >= 110, `headers after ${chunks[0]} ms`)
        else assert.ok(chunks[0] < 110 && chunks[chunks.length - 1] >= 110, `drip: ${chunks.join(', ')} ms`)
      }
    })

    it('stalled URLs never answer in time; the server drops them after stallMs, and counts them as transient', async function () {
      web = await startSyntheticWeb(SMALL)
      const stalls = web.truth().urls.filter(u => u.kind === 'timeout')
      assert.ok(stalls.length >= 2)
      for (const e of stalls) assert.equal(e.requests, 1 + web.options.policy.maxRetries)
      const headerless = stalls.find(e => Number(/\d+/.exec(e.target)?.[0]) % 2 === 0)
      const halfBody = stalls.find(e => Number(/\d+/.exec(e.target)?.[0]) % 2 === 1)
      assert.ok(headerless !== undefined && halfBody !== undefined)
      // No answer at all: a client with a timeout gives up; one without sees the connection dropped.
      await assert.rejects(raw(web.absolute(headerless.host, headerless.target), {}, 100), (err: Error) => err.name === 'AbortError' || err.name === 'TimeoutError')
      await assert.rejects(raw(web.absolute(headerless.host, headerless.target)), /socket hang up|ECONNRESET/)
      // Headers and half a body, then nothing.
      await assert.rejects(raw(web.absolute(halfBody.host, halfBody.target)), /aborted|ECONNRESET/)
      const c = web.stats().urls[headerless.host].get(headerless.target)
      assert.deepEqual([c?.count, c?.transient, c?.status], [2, 2, 0])
      assert.equal(web.summary().duplicateFetches, 0)
    })

    it('bodies over the caps: Content-Length over maxBodySize, a chunked body past it, gzip that inflates past maxDecompressedSize', async function () {
      const policy = { maxBodySize: 100 * 1024, maxDecompressedSize: 300 * 1024 }
      web = await startSyntheticWeb({ ...SMALL, seed: 8, policy })
      const w = web
      const huge = w.truth().urls.filter(u => u.target.startsWith('/huge/'))
      const declared = huge.find(e => Number(/\d+/.exec(e.target)?.[0]) % 2 === 0)
      const chunked = huge.find(e => Number(/\d+/.exec(e.target)?.[0]) % 2 === 1)
      assert.ok(declared !== undefined && chunked !== undefined, 'both kinds of huge body')
      let r = await raw(w.absolute(declared.host, declared.target))
      assert.equal(r.headers['content-length'], String(policy.maxBodySize + 1))
      assert.equal(r.body.length, policy.maxBodySize + 1)
      r = await raw(w.absolute(chunked.host, chunked.target))
      assert.equal(r.headers['transfer-encoding'], 'chunked')
      assert.ok(r.body.length > policy.maxBodySize)
      const bomb = find(w, 'oversize', u => u.target.startsWith('/bomb/'))
      r = await raw(w.absolute(bomb.host, bomb.target))
      assert.equal(r.headers['content-encoding'], 'gzip')
      assert.ok(r.body.length < 20 * 1024, `${r.body.length} bytes on the wire`)
      assert.throws(() => gunzipSync(r.body, { maxOutputLength: policy.maxDecompressedSize }), /ERR_BUFFER_TOO_LARGE|Cannot create a Buffer larger/)
      assert.ok(gunzipSync(r.body).length > policy.maxDecompressedSize)
      for (const e of [declared, chunked, bomb]) assert.equal(e.requests, 1)
    })

    it('gzip and br when the request accepts them, identity otherwise', async function () {
      web = await startSyntheticWeb({ ...SMALL, features: { ...SMALL.features, transient: 0 } })
      const w = web
      for (const encoding of ['gzip', 'br'] as const) {
        const e = find(w, 'page', u => w.site.wire(u.host, u.target).encoding === encoding)
        const url = w.absolute(e.host, e.target)
        const r = await raw(url, { 'accept-encoding': 'gzip, deflate, br' })
        assert.equal(r.headers['content-encoding'], encoding)
        assert.equal(r.headers.vary, 'Accept-Encoding')
        assert.ok(r.body.length < decoded(r).length)
        assert.deepEqual(decoded(r), w.body(url))
        const plain = await raw(url, { 'accept-encoding': encoding === 'gzip' ? 'br, identity' : 'gzip;q=0.5, br;q=0' })
        assert.equal(plain.headers['content-encoding'], undefined)
        assert.deepEqual(plain.body, w.body(url))
      }
    })

    it('windows-1252 and Shift_JIS pages, declared by header or meta, link raw non-ASCII words that resolve once decoded right', async function () {
      web = await startSyntheticWeb({ ...SMALL, features: { ...SMALL.features, charsets: 0.6, transient: 0 } })
      const w = web
      const seen = new Set<string>()
      for (const e of w.truth().urls) {
        const r = w.site.resolveTarget(e.host, e.target)
        if (r.kind !== 'page') continue
        const style = w.site.pageStyle(e.host, r.page)
        if (style.word === undefined) continue
        const res = await raw(w.absolute(e.host, e.target))
        const declared = `${style.charset} by ${style.meta === '' ? 'header' : 'meta'}`
        if (style.meta === '' || style.charset === 'utf-8') assert.equal(res.headers['content-type'], style.contentType)
        else assert.ok(res.body.subarray(0, 1024).toString('latin1').includes(style.meta), declared)
        const text = decode(res.body, style.charset)
        const link = /<p class="i18n">[^<]*<a href="([^"]+)">([^<]+)<\/a>/.exec(text)
        assert.ok(link !== null, declared)
        const target = new URL(link[1], 'http://x').pathname
        // Written raw, or escaped with lower-case hex: either way the URL a parser makes of it is the word's.
        assert.equal(normalizePercent(target), '/w/' + encodeURIComponent(link[2]))
        if (target !== normalizePercent(target)) seen.add('lower-case escapes')
        assert.equal((await raw(w.absolute(e.host, target))).status, 200, `${declared}: ${target}`)
        assert.ok(w.truth().byHost[e.host].has(normalizePercent(target)))
        if (style.charset !== 'utf-8') assert.ok(res.body.some(b => b >= 0x80), declared)
        seen.add(declared)
      }
      for (const want of ['lower-case escapes', 'windows-1252 by header', 'windows-1252 by meta', 'shift_jis by header', 'shift_jis by meta', 'utf-8 by meta']) assert.ok(seen.has(want), `${want}: ${[...seen]}`)
    })

    it('aliases: ?ref=, /index.html, ?utm_ and %-escaped spellings serve the same body; a crawler fetches only the first two', async function () {
      web = await startSyntheticWeb({ ...SMALL, features: { ...SMALL.features, aliases: 0.5, transient: 0 } })
      const w = web
      const truth = w.truth()
      const kinds = new Set<string>()
      for (let host = 0; host < w.options.hosts; host++) {
        for (let page = 0; page < w.site.hostPages(host); page++) {
          for (const l of (() => { const out: string[] = []; w.site.outlinks(host, { kind: 'page', page }, x => { out.push(x.target) }, true); return out })()) {
            const r = w.site.resolveTarget(host, l)
            if (r.kind !== 'alias' && !(l.includes('%3') && r.kind === 'page')) continue
            const kind = r.kind === 'alias' ? r.via : 'escaped'
            if (kinds.has(kind)) continue
            kinds.add(kind)
            const page0 = r.kind === 'alias' || r.kind === 'page' ? r.page : -1
            const body = decoded(await settled(w.absolute(host, l)))
            const canonical = decoded(await settled(w.url(host, page0)))
            if (page0 !== 0) assert.deepEqual(body, canonical, l)
            const expected = truth.byHost[host].has(l)
            assert.equal(expected, kind === 'index' || kind === 'ref', `${l} expected: ${expected}`)
          }
        }
      }
      assert.deepEqual([...kinds].sort(), ['escaped', 'index', 'ref', 'utm'])
    })

    it('robots.txt of the model: a group of its own for shoal on odd hosts, Allow inside a Disallow, Crawl-delay per host', async function () {
      web = await startSyntheticWeb({ ...SMALL, hosts: 3, features: { ...SMALL.features, crawlDelay: h => h === 2 ? 0.25 : undefined } })
      const [r0, r1, r2] = await Promise.all(web.origins.map(async o => (await raw(o + '/robots.txt')).body.toString()))
      assert.match(r0, /^User-agent: \*\nDisallow: \/private\/\nAllow: \/private\/open\/\nDisallow: \/search\n$/m)
      assert.match(r1, /User-agent: shoal\n/)
      assert.match(r1, /User-agent: \*\nDisallow: \/\n$/)
      assert.match(r2, /Crawl-delay: 0.25\n/)
      assert.doesNotMatch(r0 + r1, /Crawl-delay/)
      assert.deepEqual(['/private/3.html', '/private/open/3.html', '/search?q=news', '/page/3.html'].map(t => web!.site.allowed(t)), [false, true, false, true])
      const truth = web.truth().urls
      assert.ok(truth.some(u => u.target.startsWith('/private/open/')))
      assert.ok(!truth.some(u => u.target.startsWith('/search') || /^\/private\/\d/.test(u.target)))
    })

    it('traps: a calendar, session ids, /files/files/… — bounded by the policy, exactly', function () {
      const count = (init: SyntheticWebInit): Record<string, number> => {
        const site = new SiteModel({ seed: 2, hosts: 2, pages: 60, features: { traps: true }, ...init })
        const out: Record<string, number> = {}
        for (const u of groundTruth(site, ['http://127.0.0.1:1', 'http://127.0.0.1:2']).urls) {
          if (u.kind !== 'trap') continue
          const name = u.target.split(/[/?]/)[1]
          out[name] = (out[name] ?? 0) + 1
        }
        return out
      }
      // Each trap is entered at depth 1 from its host's root; maxDepth 20 leaves 19 more hops.
      assert.deepEqual(count({}), { calendar: 2 * 39, cart: 2 * 20, files: 2 * 3 })
      assert.deepEqual(count({ policy: { maxDepth: 5 } }), { calendar: 2 * 9, cart: 2 * 5, files: 2 * 3 })
      assert.deepEqual(count({ policy: { maxPathRepeats: 5 } }), { calendar: 2 * 39, cart: 2 * 20, files: 2 * 5 })
      assert.deepEqual(count({ policy: { stripParams: ['sid'] } }), { calendar: 2 * 39, cart: 2 * 1, files: 2 * 3 })
      const site = new SiteModel({ pages: 10, features: { traps: true } })
      const html = site.smallHtml(0, { kind: 'calendar', month: 2024 * 12 })
      assert.match(html, /href="\/calendar\/2023\/12\/" rel="prev"/)
      assert.match(html, /href="\/calendar\/2024\/02\/" rel="next"/)
    })

    it('ground truth follows the policy: maxDepth, maxRedirects, maxRetries', function () {
      const origins = ['http://127.0.0.1:1', 'http://127.0.0.1:2']
      const truth = (policy: SyntheticWebInit['policy']): ExpectedUrl[] =>
        groundTruth(new SiteModel({ seed: 5, hosts: 2, pages: 200, realistic: true, features: { transient: 0.2 }, policy }), origins).urls
      const all = truth({})
      assert.ok(all.some(u => u.depth > 2))
      const shallow = truth({ maxDepth: 1 })
      assert.ok(shallow.every(u => u.depth <= 1) && shallow.some(u => u.depth === 1))
      // The URL after hop n of a chain is followed only if n ≤ maxRedirects.
      assert.ok(all.some(u => u.target.endsWith('/2') && u.kind === 'redirect'))
      const short = truth({ maxRedirects: 1 })
      assert.ok(short.some(u => u.target.endsWith('/1') && u.kind === 'redirect') && !short.some(u => u.target.endsWith('/2') && u.kind === 'redirect'))
      // A URL that fails more often than maxRetries allows: 1 + maxRetries requests, and its links are not followed.
      const twice = all.filter(u => u.requests === 3 && u.kind !== 'timeout')
      assert.ok(twice.length > 0 && twice.every(u => u.ok))
      const strict = truth({ maxRetries: 1 })
      const failed = strict.filter(u => !u.ok && u.kind !== 'error' && u.kind !== 'oversize')
      assert.ok(failed.length > 0 && failed.every(u => u.requests === 2))
      assert.ok(strict.filter(u => u.kind === 'timeout').every(u => u.requests === 2))
    })

    it('trap pages are served, and link on forever', async function () {
      web = await startSyntheticWeb({ seed: 2, pages: 10, features: { traps: true } })
      let url = web.origins[0] + '/files/'
      for (let i = 0; i < 6; i++) {
        const r = await raw(url)
        assert.equal(r.status, 200, url)
        url = new URL(/href="(files\/)"/.exec(r.body.toString())?.[1] ?? '', url).href
      }
      assert.equal(new URL(url).pathname, '/files/' + 'files/'.repeat(6))
      const cart = find(web, 'trap', u => u.target.startsWith('/cart'))
      const r = await raw(web.absolute(cart.host, cart.target))
      const next = /href="(\/cart\?sid=[0-9a-f]{8})"/.exec(r.body.toString())?.[1]
      assert.ok(next !== undefined && next !== cart.target)
      assert.equal((await raw(web.absolute(cart.host, '/cart?sid=0123abcd'))).status, 200)
      assert.equal((await raw(web.origins[0] + '/calendar/0999/12/')).status, 404)
    })

    it('offsite hosts: linked from pages and redirects, never expected; each request to one is a violation', async function () {
      web = await startSyntheticWeb({ ...SMALL, features: { ...SMALL.features, offsiteLinks: 0.2 } })
      assert.equal(web.offsiteOrigins.length, 1)
      assert.ok(!web.origins.includes(web.offsiteOrigins[0]))
      const linked = web.site.body(0, 0, web.origins, web.offsiteOrigins).toString('latin1').includes(web.offsiteOrigins[0]) ||
        Array.from({ length: 60 }, (_, p) => web!.site.html(0, p, web!.origins, web!.offsiteOrigins)).some(h => h.includes(web!.offsiteOrigins[0]))
      assert.ok(linked)
      assert.ok(!web.expectedUrls().some(u => u.startsWith(web!.offsiteOrigins[0])))
      assert.equal(web.summary().offsiteRequests, 0)
      await raw(web.offsiteOrigins[0] + '/page/3.html')
      await raw(web.offsiteOrigins[0] + '/robots.txt')
      const s = web.summary()
      assert.equal(s.offsiteRequests, 2)
      assert.equal(s.requests, 0)
    })

    it('summary: disallowed, commented-out and stripped URLs are unexpected requests', async function () {
      web = await startSyntheticWeb(SMALL)
      const o = web.origins[0]
      for (const t of ['/search?q=news', '/private/2.html', '/private/open/2.html', '/commented/5.html', '/page/3.html?utm_source=a', '/robots.txt']) await raw(o + t)
      const s = web.summary()
      assert.equal(s.disallowedRequests, 2)
      assert.equal(s.unexpectedRequests, web.truth().byHost[0].has('/private/open/2.html') ? 4 : 5)
      assert.equal(s.robotsRequests, 1)
    })
  })
})

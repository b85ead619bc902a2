import assert from 'node:assert/strict'
import { SiteModel, startSyntheticWeb } from '../../sim/web.js'
import type { SyntheticWeb } from '../../sim/web.js'

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
  return web.origins.reduce((b, o, i) => b.replaceAll(o, `http://host${i}`), body)
}

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
})

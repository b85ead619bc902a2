import assert from 'node:assert/strict'
import { normalizeUrl } from '../../node/normalize.js'
import { isNormalizedAbsolute, parsePage } from '../../node/parser.js'
import { RepeatFilter } from '../../node/recent.js'
import { prng } from '../utils/random.js'

/** Random pieces biased towards what the fast paths must tell apart from their look-alikes. */
function pieces (random: () => number): { host: () => string, port: () => string, path: () => string, href: (base: string) => string } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]
  const hosts = ['a.test', 'example.com', 'a-b.c', '127.0.0.1', '10.0.0.255', '1.2.3', '01.2.3.4', '1.2.3.256', '0x7f.0.0.1', 'a.1', 'a.1a', 'A.test',
    'a.test.', 'xn--nxasmq6b.test', 'xn--a.test', 'a..b', '-a.test', 'localhost', 'a_b.test', '[::1]', 'é.test', '256.1.1.1', '1.1.1.1.1']
  const ports = ['', '', '', ':80', ':443', ':8080', ':0', ':080', ':65535', ':65536', ':', ':1234567', ':99999']
  const segs = ['a', 'b-c', 'd_e', 'f~g', 'h.html', '.', '..', '.x', 'x.', '%7e', '%7E', '%2F', 'A', '', 'x:y', 'é', 'a b', 'q?x=1', 'i@j', "k'l"]
  const path = (): string => {
    let p = ''
    const n = Math.floor(random() * 4)
    for (let i = 0; i < n; i++) p += '/' + pick(segs)
    return p
  }
  const host = (): string => pick(hosts)
  const port = (): string => pick(ports)
  const frag = (): string => random() < 0.2 ? '#' + pick(['s1', '', 'x/y']) : ''
  const href = (base: string): string => {
    switch (Math.floor(random() * 5)) {
      case 0: return pick(['http', 'https', 'HTTP', 'ftp']) + '://' + host() + port() + (random() < 0.9 ? path() || '/' : '') + frag()
      case 1: return (path() || '/') + frag()
      case 2: return path().slice(1) + frag()
      case 3: return pick(['//', '?q=1', '#f', '', ' /a', '/a ', 'a\tb', '\\a', 'mailto:x@y', 'javascript:void(0)'])
      default: return base.slice(0, Math.floor(random() * base.length)) + path()
    }
  }
  return { host, port, path, href }
}

describe('link resolution fast paths', () => {
  it('isNormalizedAbsolute says yes only to URLs the normalizer gives back unchanged', () => {
    const random = prng(7)
    const p = pieces(random)
    let yes = 0
    for (let i = 0; i < 50_000; i++) {
      const url = (random() < 0.5 ? 'http://' : 'https://') + p.host() + p.port() + (p.path() || (random() < 0.5 ? '/' : ''))
      if (!isNormalizedAbsolute(url)) continue
      yes++
      assert.equal(normalizeUrl(url), url, url)
    }
    assert.ok(yes > 1_000, `the fast path took ${yes} URLs`)
    for (const url of ['http://127.0.0.1:38771/page/1.html', 'https://example.com/', 'http://a.test/a/b-c/d_e~f.html']) assert.ok(isNormalizedAbsolute(url), url)
  })

  it('a page\'s links are what normalizeUrl makes of each href against the page, in order, once each', () => {
    const random = prng(11)
    const p = pieces(random)
    for (let page = 0; page < 3_000; page++) {
      const pageUrl = (random() < 0.5 ? 'http://' : 'https://') + p.host() + p.port() + (p.path() || '/') + (random() < 0.2 ? '?x=1' : '')
      const hrefs = Array.from({ length: 12 }, () => p.href(pageUrl))
      const html = hrefs.map(h => `<a href="${h.replace(/&/g, '&amp;').replace(/"/g, '&quot;')}">x</a>`).join('')
      // Empty and fragment-only hrefs point at the page itself and are not links.
      const linked = hrefs.filter(h => h !== '' && !h.startsWith('#'))
      let base: string
      try {
        base = new URL(pageUrl).href
      } catch {
        continue // a crawled page's URL is a valid one
      }
      const expected = [...new Set(linked.map(h => normalizeUrl(h, base)).filter((u): u is string => u !== undefined))]
      assert.deepEqual(parsePage(html, pageUrl, {}).links, expected, `${pageUrl}: ${JSON.stringify(hrefs)}`)
    }
  })

  it('with a repeat check, a page\'s links are its new ones, counted and remembered as RepeatFilter.apply does', () => {
    const random = prng(13)
    const p = pieces(random)
    const pageUrls = ['http://a.test/dir/page.html', 'https://example.com/', 'http://127.0.0.1:8080/x/y/', 'http://a.test/dir/other?q=1', 'HTTP://A.test/dir/']
    const pool = Array.from({ length: 300 }, () => p.href(pageUrls[Math.floor(random() * pageUrls.length)]))
    const recrawlAfter = 40
    // The model: every URL handed on, with when (a filter large enough never to rotate).
    const handedOn = new Map<string, number>()
    const big = new RepeatFilter(1 << 16, recrawlAfter)
    // A small filter rotates every few pages: compared with apply on the same filter size.
    const small = new RepeatFilter(64, recrawlAfter)
    const smallRef = new RepeatFilter(64, recrawlAfter)
    let repeats = 0
    for (let page = 0; page < 2_000; page++) {
      const now = page
      const pageUrl = pageUrls[page % pageUrls.length]
      const hrefs = Array.from({ length: 1 + Math.floor(random() * 20) }, () => pool[Math.floor(random() * pool.length)])
      const html = hrefs.map(h => `<a href="${h.replace(/&/g, '&amp;').replace(/"/g, '&quot;')}">x</a>`).join('')
      const all = parsePage(html, pageUrl, {}).links
      const fresh = all.filter(u => {
        const at = handedOn.get(u)
        if (at !== undefined && now - at < recrawlAfter) return false
        handedOn.set(u, now)
        return true
      })
      const got = parsePage(html, pageUrl, {}, { filter: big, now })
      const why = `page ${page}, ${pageUrl}: ${JSON.stringify(hrefs)}`
      assert.deepEqual(got.links, fresh, why)
      assert.equal(got.linkCount, all.length, why)
      assert.equal(got.repeats, all.length - fresh.length, why)
      repeats += got.repeats ?? 0
      const ref = { links: all }
      smallRef.apply(ref, now)
      // (maxLinks 32: a filter of 64 is asked during the resolution, as the default sizes are.)
      assert.deepEqual(parsePage(html, pageUrl, { maxLinks: 32 }, { filter: small, now }), { ...parsePage(html, pageUrl, {}), ...ref }, why)
    }
    assert.ok(repeats > 5_000, `${repeats} repeats`)
    // A filter smaller than twice a page's links filters the page's distinct links after resolving
    // them: asked during, a page could rotate it twice and meet a link again as new.
    const tiny = new RepeatFilter(4)
    // Each link twice, spelled two ways (the collector drops an href met again as written).
    const html = Array.from({ length: 10 }, (_, i) => `<a href="/p${i}"></a>`).join('') + Array.from({ length: 10 }, (_, i) => `<a href="http://a.test/p${i}"></a>`).join('')
    const twice = parsePage(html, 'http://a.test/', { maxLinks: 20 }, { filter: tiny, now: 0 })
    assert.deepEqual(twice.links, Array.from({ length: 10 }, (_, i) => `http://a.test/p${i}`))
    assert.equal(twice.linkCount, 10)
    // A filter of size 0 drops nothing.
    const none = parsePage('<a href="/a"></a><a href="/a"></a><a href="b"></a>', 'http://a.test/', {}, { filter: new RepeatFilter(0), now: 0 })
    assert.deepEqual(none, { links: ['http://a.test/a', 'http://a.test/b'], linkCount: 2, repeats: 0, noindex: false, nofollow: false })
  })
})

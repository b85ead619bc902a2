/**
 * Hostile and broken responses, one at a time, from a real server. In each test the bad URL is linked
 * from the home page before `/after.html`: the crawl must record what went wrong on the bad URL's
 * record and go on to fetch `/after.html`.
 */
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import { cidOf } from '../../node/blocks.js'
import { MiB } from '../../node/constants.js'
import { crawl, readStored, type CrawlOptions, type CrawlReport } from '../../node/crawl.js'
import type { UrlRecord } from '../../node/types.js'
import { anchors, bytesOf, html, routes, TestServer, type Page, type Route } from '../utils/fixture-web.js'
import { useTempDirs } from '../utils/tmp.js'

interface BadCrawl {
  server: TestServer
  report: CrawlReport
  url: (path: string) => string
  record: (path: string) => Promise<UrlRecord | undefined>
  body: (path: string) => Promise<Uint8Array | undefined>
  /** Request targets the server received, robots.txt excluded, sorted. */
  requested: () => string[]
}

const AFTER: Page = { body: html('after', 'the crawl went on') }

/**
 * Bytes of `text` in a legacy encoding: ASCII as is, other characters from `table`. Enough for the
 * few characters these tests use, without an encoder library.
 */
function legacyBytes (text: string, table: Record<string, number[]>): Uint8Array {
  const out: number[] = []
  for (const ch of text) {
    const code = ch.codePointAt(0) as number
    if (code < 0x80) out.push(code)
    else if (table[ch] !== undefined) out.push(...table[ch])
    else throw new RangeError(`no legacy bytes for ${ch}`)
  }
  return Uint8Array.from(out)
}

/** windows-1252 (WHATWG Encoding Standard index): é, ï one byte as in Latin-1; € and – in 0x80–0x9F. */
const WINDOWS_1252: Record<string, number[]> = { 'é': [0xE9], 'ï': [0xEF], '€': [0x80], '–': [0x96] }
/** Shift_JIS (JIS X 0208): 日 0x93FA, 本 0x967B, 語 0x8CEA. */
const SHIFT_JIS: Record<string, number[]> = { '日': [0x93, 0xFA], '本': [0x96, 0x7B], '語': [0x8C, 0xEA] }

describe('e2e: bad input', function () {
  const dirs = useTempDirs()
  const servers: TestServer[] = []

  afterEach(async () => {
    await Promise.all(servers.splice(0).map(async s => { await s.close() }))
  })

  /** Serve `table` plus a home page linking `bad…` then `/after.html`, and crawl it with one peer. */
  async function crawlBad (table: Record<string, Route>, bad: string[], opts: Partial<CrawlOptions> = {}): Promise<BadCrawl> {
    const server = await TestServer.start('bad', routes({
      '/robots.txt': { status: 404, type: 'text/plain', body: 'none' },
      '/': { body: html('home', anchors(...bad, '/after.html')) },
      '/after.html': AFTER,
      ...table
    }))
    servers.push(server)
    const dataDir = await dirs.make()
    const report = await crawl({
      allowPrivate: true,
      delay: 0,
      maxRetries: 0,
      retryBaseDelay: 10,
      seeds: [server.origin + '/'],
      dataDir,
      ...opts
    })
    return {
      server,
      report,
      url: path => server.origin + path,
      record: async path => (await readStored(dataDir, server.origin + path)).record,
      body: async path => (await readStored(dataDir, server.origin + path, { body: true })).body,
      requested: () => server.hits.map(h => h.path).filter(p => p !== '/robots.txt').sort()
    }
  }

  /** The crawl finished and went on past the bad URL. */
  async function assertCarriedOn (c: BadCrawl): Promise<void> {
    assert.deepEqual(c.report.invariants, { noLostUrls: true, frontierDrained: true })
    assert.equal(c.report.queued, 0)
    assert.equal(c.server.count('/after.html'), 1, '/after.html requested once')
    const after = await c.record('/after.html')
    assert.equal(after?.status, 'fetched')
    assert.equal(after?.cid, cidOf(bytesOf(AFTER)))
  }

  /** The bad URL's record says what went wrong. */
  async function assertFailed (c: BadCrawl, path: string, status: 'failed' | 'http-error', error: string): Promise<UrlRecord> {
    const record = await c.record(path)
    assert.ok(record != null, `no record for ${path}`)
    assert.equal(record.status, status, path)
    assert.ok(record.error?.includes(error), `${path}: error ${JSON.stringify(record.error)} does not say "${error}"`)
    assert.equal(record.cid, undefined, `${path}: a body was stored`)
    return record
  }

  it('malformed HTML: still parsed, its links found', async function () {
    const broken = [
      '<html><head><title>broken</title><body><div><p>unclosed <b>bold <i>italic', // no </head>, nothing closed
      '<a href=/unquoted.html>unquoted</a>',
      "<a href='/single.html'>single quotes",
      '<table><tr><td><A HREF="/upper.html">upper case</td></div></b></a>',
      '<!-- <a href="/commented.html">in a comment</a> -->',
      '<script>document.write(\'<a href="/in-script.html">\')</script>',
      '<a href="/entity.html?a=1&amp;b=2">entity</a>',
      '</p></p></span><a href="/last.html">last<div class="unterminated'
    ].join('\n')
    const leaves = ['/unquoted.html', '/single.html', '/upper.html', '/entity.html?a=1&b=2', '/last.html']
    const table: Record<string, Route> = { '/bad.html': { body: broken } }
    for (const p of leaves) table[p] = { body: html(p, 'leaf') }
    const c = await crawlBad(table, ['/bad.html'])
    await assertCarriedOn(c)
    assert.deepEqual(c.requested(), ['/', '/after.html', '/bad.html', ...leaves].sort())
    const record = await c.record('/bad.html')
    assert.equal(record?.status, 'fetched')
    assert.equal(record?.links, leaves.length)
    assert.equal(record?.error, undefined)
  })

  it('invalid and huge hrefs: skipped without a crash, the valid ones followed', async function () {
    const longButValid = '/' + 'z'.repeat(1000) + '.html'
    const bad = [
      '/' + 'x'.repeat(100 * 1024), // 100 KB
      'http://[bad',
      'http://[bad/path.html',
      'http://exa mple.com/',
      'http://:80/',
      'https://',
      'http://' + 'h'.repeat(300) + '.example/', // a DNS label over 63 characters: valid URL, out of scope
      'http://127.0.0.1:99999/', // port out of range
      longButValid,
      '/found.html'
    ]
    const c = await crawlBad({
      '/bad.html': { body: html('bad hrefs', anchors(...bad)) },
      [longButValid]: { body: html('long', 'leaf') },
      '/found.html': { body: html('found', 'leaf') }
    }, ['/bad.html'])
    await assertCarriedOn(c)
    assert.deepEqual(c.requested(), ['/', '/after.html', '/bad.html', '/found.html', longButValid].sort())
    const record = await c.record('/bad.html')
    assert.equal(record?.status, 'fetched')
    // The long path and /found.html; the 300-character host is a URL, just not in scope.
    assert.equal(record?.links, 3)
    assert.equal(c.report.outOfScope['out-of-scope'], 1)
  })

  it('a redirect loop A → B → A: each fetched once, recorded as redirects', async function () {
    const c = await crawlBad({
      '/loop-a': { status: 302, headers: { location: '/loop-b' } },
      '/loop-b': { status: 302, headers: { location: '/loop-a' } },
      '/self': { status: 301, headers: { location: '/self#again' } }
    }, ['/loop-a', '/self'])
    await assertCarriedOn(c)
    assert.deepEqual(c.requested(), ['/', '/after.html', '/loop-a', '/loop-b', '/self'])
    for (const [from, to] of [['/loop-a', '/loop-b'], ['/loop-b', '/loop-a'], ['/self', '/self']]) {
      const record = await c.record(from)
      assert.equal(record?.status, 'redirect', from)
      assert.equal(record?.httpStatus, from === '/self' ? 301 : 302, from)
      assert.equal(record?.redirectTo, c.url(to), from)
    }
  })

  it('a redirect chain longer than maxRedirects: stopped, the last hop says why', async function () {
    const c = await crawlBad({
      '/hop1': { status: 301, headers: { location: '/hop2' } },
      '/hop2': { status: 301, headers: { location: '/hop3' } },
      '/hop3': { status: 301, headers: { location: '/hop4' } },
      '/hop4': { body: html('hop 4', 'too far') }
    }, ['/hop1'], { maxRedirects: 2 })
    await assertCarriedOn(c)
    assert.deepEqual(c.requested(), ['/', '/after.html', '/hop1', '/hop2', '/hop3'])
    const record = await c.record('/hop3')
    assert.equal(record?.status, 'redirect')
    assert.equal(record?.redirectTo, c.url('/hop4'))
    assert.match(record?.error ?? '', /too many redirects/)
    assert.equal(await c.record('/hop4'), undefined)
  })

  it('a body over maxBodySize, with and without Content-Length: failed, not retried; one at the cap is fine', async function () {
    const cap = 10 * 1024
    const big = 'x'.repeat(2 * cap)
    const atCap: Page = { type: 'text/plain', body: 'y'.repeat(cap) }
    const c = await crawlBad({
      '/big-length.html': { body: big },
      '/big-chunked.html': (_req, res) => {
        // No Content-Length: the cap must hold while the body streams in.
        res.writeHead(200, { 'content-type': 'text/html' })
        for (let i = 0; i < big.length; i += 2048) res.write(big.slice(i, i + 2048))
        res.end()
      },
      '/at-cap.txt': atCap
    }, ['/big-length.html', '/big-chunked.html', '/at-cap.txt'], { maxBodySize: cap, maxRetries: 2 })
    await assertCarriedOn(c)
    assert.deepEqual(c.requested(), ['/', '/after.html', '/at-cap.txt', '/big-chunked.html', '/big-length.html'])
    await assertFailed(c, '/big-length.html', 'failed', `over the ${cap}-byte cap`)
    await assertFailed(c, '/big-chunked.html', 'failed', `over the ${cap}-byte cap`)
    const ok = await c.record('/at-cap.txt')
    assert.equal(ok?.status, 'fetched')
    assert.equal(ok?.size, cap)
  })

  it('a gzip bomb: failed at maxDecompressedSize; a sane gzip page is decoded and parsed', async function () {
    // 50 gzip members of 1 MiB of zeros each: 50 MiB once inflated (RFC 1952 §2.2 allows members
    // back to back), about 50 KB on the wire, and cheap to make.
    const bomb = Buffer.concat(Array.from({ length: 50 }, () => gzipSync(Buffer.alloc(1 * MiB))))
    assert.ok(bomb.byteLength < 100 * 1024)
    const sane = html('gzipped', anchors('/from-gz.html'))
    const c = await crawlBad({
      '/bomb.html': { headers: { 'content-encoding': 'gzip' }, body: bomb },
      '/gz.html': { headers: { 'content-encoding': 'gzip' }, body: gzipSync(sane) },
      '/from-gz.html': { body: html('from gz', 'leaf') }
    }, ['/bomb.html', '/gz.html'], { maxDecompressedSize: 1 * MiB, maxRetries: 2 })
    await assertCarriedOn(c)
    assert.deepEqual(c.requested(), ['/', '/after.html', '/bomb.html', '/from-gz.html', '/gz.html'])
    await assertFailed(c, '/bomb.html', 'failed', `decompressed body over the ${1 * MiB}-byte cap`)
    const record = await c.record('/gz.html')
    assert.equal(record?.status, 'fetched')
    assert.equal(record?.size, Buffer.byteLength(sane))
    assert.equal(Buffer.from(await c.body('/gz.html') ?? []).toString('utf8'), sane)
  })

  it('a server that never answers: failed after headersTimeout', async function () {
    const c = await crawlBad({
      '/hang.html': () => { /* never respond; the connection is closed by the client or by close() */ }
    }, ['/hang.html'], { headersTimeout: 300, maxRetries: 0 })
    await assertCarriedOn(c)
    assert.equal(c.server.count('/hang.html'), 1)
    await assertFailed(c, '/hang.html', 'failed', 'no response headers in time')
  })

  it('a server that drips bytes: failed after requestTimeout', async function () {
    const c = await crawlBad({
      '/drip.html': (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' })
        res.write('<html>')
        // Never silent long enough for bodyTimeout, never done.
        const t = setInterval(() => { res.write(' ') }, 50)
        res.once('close', () => { clearInterval(t) })
      }
    }, ['/drip.html'], { requestTimeout: 500, maxRetries: 0 })
    await assertCarriedOn(c)
    assert.equal(c.server.count('/drip.html'), 1)
    const record = await assertFailed(c, '/drip.html', 'failed', 'whole-request timeout')
    assert.equal(record.httpStatus, 200)
  })

  it('a connection reset, before and during the body: retried maxRetries times, then failed', async function () {
    const c = await crawlBad({
      '/reset.html': (req) => { req.socket.destroy() },
      '/reset-mid.html': (req, res) => {
        res.writeHead(200, { 'content-type': 'text/html', 'content-length': 1000 })
        res.write('<html><body>' + 'x'.repeat(100))
        // Let the head and the first bytes leave before the reset.
        setTimeout(() => { req.socket.destroy() }, 20)
      }
    }, ['/reset.html', '/reset-mid.html'], { maxRetries: 1 })
    await assertCarriedOn(c)
    assert.equal(c.server.count('/reset.html'), 2)
    assert.equal(c.server.count('/reset-mid.html'), 2)
    const before = await assertFailed(c, '/reset.html', 'failed', 'connection reset')
    assert.match(before.error ?? '', /after 2 attempts/)
    assert.equal(before.attempts, 2)
    const during = await assertFailed(c, '/reset-mid.html', 'failed', 'connection reset')
    assert.match(during.error ?? '', /after 2 attempts/)
  })

  it('a windows-1252 page (charset in Content-Type): links and extracted fields decoded right', async function () {
    const title = 'Café – 5 € – naïve'
    const body = legacyBytes(html(title, anchors('/café.html')), WINDOWS_1252)
    const c = await crawlBad({
      '/latin.html': { type: 'text/html; charset=windows-1252', body },
      // é is percent-encoded as UTF-8 in a URL path, whatever the page's encoding (URL Standard).
      '/caf%C3%A9.html': { body: html('café', 'leaf') }
    }, ['/latin.html'], { extract: { title: 'title' } })
    await assertCarriedOn(c)
    assert.deepEqual(c.requested(), ['/', '/after.html', '/caf%C3%A9.html', '/latin.html'])
    const record = await c.record('/latin.html')
    assert.equal(record?.status, 'fetched')
    assert.ok(Buffer.from(await c.body('/latin.html') ?? []).equals(Buffer.from(body)), 'stored bytes are the bytes sent')
    assert.deepEqual(record?.fields, { title })
  })

  it('a Shift_JIS page (charset in <meta>): links and extracted fields decoded right', async function () {
    const body = legacyBytes(html('日本語', anchors('/日本.html'), '<meta charset="Shift_JIS">'), SHIFT_JIS)
    const c = await crawlBad({
      '/sjis.html': { type: 'text/html', body },
      '/%E6%97%A5%E6%9C%AC.html': { body: html('日本', 'leaf') }
    }, ['/sjis.html'], { extract: { title: 'title' } })
    await assertCarriedOn(c)
    assert.deepEqual(c.requested(), ['/', '/%E6%97%A5%E6%9C%AC.html', '/after.html', '/sjis.html'])
    const record = await c.record('/sjis.html')
    assert.equal(record?.status, 'fetched')
    assert.deepEqual(record?.fields, { title: '日本語' })
  })

  it('an empty body (200, 0 bytes): stored as empty, nothing parsed', async function () {
    const c = await crawlBad({
      '/empty.html': { body: '' }
    }, ['/empty.html'])
    await assertCarriedOn(c)
    assert.deepEqual(c.requested(), ['/', '/after.html', '/empty.html'])
    const record = await c.record('/empty.html')
    assert.equal(record?.status, 'fetched')
    assert.equal(record?.httpStatus, 200)
    assert.equal(record?.size, 0)
    assert.equal(record?.cid, cidOf(new Uint8Array(0)))
    assert.equal(record?.links, undefined)
    assert.equal((await c.body('/empty.html'))?.byteLength, 0)
  })

  it('HTML served as image/png: stored, not parsed, its links not requested', async function () {
    const fake: Page = { type: 'image/png', body: html('not an image', anchors('/from-fake.html')) }
    const c = await crawlBad({
      '/fake.png': fake,
      '/from-fake.html': { body: html('from fake', 'leaf') }
    }, ['/fake.png'])
    await assertCarriedOn(c)
    assert.deepEqual(c.requested(), ['/', '/after.html', '/fake.png'])
    const record = await c.record('/fake.png')
    assert.equal(record?.status, 'fetched')
    assert.equal(record?.contentType, 'image/png')
    assert.equal(record?.links, undefined)
    assert.ok(Buffer.from(await c.body('/fake.png') ?? []).equals(Buffer.from(bytesOf(fake))))
  })

  it('a 404 and a 500 page: recorded as http-error with the status, their links not followed', async function () {
    const c = await crawlBad({
      '/gone.html': { status: 404, body: html('gone', anchors('/from-404.html')) },
      '/broken.html': { status: 500, body: html('broken', anchors('/from-500.html')) }
    }, ['/gone.html', '/broken.html'], { maxRetries: 1 })
    await assertCarriedOn(c)
    assert.deepEqual(c.requested(), ['/', '/after.html', '/broken.html', '/broken.html', '/gone.html'])
    const gone = await assertFailed(c, '/gone.html', 'http-error', 'HTTP 404')
    assert.equal(gone.httpStatus, 404)
    const broken = await assertFailed(c, '/broken.html', 'http-error', 'HTTP 500 (after 2 attempts)')
    assert.equal(broken.httpStatus, 500)
  })
})

import assert from 'node:assert/strict'
import { DEFAULT_MAX_ROBOTS_SIZE, KiB } from '../../node/constants.js'
import { allowAll, disallowAll, normalizePath, parseRobotsTxt } from '../../node/robots-txt.js'

const TOKEN = 'shoal'

/** Assert each path's verdict, naming the path that fails. */
function expectVerdicts (text: string, token: string, verdicts: Record<string, boolean>): void {
  const rules = parseRobotsTxt(text, token)
  for (const [path, expected] of Object.entries(verdicts)) {
    assert.equal(rules.isAllowed(path), expected, `${token} ${path} should be ${expected ? 'allowed' : 'disallowed'}`)
  }
}

describe('robots-txt', () => {
  describe('RFC 9309 examples', () => {
    // https://www.rfc-editor.org/rfc/rfc9309.html#section-5.1
    const simple = [
      'User-Agent: *',
      'Disallow: *.gif$',
      'Disallow: /example/',
      'Allow: /publications/',
      '',
      'User-Agent: foobot',
      'Disallow:/',
      'Allow:/example/page.html',
      'Allow:/example/allowed.gif',
      '',
      'User-Agent: barbot',
      'User-Agent: bazbot',
      'Disallow: /example/page.html',
      '',
      'User-Agent: quxbot',
      ''
    ].join('\n')

    it('§5.1: foobot may fetch only the two allowed pages', () => {
      expectVerdicts(simple, 'foobot', {
        '/example/page.html': true,
        '/example/allowed.gif': true,
        '/example/other.html': false,
        '/': false,
        '/publications/': false
      })
    })

    it('§5.1: barbot and bazbot share one group', () => {
      for (const bot of ['barbot', 'bazbot']) {
        expectVerdicts(simple, bot, {
          '/example/page.html': false,
          '/example/other.html': true,
          '/image.gif': true
        })
      }
    })

    it('§5.1: quxbot has an empty group of its own, so everything is allowed', () => {
      expectVerdicts(simple, 'quxbot', {
        '/example/page.html': true,
        '/image.gif': true
      })
    })

    it('§5.1: any other crawler gets the * group', () => {
      expectVerdicts(simple, TOKEN, {
        '/image.gif': false,
        '/a/b/image.gif': false,
        '/image.gif?x=1': true, // `$` anchors at the end of path+query
        '/example/': false,
        '/example/page.html': false,
        '/publications/': true,
        '/publications/cover.gif': true, // allow /publications/ (14 octets) beats *.gif$ (6)
        '/other': true
      })
    })

    it('§5.2: the longest match wins', () => {
      const text = 'User-Agent: foobot\nAllow: /example/page/\nDisallow: /example/page/disallowed.gif\n'
      expectVerdicts(text, 'foobot', {
        '/example/page/': true,
        '/example/page/allowed.gif': true,
        '/example/page/disallowed.gif': false
      })
    })

    it('§2.2.1: groups naming the same crawler are merged', () => {
      // https://www.rfc-editor.org/rfc/rfc9309.html#section-2.2.1
      const text = [
        'user-agent: ExampleBot',
        'disallow: /foo',
        'disallow: /bar',
        '',
        'user-agent: ExampleBot',
        'disallow: /baz',
        '',
        'user-agent: *',
        'disallow: /qux'
      ].join('\n')
      expectVerdicts(text, 'ExampleBot', { '/foo': false, '/bar': false, '/baz': false, '/qux': true })
      expectVerdicts(text, TOKEN, { '/foo': true, '/bar': true, '/baz': true, '/qux': false })
    })

    it('§2.2.1: several * groups are merged', () => {
      const text = 'User-agent: *\nDisallow: /a\n\nUser-agent: other\nDisallow: /\n\nUser-agent: *\nDisallow: /b\n'
      expectVerdicts(text, TOKEN, { '/a': false, '/b': false, '/c': true })
    })

    it('§2.2.1: with no matching group and no * group, nothing is disallowed', () => {
      expectVerdicts('User-agent: other\nDisallow: /\n', TOKEN, { '/': true, '/x': true })
      expectVerdicts('', TOKEN, { '/': true })
    })

    it('§2.2.2: percent-encoded unreserved octets equal their characters', () => {
      // https://www.rfc-editor.org/rfc/rfc9309.html#section-2.2.2 (the table of paths to match)
      assert.equal(normalizePath('/foo/bar?baz=quz'), '/foo/bar?baz=quz')
      assert.equal(normalizePath('/foo/bar?baz=https%3A%2F%2Ffoo.bar'), '/foo/bar?baz=https%3A%2F%2Ffoo.bar')
      assert.equal(normalizePath('/foo/bar/\u30c4'), '/foo/bar/%E3%83%84')
      assert.equal(normalizePath('/foo/bar/%E3%83%84'), '/foo/bar/%E3%83%84')
      assert.equal(normalizePath('/foo/bar/%62%61%7A'), '/foo/bar/baz')
      expectVerdicts('User-agent: *\nDisallow: /foo/bar/baz\n', TOKEN, { '/foo/bar/%62%61%7A': false })
      expectVerdicts('User-agent: *\nDisallow: /foo/bar/\u30c4\n', TOKEN, { '/foo/bar/%E3%83%84': false })
      expectVerdicts('User-agent: *\nDisallow: /foo/bar/%E3%83%84\n', TOKEN, { '/foo/bar/\u30c4': false })
    })

    it('§2.2.2: /robots.txt is always allowed', () => {
      expectVerdicts('User-agent: *\nDisallow: /\nDisallow: /robots.txt\n', TOKEN, {
        '/robots.txt': true,
        '/robots.txt?x=1': true,
        '/robots.txtx': false,
        '/robots.txt/x': false,
        '/': false
      })
    })

    it('§2.2.3: comments, $ and * as in the table of special characters', () => {
      const anchored = [
        '# comment on its own line',
        'user-agent: *',
        'allow: /this/path/exactly$ # comment in line',
        'disallow: /this/'
      ].join('\n')
      expectVerdicts(anchored, TOKEN, {
        '/this/path/exactly': true,
        '/this/path/exactly/more': false,
        '/this/path/exactly?q': false,
        '/this/other': false
      })
      const wildcard = 'user-agent: *\nallow: /this/*/exactly\ndisallow: /this/\n'
      expectVerdicts(wildcard, TOKEN, {
        '/this/path/exactly': true,
        '/this/a/b/exactly/and/on': true,
        '/this/exactly': false,
        '/this/other': false
      })
    })
  })

  describe("Google's documented matching examples", () => {
    // https://developers.google.com/search/docs/crawling-indexing/robots/robots_txt#url-matching-based-on-path-values
    const cases: Array<[pattern: string, matches: string[], doesNotMatch: string[]]> = [
      ['/', ['/', '/x', '/a/b?c'], []],
      ['/*', ['/', '/x', '/a/b?c'], []],
      ['/$', ['/'], ['/x', '/?a=b']],
      ['/fish',
        ['/fish', '/fish.html', '/fish/salmon.html', '/fishheads', '/fishheads/yummy.html', '/fish.php?id=anything'],
        ['/Fish.asp', '/catfish', '/?id=fish', '/desert/fish']],
      ['/fish*',
        ['/fish', '/fish.html', '/fish/salmon.html', '/fishheads', '/fishheads/yummy.html', '/fish.php?id=anything'],
        ['/Fish.asp', '/catfish', '/?id=fish', '/desert/fish']],
      ['/fish/',
        ['/fish/', '/fish/?id=anything', '/fish/salmon.htm'],
        ['/fish', '/fish.html', '/animals/fish/', '/Fish/Salmon.asp']],
      ['/*.php',
        ['/index.php', '/filename.php', '/folder/filename.php', '/folder/filename.php?parameters', '/folder/any.php.file.html', '/filename.php/'],
        ['/', '/windows.PHP']],
      ['/*.php$',
        ['/filename.php', '/folder/filename.php'],
        ['/filename.php?parameters', '/filename.php/', '/filename.php5', '/windows.PHP']],
      ['/fish*.php',
        ['/fish.php', '/fishheads/catfish.php?parameters'],
        ['/Fish.PHP']]
    ]
    for (const [pattern, yes, no] of cases) {
      it(`pattern ${pattern}`, () => {
        const verdicts: Record<string, boolean> = {}
        for (const p of yes) verdicts[p] = false
        for (const p of no) verdicts[p] = true
        expectVerdicts(`User-agent: *\nDisallow: ${pattern}\n`, TOKEN, verdicts)
      })
    }

    // https://developers.google.com/search/docs/crawling-indexing/robots/robots_txt#order-of-precedence-for-rules
    const precedence: Array<[path: string, allow: string, disallow: string, allowed: boolean]> = [
      ['/page', '/p', '/', true], // longer allow wins
      ['/folder/page', '/folder', '/folder', true], // tie: the least restrictive (allow) wins
      ['/page.htm', '/page', '/*.htm', false], // longer disallow wins
      ['/page.php5', '/page', '/*.ph', true], // tie in length: allow wins
      ['/', '/$', '/', true],
      ['/page.htm', '/$', '/', false]
    ]
    for (const [path, allow, disallow, allowed] of precedence) {
      it(`precedence: ${path} with allow ${allow}, disallow ${disallow}`, () => {
        const text = `User-agent: *\nAllow: ${allow}\nDisallow: ${disallow}\n`
        expectVerdicts(text, TOKEN, { [path]: allowed })
        // Order in the file does not matter.
        expectVerdicts(`User-agent: *\nDisallow: ${disallow}\nAllow: ${allow}\n`, TOKEN, { [path]: allowed })
      })
    }
  })

  describe('groups', () => {
    it('our group applies instead of *, even if it is more permissive', () => {
      const text = 'User-agent: *\nDisallow: /\n\nUser-agent: shoal\nDisallow: /private\n'
      expectVerdicts(text, TOKEN, { '/': true, '/page': true, '/private': false })
    })

    it('matches the product token case-insensitively on both sides', () => {
      const text = 'User-agent: SHOAL\nDisallow: /x\n\nUser-agent: *\nDisallow: /\n'
      expectVerdicts(text, 'shoal', { '/x': false, '/y': true })
      expectVerdicts(text, 'Shoal', { '/x': false, '/y': true })
    })

    it('compares only the leading product token of the user-agent value', () => {
      expectVerdicts('User-agent: Shoal/1.0\nDisallow: /x\n', TOKEN, { '/x': false })
      expectVerdicts('User-agent: shoal (+https://example.com)\nDisallow: /x\n', TOKEN, { '/x': false })
      // Another crawler whose name starts with ours is not us.
      expectVerdicts('User-agent: shoal-news\nDisallow: /x\n\nUser-agent: *\nDisallow: /y\n', TOKEN, { '/x': true, '/y': false })
      expectVerdicts('User-agent: shoalbot\nDisallow: /x\n', TOKEN, { '/x': true })
    })

    it('treats only a bare * as the global group', () => {
      expectVerdicts('User-agent: *bot\nDisallow: /\n', TOKEN, { '/': true })
      expectVerdicts('User-agent: * # everyone\nDisallow: /\n', TOKEN, { '/': false })
    })

    it('consecutive user-agent lines share one group, blank lines and unknown lines notwithstanding', () => {
      const text = 'User-agent: a\n\nUser-agent: shoal\nFoo: bar\nSitemap: https://e.com/s.xml\nUser-agent: b\nDisallow: /x\n'
      for (const bot of ['a', 'shoal', 'b']) expectVerdicts(text, bot, { '/x': false, '/y': true })
    })

    it('a rule line closes the user-agent list, so the next user-agent starts a new group', () => {
      const text = 'User-agent: shoal\nDisallow: /x\nUser-agent: other\nDisallow: /y\n'
      expectVerdicts(text, TOKEN, { '/x': false, '/y': true })
      expectVerdicts(text, 'other', { '/x': true, '/y': false })
    })

    it('an empty disallow still closes the user-agent list', () => {
      const text = 'User-agent: shoal\nDisallow:\nUser-agent: other\nDisallow: /\n'
      expectVerdicts(text, TOKEN, { '/': true, '/x': true })
      expectVerdicts(text, 'other', { '/': false })
    })

    it('a group that is both ours and * applies to us', () => {
      const text = 'User-agent: *\nUser-agent: shoal\nDisallow: /x\n\nUser-agent: shoal\nDisallow: /y\n'
      expectVerdicts(text, TOKEN, { '/x': false, '/y': false, '/z': true })
      expectVerdicts(text, 'other', { '/x': false, '/y': true })
    })

    it('ignores rules before the first user-agent line', () => {
      expectVerdicts('Disallow: /\nUser-agent: *\nDisallow: /x\n', TOKEN, { '/': true, '/x': false })
    })

    it('rejects a product token the RFC does not allow', () => {
      assert.throws(() => parseRobotsTxt('', 'shoal/1.0'), { name: 'TypeError', message: /productToken/ })
      assert.throws(() => parseRobotsTxt('', ''), { name: 'TypeError', message: /productToken/ })
    })
  })

  describe('rules', () => {
    it('an empty disallow disallows nothing', () => {
      expectVerdicts('User-agent: *\nDisallow:\n', TOKEN, { '/': true, '/x': true })
      expectVerdicts('User-agent: *\nDisallow: \t \n', TOKEN, { '/': true })
    })

    it('matches paths case-sensitively', () => {
      expectVerdicts('User-agent: *\nDisallow: /Private\n', TOKEN, { '/Private': false, '/private': true })
    })

    it('matches the query string too', () => {
      expectVerdicts('User-agent: *\nDisallow: /*?\nDisallow: /*sessionid=\n', TOKEN, {
        '/page': true,
        '/page?': false,
        '/page?a=1': false,
        '/sessionid=1': false
      })
    })

    it('treats $ as an anchor only at the end of a pattern', () => {
      expectVerdicts('User-agent: *\nDisallow: /a$b\n', TOKEN, { '/a$b': false, '/a$bc': false, '/a': true })
      expectVerdicts('User-agent: *\nDisallow: /a$\n', TOKEN, { '/a': false, '/ab': true, '/a$': true })
    })

    it('handles a pattern starting with *, repeated * and * before $', () => {
      expectVerdicts('User-agent: *\nDisallow: *x**y*$\n', TOKEN, { '/axby': false, '/xy/': false, '/yx': true })
      expectVerdicts('User-agent: *\nDisallow: /a*b*$\n', TOKEN, { '/ab': false, '/a/b/c': false, '/ba': true })
      expectVerdicts('User-agent: *\nDisallow: /a*a\n', TOKEN, { '/a': true, '/aa': false, '/a/xa': false })
      expectVerdicts('User-agent: *\nDisallow: /ab*ba$\n', TOKEN, { '/aba': true, '/abba': false })
    })

    it('a pattern without a leading / or * matches nothing (a path always starts with /)', () => {
      expectVerdicts('User-agent: *\nDisallow: private\n', TOKEN, { '/private': true, '/x/private': true })
    })

    it('does not backtrack on hostile wildcard patterns', () => {
      const rules = parseRobotsTxt(`User-agent: *\nDisallow: /${'*a'.repeat(30)}*b\n`, TOKEN)
      // Would take ages with a backtracking regular expression; here it is a handful of indexOf calls.
      assert.equal(rules.isAllowed('/' + 'a'.repeat(5000)), true)
      assert.equal(rules.isAllowed('/' + 'a'.repeat(5000) + 'b'), false)
    })

    it('ties between identical patterns go to allow', () => {
      expectVerdicts('User-agent: *\nDisallow: /x\nAllow: /x\n', TOKEN, { '/x': true })
    })
  })

  describe('percent-encoding', () => {
    it('compares encoded octets case-insensitively in the hex digits', () => {
      expectVerdicts('User-agent: *\nDisallow: /a%3cd\n', TOKEN, { '/a%3Cd': false, '/a%3cd': false, '/a<d': false, '/acd': true })
      expectVerdicts('User-agent: *\nDisallow: /a%3Cd\n', TOKEN, { '/a%3cd': false })
    })

    it('decodes unreserved octets but keeps reserved ones encoded', () => {
      expectVerdicts('User-agent: *\nDisallow: /%7Euser\n', TOKEN, { '/~user': false })
      // %2F is not /: a server may treat them differently.
      expectVerdicts('User-agent: *\nDisallow: /a/b\n', TOKEN, { '/a%2Fb': true, '/a%2fb': true })
      expectVerdicts('User-agent: *\nDisallow: /a%2fb\n', TOKEN, { '/a%2Fb': false, '/a/b': true })
    })

    it('encodes non-ASCII in patterns and paths as UTF-8', () => {
      expectVerdicts('User-agent: *\nDisallow: /café\n', TOKEN, { '/caf%C3%A9': false, '/caf%c3%a9/x': false, '/cafe': true })
      assert.equal(normalizePath('/\u{1F41F}'), '/%F0%9F%90%9F')
      assert.equal(normalizePath('/\ud800x'), '/%EF%BF%BDx')
    })

    it('encodes a stray % and characters a URL cannot carry', () => {
      assert.equal(normalizePath('/100%'), '/100%25')
      assert.equal(normalizePath('/a%zz'), '/a%25zz')
      assert.equal(normalizePath('/a b|c'), '/a%20b%7Cc')
      expectVerdicts('User-agent: *\nDisallow: /100%\n', TOKEN, { '/100%25': false, '/100': true })
    })

    it('leaves a path that needs nothing as the same string', () => {
      const path = '/a/b-c_d.e~f?g=h&i=j*k$l;m,n'
      assert.equal(normalizePath(path), path)
    })
  })

  describe('crawl-delay', () => {
    const delayOf = (value: string): number | undefined =>
      parseRobotsTxt(`User-agent: *\nCrawl-delay: ${value}\n`, TOKEN).crawlDelay

    it('reads non-negative decimal seconds', () => {
      assert.equal(delayOf('5'), 5)
      assert.equal(delayOf('0'), 0)
      assert.equal(delayOf('0.5'), 0.5)
      assert.equal(delayOf('.25'), 0.25)
      assert.equal(delayOf('10.'), 10)
      assert.equal(delayOf('  7  # seconds'), 7)
    })

    it('ignores invalid values', () => {
      for (const bad of ['', '-1', 'abc', '5s', '1e3', '0x10', 'Infinity', 'NaN', '1,5', '+3', '1 2', '9'.repeat(400)]) {
        assert.equal(delayOf(bad), undefined, `Crawl-delay: ${bad.slice(0, 20)}`)
      }
    })

    it('comes from the group that applies', () => {
      const text = 'User-agent: *\nCrawl-delay: 10\n\nUser-agent: shoal\nCrawl-delay: 2\nDisallow: /x\n'
      assert.equal(parseRobotsTxt(text, TOKEN).crawlDelay, 2)
      assert.equal(parseRobotsTxt(text, 'other').crawlDelay, 10)
      assert.equal(parseRobotsTxt('User-agent: other\nCrawl-delay: 3\n', TOKEN).crawlDelay, undefined)
      assert.equal(parseRobotsTxt('User-agent: shoal\nDisallow: /\n\nUser-agent: *\nCrawl-delay: 3\n', TOKEN).crawlDelay, undefined)
    })

    it('keeps the largest delay of merged groups', () => {
      const text = 'User-agent: shoal\nCrawl-delay: 2\n\nUser-agent: shoal\nCrawl-delay: 4\nCrawl-delay: 1\n'
      assert.equal(parseRobotsTxt(text, TOKEN).crawlDelay, 4)
    })

    it('belongs to the group it is in and closes its user-agent list', () => {
      const text = 'User-agent: shoal\nCrawl-delay: 5\nUser-agent: other\nDisallow: /\n'
      const rules = parseRobotsTxt(text, TOKEN)
      assert.equal(rules.crawlDelay, 5)
      assert.equal(rules.isAllowed('/'), true)
    })
  })

  describe('sitemaps', () => {
    it('collects every sitemap line whatever the group, once each', () => {
      const text = [
        'Sitemap: https://example.com/a.xml',
        'User-agent: other',
        'Disallow: /',
        'sitemap:https://example.com/b.xml # comment',
        'User-agent: shoal',
        'Site-map: /relative.xml',
        'Sitemap: https://example.com/a.xml',
        'Sitemap:',
        'Disallow: /x'
      ].join('\n')
      const rules = parseRobotsTxt(text, TOKEN)
      assert.deepEqual(rules.sitemaps, ['https://example.com/a.xml', 'https://example.com/b.xml', '/relative.xml'])
      // A sitemap line does not close the user-agent list or touch the rules.
      assert.equal(rules.isAllowed('/x'), false)
      assert.equal(rules.isAllowed('/y'), true)
    })

    it('keeps a URL with a colon in it whole', () => {
      assert.deepEqual(parseRobotsTxt('Sitemap: http://example.com:8080/s.xml', TOKEN).sitemaps, ['http://example.com:8080/s.xml'])
    })
  })

  describe('tolerance', () => {
    it('skips a byte order mark', () => {
      expectVerdicts('\ufeffUser-agent: *\nDisallow: /x\n', TOKEN, { '/x': false })
    })

    it('accepts CR, LF and CRLF line endings, mixed', () => {
      const text = 'User-agent: *\rDisallow: /a\r\nDisallow: /b\nDisallow: /c'
      expectVerdicts(text, TOKEN, { '/a': false, '/b': false, '/c': false, '/d': true })
    })

    it('accepts any case and whitespace around keys, colons and values', () => {
      const text = '  USER-AGENT  :   shoal  \n\tdIsAlLoW\t:\t/x\t\n ALLOW : /x/y \n'
      expectVerdicts(text, TOKEN, { '/x': false, '/x/y': true })
    })

    it('accepts useragent and user agent, and common misspellings of disallow', () => {
      expectVerdicts('useragent: shoal\nDisallow: /x\n', TOKEN, { '/x': false })
      expectVerdicts('User agent: shoal\nDisallow: /x\n', TOKEN, { '/x': false })
      expectVerdicts('User-agent: shoal\nDissallow: /x\nDisalow: /y\n', TOKEN, { '/x': false, '/y': false })
    })

    it('ignores garbage, lines without a colon and unknown directives', () => {
      const text = [
        '<html><body>Not a robots.txt</body></html>',
        'User-agent: *',
        'Disallow /a', // no colon: ignored
        'Noindex: /b',
        'Host: example.com',
        ':::',
        '\u0000\u0001 binary',
        'Clean-param: ref /c',
        'Disallow: /d'
      ].join('\n')
      expectVerdicts(text, TOKEN, { '/a': true, '/b': true, '/c': true, '/d': false })
    })

    it('treats an HTML page served as robots.txt as allowing everything', () => {
      expectVerdicts('<!doctype html>\n<html><head><title>404</title></head><body>Not found</body></html>', TOKEN, { '/': true })
    })

    it('treats an empty path as /', () => {
      expectVerdicts('User-agent: *\nDisallow: /$\n', TOKEN, { '': false, '/x': true })
    })
  })

  describe('size cap', () => {
    it('parses only the first maxBytes and drops the line cut in half', () => {
      const head = 'User-agent: *\nDisallow: /a\n'
      const text = head + 'Disallow: /b\nDisallow: /c\n'
      // The cap falls inside "Disallow: /b": that line must not be read as "Disallow: /" or similar.
      const rules = parseRobotsTxt(text, TOKEN, { maxBytes: head.length + 11 })
      assert.equal(rules.isAllowed('/a'), false)
      assert.equal(rules.isAllowed('/b'), true)
      assert.equal(rules.isAllowed('/'), true)
      // A cut right after a line break keeps every whole line.
      const exact = parseRobotsTxt(text, TOKEN, { maxBytes: head.length + 13 })
      assert.equal(exact.isAllowed('/b'), false)
      assert.equal(exact.isAllowed('/c'), true)
    })

    it('counts bytes, not characters', () => {
      // "é" is two bytes in UTF-8: with the cap counting characters, /c would be read.
      const head = 'User-agent: *\nDisallow: /é\n'
      const text = head + 'Disallow: /c\n'
      const rules = parseRobotsTxt(text, TOKEN, { maxBytes: Buffer.byteLength(head) + 5 })
      assert.equal(rules.isAllowed('/%C3%A9'), false)
      assert.equal(rules.isAllowed('/c'), true)
      assert.equal(parseRobotsTxt(text, TOKEN, { maxBytes: Buffer.byteLength(text) }).isAllowed('/c'), false)
    })

    it('defaults to DEFAULT_MAX_ROBOTS_SIZE, at least the 500 KiB of RFC 9309 §2.5', () => {
      assert.ok(DEFAULT_MAX_ROBOTS_SIZE >= 500 * KiB)
      const filler = '# ' + 'x'.repeat(98) + '\n' // 101 bytes
      const lines = Math.floor(DEFAULT_MAX_ROBOTS_SIZE / filler.length)
      const within = 'User-agent: *\n' + filler.repeat(lines - 1) + 'Disallow: /in\n'
      const text = within + filler.repeat(10) + 'Disallow: /out\n'
      assert.ok(Buffer.byteLength(within) <= DEFAULT_MAX_ROBOTS_SIZE)
      const rules = parseRobotsTxt(text, TOKEN)
      assert.equal(rules.isAllowed('/in'), false)
      assert.equal(rules.isAllowed('/out'), true)
    })

    it('rejects a maxBytes that is not a positive integer', () => {
      for (const maxBytes of [0, -1, 1.5, Number.NaN, Infinity]) {
        assert.throws(() => parseRobotsTxt('', TOKEN, { maxBytes }), { name: 'RangeError', message: /maxBytes/ })
      }
    })
  })

  describe('allowAll and disallowAll', () => {
    it('allowAll allows everything', () => {
      assert.equal(allowAll.isAllowed('/'), true)
      assert.equal(allowAll.isAllowed('/x?y'), true)
      assert.equal(allowAll.crawlDelay, undefined)
      assert.deepEqual(allowAll.sitemaps, [])
    })

    it('disallowAll disallows everything but /robots.txt', () => {
      assert.equal(disallowAll.isAllowed('/'), false)
      assert.equal(disallowAll.isAllowed('/x?y'), false)
      assert.equal(disallowAll.isAllowed('/robots.txt'), true)
      assert.deepEqual(disallowAll.sitemaps, [])
    })

    it('cannot be changed by a caller', () => {
      assert.throws(() => { (allowAll.sitemaps).push('x') }, TypeError)
      assert.throws(() => { (disallowAll as { crawlDelay?: number }).crawlDelay = 1 }, TypeError)
    })
  })
})

import assert from 'node:assert/strict'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { detach, parsePage, refreshUrl, srcsetUrls, validateExtract } from '../../node/parser.js'

const PAGE = 'https://example.com/dir/page.html'

function links (html: string, opts = {}): string[] {
  return parsePage(html, PAGE, opts).links
}

describe('parser', () => {
  describe('link kinds', () => {
    it('finds a, area, link, img, script, iframe, frame, source, video and audio URLs in document order', () => {
      const html = `<!doctype html><html><head>
        <link rel="stylesheet" href="/style.css">
        <script src="/app.js"></script>
        </head><body>
        <a href="/a">a</a>
        <map><area href="/area" alt=""></map>
        <img src="/img.png">
        <iframe src="/iframe"></iframe>
        <frameset><frame src="/frame"></frameset>
        <picture><source src="/source" type="image/webp"><source srcset="/source-set.webp 1x"></picture>
        <video src="/video.mp4"></video>
        <audio src="/audio.ogg"></audio>
        </body></html>`
      assert.deepEqual(links(html), [
        'https://example.com/style.css',
        'https://example.com/app.js',
        'https://example.com/a',
        'https://example.com/area',
        'https://example.com/img.png',
        'https://example.com/iframe',
        'https://example.com/frame',
        'https://example.com/source',
        'https://example.com/source-set.webp',
        'https://example.com/video.mp4',
        'https://example.com/audio.ogg'
      ])
    })

    it('resolves relative, dot-segment, protocol-relative and absolute hrefs', () => {
      assert.deepEqual(links('<a href="sibling.html"><a href="../up"><a href="./x/./y/../z"><a href="//cdn.example.net/f"><a href="http://Other.Example:80/p"><a href="?q=1">'), [
        'https://example.com/dir/sibling.html',
        'https://example.com/up',
        'https://example.com/dir/x/z',
        'https://cdn.example.net/f',
        'http://other.example/p',
        'https://example.com/dir/page.html?q=1'
      ])
    })

    it('reads upper-case tag and attribute names', () => {
      assert.deepEqual(links('<A HREF="/upper">x</A><IMG SRC=/img.gif>'), ['https://example.com/upper', 'https://example.com/img.gif'])
    })

    it('skips <link rel=preconnect> and <link rel=dns-prefetch>, keeps other rels', () => {
      const html = `
        <link rel="preconnect" href="https://fonts.example.net">
        <link rel="DNS-Prefetch" href="//dns.example.net">
        <link rel="preconnect dns-prefetch" href="https://both.example.net">
        <link rel="preload" as="font" href="/font.woff2">
        <link rel="canonical" href="https://example.com/canonical">
        <link rel="icon" href="/favicon.ico">
        <link href="/no-rel">`
      assert.deepEqual(links(html), [
        'https://example.com/font.woff2',
        'https://example.com/canonical',
        'https://example.com/favicon.ico',
        'https://example.com/no-rel'
      ])
    })

    it('uses the first of duplicate attributes, as the HTML tokenizer does', () => {
      assert.deepEqual(links('<a href="/first" href="/second">'), ['https://example.com/first'])
    })

    it('does not take links from script text, style text, comments or attribute values of other tags', () => {
      const html = `
        <script>document.write('<a href="/in-script">')</script>
        <style>a::after { content: '<a href="/in-style">' }</style>
        <!-- <a href="/in-comment"> -->
        <div data-html='<a href="/in-attribute">'></div>
        <textarea><a href="/in-textarea"></textarea>
        <a href="/real">`
      assert.deepEqual(links(html), ['https://example.com/real'])
    })

    it('takes links inside <noscript> (a crawler runs no scripts)', () => {
      assert.deepEqual(links('<noscript><a href="/noscript">x</a></noscript>'), ['https://example.com/noscript'])
    })
  })

  describe('srcset', () => {
    it('takes every candidate URL and drops width and density descriptors', () => {
      assert.deepEqual(links('<img srcset="/s-480.jpg 480w, /s-960.jpg 960w,/s-1440.jpg   1440w">'), [
        'https://example.com/s-480.jpg',
        'https://example.com/s-960.jpg',
        'https://example.com/s-1440.jpg'
      ])
    })

    it('keeps commas that are part of a URL', () => {
      assert.deepEqual(srcsetUrls('/img?size=1,2 1x, /img?crop=0,0,10,10 2x'), ['/img?size=1,2', '/img?crop=0,0,10,10'])
      assert.deepEqual(links('<img srcset="https://cdn.example.net/w_100,h_50/a.jpg 1x, https://cdn.example.net/w_200,h_100/a.jpg 2x">'), [
        'https://cdn.example.net/w_100,h_50/a.jpg',
        'https://cdn.example.net/w_200,h_100/a.jpg'
      ])
    })

    it('ends a candidate at trailing commas and at a comma outside parentheses in descriptors', () => {
      assert.deepEqual(srcsetUrls('a.jpg, b.jpg,, c.jpg'), ['a.jpg', 'b.jpg', 'c.jpg'])
      assert.deepEqual(srcsetUrls('a.jpg (junk, more) 1x, b.jpg 2x'), ['a.jpg', 'b.jpg'])
      assert.deepEqual(srcsetUrls(' , ,  '), [])
      assert.deepEqual(srcsetUrls(''), [])
    })

    it('reads src and srcset of one img, and srcset of <source>', () => {
      assert.deepEqual(links('<img src="/fallback.jpg" srcset="/a.jpg 1x, /b.jpg 2x"><picture><source srcset="/c.avif, /d.avif 2x"></picture>'), [
        'https://example.com/fallback.jpg',
        'https://example.com/a.jpg',
        'https://example.com/b.jpg',
        'https://example.com/c.avif',
        'https://example.com/d.avif'
      ])
    })
  })

  describe('base href', () => {
    it('resolves links against an absolute <base href>', () => {
      assert.deepEqual(links('<head><base href="https://static.example.org/root/"></head><a href="x">'), ['https://static.example.org/root/x'])
    })

    it('resolves a relative <base href> against the page URL', () => {
      assert.deepEqual(links('<base href="/other/dir/"><a href="x"><a href="../y">'), [
        'https://example.com/other/dir/x',
        'https://example.com/other/y'
      ])
    })

    it('applies a <base> that comes after links to those links too', () => {
      assert.deepEqual(links('<a href="before"><base href="/b/"><a href="after">'), [
        'https://example.com/b/before',
        'https://example.com/b/after'
      ])
    })

    it('uses only the first <base> with an href', () => {
      assert.deepEqual(links('<base target="_blank"><base href="/first/"><base href="/second/"><a href="x">'), ['https://example.com/first/x'])
    })

    it('falls back to the page URL when <base href> does not parse', () => {
      assert.deepEqual(links('<base href="http://[::1"><a href="x">'), ['https://example.com/dir/x'])
    })

    it('does not apply the base to absolute hrefs', () => {
      assert.deepEqual(links('<base href="https://static.example.org/"><a href="http://example.com/abs"><a href="rel">'), [
        'http://example.com/abs',
        'https://static.example.org/rel'
      ])
    })

    it('resolves a meta refresh target against the base', () => {
      assert.deepEqual(links('<meta http-equiv="refresh" content="0; url=next"><base href="/b/">'), ['https://example.com/b/next'])
    })
  })

  describe('nofollow and meta robots', () => {
    it('skips a and area links with rel=nofollow, in any case and among other tokens', () => {
      const html = `<a href="/followed" rel="noopener">x</a>
        <a href="/nf1" rel="nofollow">x</a>
        <a href="/nf2" rel="noopener NoFollow ugc">x</a>
        <area href="/nf3" rel="nofollow">
        <a href="/not-a-token" rel="nofollowish">x</a>`
      assert.deepEqual(links(html), ['https://example.com/followed', 'https://example.com/not-a-token'])
    })

    it('still follows a nofollow href found again without rel=nofollow', () => {
      assert.deepEqual(links('<a href="/x" rel="nofollow"></a><a href="/x"></a>'), ['https://example.com/x'])
    })

    it('reads noindex and nofollow from <meta name=robots>', () => {
      const page = parsePage('<meta name="robots" content="noindex,nofollow"><a href="/a">', PAGE)
      assert.deepEqual(page, { links: [], noindex: true, nofollow: true })
    })

    it('reads "none" as noindex plus nofollow', () => {
      const page = parsePage('<meta name="robots" content="none"><a href="/a">', PAGE)
      assert.deepEqual(page, { links: [], noindex: true, nofollow: true })
    })

    it('is case-insensitive and tolerates spaces as separators', () => {
      assert.deepEqual(parsePage('<META NAME="ROBOTS" CONTENT=" NoIndex , NOFOLLOW ">', PAGE), { links: [], noindex: true, nofollow: true })
      assert.deepEqual(parsePage('<meta name="robots" content="noindex nofollow">', PAGE), { links: [], noindex: true, nofollow: true })
    })

    it('sets noindex alone and keeps links', () => {
      assert.deepEqual(parsePage('<meta name="robots" content="noindex, follow"><a href="/a">', PAGE), {
        links: ['https://example.com/a'],
        noindex: true,
        nofollow: false
      })
    })

    it('sets nofollow alone, which empties links, also when the meta comes after them', () => {
      assert.deepEqual(parsePage('<a href="/a"><meta name="robots" content="nofollow">', PAGE), { links: [], noindex: false, nofollow: true })
    })

    it('combines several robots metas', () => {
      assert.deepEqual(parsePage('<meta name="robots" content="noindex"><meta name="robots" content="nofollow">', PAGE), { links: [], noindex: true, nofollow: true })
    })

    it('ignores "index, follow", other meta names and a robots meta without content', () => {
      const html = '<meta name="robots" content="index, follow, max-snippet:-1"><meta name="googlebot" content="noindex"><meta name="description" content="nofollow"><meta name="robots"><a href="/a">'
      assert.deepEqual(parsePage(html, PAGE), { links: ['https://example.com/a'], noindex: false, nofollow: false })
    })
  })

  describe('meta refresh', () => {
    it('takes the URL of the usual spellings', () => {
      const cases: Array<[string, string]> = [
        ['5; url=/a', '/a'],
        ['0;URL=/b', '/b'],
        ['3 ; url = /c', '/c'],
        ["0; url='/d'", '/d'],
        ['0; URL="/e" ', '/e'],
        ['0, /f', '/f'],
        ['0 /g', '/g'],
        ["0; '/h'", '/h'],
        ['1.5; url=/i', '/i'],
        ['.5; url=/j', '/j'],
        ["0; url='/k'trailing", '/k'],
        ["0; url='/unclosed", '/unclosed'],
        ['0; urlish', 'urlish']
      ]
      for (const [content, url] of cases) assert.equal(refreshUrl(content), url, content)
    })

    it('has no URL for a plain reload or a missing time', () => {
      for (const content of ['5', '  0  ', '0;', '0; ', '', 'url=/x', 'x; url=/y', '5x; url=/z']) {
        assert.equal(refreshUrl(content), undefined, content)
      }
    })

    it('adds the refresh target to the links, with http-equiv in any case', () => {
      assert.deepEqual(links('<meta http-equiv="Refresh" content="5; URL=\'/moved\'"><meta http-equiv="refresh" content="10">'), ['https://example.com/moved'])
    })
  })

  describe('hrefs that are not followed', () => {
    it('skips mailto:, javascript:, tel:, data: and other schemes', () => {
      const html = `<a href="mailto:someone@example.com">m</a>
        <a href="JavaScript:void(0)">j</a>
        <a href="  javascript:alert(1)">j</a>
        <a href="tel:+15555550100">t</a>
        <img src="data:image/png;base64,iVBORw0KGgo=">
        <a href="ftp://ftp.example.com/file">f</a>
        <a href="urn:isbn:0451450523">u</a>
        <a href="/kept">k</a>`
      assert.deepEqual(links(html), ['https://example.com/kept'])
    })

    it('skips empty and fragment-only hrefs and drops the fragment of others', () => {
      const html = '<a href="">e</a><a href="   ">s</a><a href="#top">t</a><a href="#">h</a><a href="/other#section">o</a><a href="page.html#x">p</a><a>no href</a>'
      assert.deepEqual(links(html), ['https://example.com/other', 'https://example.com/dir/page.html'])
    })

    it('skips hrefs longer than maxHrefLength without resolving them', () => {
      const long = '/' + 'a'.repeat(3000)
      assert.deepEqual(links(`<a href="${long}"><a href="/short">`), ['https://example.com/short'])
      assert.deepEqual(links('<a href="/12345"><a href="/1234">', { maxHrefLength: 5 }), ['https://example.com/1234'])
    })

    it('skips hrefs that are not valid URLs', () => {
      const html = '<a href="http://[::1">1</a><a href="https://exa mple.com/">2</a><a href="http://">3</a><a href="https://a.example:99999/">4</a><a href="/ok">ok</a>'
      assert.deepEqual(links(html), ['https://example.com/ok'])
    })
  })

  describe('entities and whitespace', () => {
    it('decodes character references in attribute values', () => {
      assert.deepEqual(links('<a href="/p?a=1&amp;b=2">x</a><a href="/q?x=1&#38;y=2&#x26;z=3">y</a><a href="&#x2F;slash">z</a>'), [
        'https://example.com/p?a=1&b=2',
        'https://example.com/q?x=1&y=2&z=3',
        'https://example.com/slash'
      ])
    })

    it('trims surrounding whitespace and drops newlines and tabs inside an href', () => {
      assert.deepEqual(links('<a href="\n\t /trimmed \n">x</a><a href="/spl\nit">y</a>'), ['https://example.com/trimmed', 'https://example.com/split'])
    })
  })

  describe('memory', () => {
    const heapAfterGc = (): number => {
      setFlagsFromString('--expose-gc')
      const gc = runInNewContext('gc') as () => void
      gc(); gc()
      return process.memoryUsage().heapUsed
    }

    it('detach gives back the same characters', () => {
      const s = 'x'.repeat(1000) + 'the part that is kept' + 'y'.repeat(1000)
      const d = detach(s.slice(1000, 1021))
      assert.equal(d, 'the part that is kept')
      assert.equal(detach(''), '')
    })

    it('the href cache does not keep the pages its hrefs were cut from', () => {
      const pageBytes = 1 << 18
      parsePage('<a href="warm?up">w</a>', PAGE) // compiles the parser: not what is measured
      const before = heapAfterGc()
      for (let i = 0; i < 40; i++) {
        // An href with a query goes through the URL parser, and its answer is cached (keyed on it).
        const html = `<a href="next-page-${i}.html?from=page-${i}">n</a>` + `<p>${String(i).padStart(8, '0')}</p>`.repeat(pageBytes / 16)
        assert.deepEqual(links(html), [`https://example.com/dir/next-page-${i}.html?from=page-${i}`])
      }
      const grown = heapAfterGc() - before
      // 40 pages of 256 KiB each: held by the cache's keys, that is > 10 MiB.
      assert.ok(grown < 8 * pageBytes, `the heap grew ${(grown / 2 ** 20).toFixed(1)} MiB after parsing 40 pages`)
    })
  })

  describe('de-duplication and caps', () => {
    it('de-duplicates links, including different spellings of one URL, keeping the first position', () => {
      assert.deepEqual(links('<a href="/a"><a href="/b"><a href="/a"><a href="./../a"><a href="https://EXAMPLE.com/a#x"><a href="/c">'), [
        'https://example.com/a',
        'https://example.com/b',
        'https://example.com/c'
      ])
    })

    it('keeps at most maxLinks distinct links, the first ones in document order', () => {
      let html = ''
      for (let i = 0; i < 10; i++) html += `<a href="/p${i}">x</a><a href="/p${i}">again</a>`
      assert.deepEqual(links(html, { maxLinks: 3 }), ['https://example.com/p0', 'https://example.com/p1', 'https://example.com/p2'])
    })

    it('does not let skipped hrefs take places under maxLinks', () => {
      const html = '<a href="mailto:a@b"><a href="#x"><a href="javascript:;"><a href="/1"><a href="/2">'
      assert.deepEqual(links(html, { maxLinks: 2 }), ['https://example.com/1', 'https://example.com/2'])
    })

    it('applies the default cap of DEFAULT_MAX_LINKS_PER_PAGE', () => {
      let html = ''
      for (let i = 0; i < 6000; i++) html += `<a href="/p${i}">`
      const found = links(html)
      assert.equal(found.length, 5000)
      assert.equal(found[4999], 'https://example.com/p4999')
    })

    it('rejects a maxLinks or maxHrefLength that is not a valid count, naming it', () => {
      for (const maxLinks of [-1, 1.5, Number.NaN, Infinity]) {
        assert.throws(() => parsePage('', PAGE, { maxLinks }), { name: 'ConfigError', message: /^maxLinks must be a non-negative integer$/ })
      }
      for (const maxHrefLength of [0, -5, 2.5, Number.NaN]) {
        assert.throws(() => parsePage('', PAGE, { maxHrefLength }), { name: 'ConfigError', message: /^maxHrefLength must be a positive integer$/ })
      }
      assert.deepEqual(links('<a href="/a">', { maxLinks: 0 }), [])
    })

    it('passes stripParams to the normalizer', () => {
      assert.deepEqual(links('<a href="/p?utm_source=x&id=3">', { stripParams: ['utm_source'] }), ['https://example.com/p?id=3'])
    })
  })

  describe('malformed input', () => {
    it('recovers links from unclosed tags and quotes', () => {
      const found = links('<div><p><a href="/one">one<a href=/two>two<ul><li><a href="/three"')
      assert.ok(found.includes('https://example.com/one'))
      assert.ok(found.includes('https://example.com/two'))
    })

    it('never throws on garbage, binary junk, deep nesting or huge attributes', () => {
      let seed = 42
      const random = (): number => {
        seed = (seed * 1103515245 + 12345) % 2147483648
        return seed
      }
      let junk = ''
      for (let i = 0; i < 200_000; i++) junk += String.fromCharCode(random() % 0x10000)
      const bytes = '\u0000\u0001\uFFFD\uD800<\u0000a href="\u0000/x">'
      const inputs = [
        junk,
        bytes,
        '<<<<>>>></a></a></a><a/><a href=><a href',
        '<!-- unterminated comment <a href="/x">',
        '<![CDATA[ <a href="/cdata"> ]]>',
        '<script>never closed <a href="/x">',
        '<div>'.repeat(50_000) + '<a href="/deep">',
        `<a title="${'x'.repeat(2_000_000)}" href="/after-huge">`,
        `<a href="${'/'.repeat(1_000_000)}">`,
        `<img srcset="${', '.repeat(100_000)}">`,
        '<meta http-equiv="refresh" content="' + '0;'.repeat(10_000) + '">',
        '<base href="javascript:alert(1)"><a href="rel">',
        '<svg><a xlink:href="/svg-link" href="/svg-href"></a></svg><math><a href="/math"></math>'
      ]
      for (const html of inputs) {
        const page = parsePage(html, PAGE)
        assert.ok(Array.isArray(page.links))
      }
      assert.deepEqual(links('<div>'.repeat(50_000) + '<a href="/deep">'), ['https://example.com/deep'])
      assert.deepEqual(links(`<a title="${'x'.repeat(2_000_000)}" href="/after-huge">`), ['https://example.com/after-huge'])
    })

    it('finds every link after 200,000 unclosed elements, and none in script text', () => {
      const html = '<b>'.repeat(200_000) + '<a href="/after">x</a></b><img src="/img"><script>"<a href=/in-script>"</script><a href="/last">'
      assert.deepEqual(links(html), ['https://example.com/after', 'https://example.com/img', 'https://example.com/last'])
    })

    it('does not throw on a page URL that is not a URL, and still keeps absolute links', () => {
      assert.deepEqual(parsePage('<a href="relative"><a href="https://abs.example/x">', 'not a url').links, ['https://abs.example/x'])
    })
  })

  describe('extraction', () => {
    const html = `<html><head><title>  The
      Title </title></head><body>
      <h1>Product</h1>
      <span class="price" data-value="12.50">$12.50</span>
      <ul><li class="tag">red</li><li class="tag">  big
         shiny </li><li class="tag" data-k="2"></li></ul>
      <a class="more" href="/more?a=1&amp;b=2">more</a>
      </body></html>`

    it('sets no fields without extract, and an empty object for an empty match set', () => {
      assert.equal(parsePage(html, PAGE).fields, undefined)
      assert.equal(parsePage(html, PAGE, { extract: {} }).fields, undefined)
      assert.deepEqual(parsePage(html, PAGE, { extract: { none: '.missing' } }).fields, {})
    })

    it('gives a string for one match, an array for several, nothing for none', () => {
      const page = parsePage(html, PAGE, { extract: { title: 'title', heading: 'h1', tags: 'li.tag', missing: '.nope' } })
      assert.deepEqual(page.fields, { title: 'The Title', heading: 'Product', tags: ['red', 'big shiny', ''] })
    })

    it('selects an attribute with @name, skipping elements without it', () => {
      const page = parsePage(html, PAGE, { extract: { price: '.price@data-value', more: 'a.more@href', keys: 'li.tag@data-k', absent: 'h1@data-x' } })
      assert.deepEqual(page.fields, { price: '12.50', more: '/more?a=1&b=2', keys: '2' })
    })

    it('keeps an @ inside an attribute selector as part of the selector', () => {
      const page = parsePage('<a href="mailto:x@y.example">m</a>', PAGE, { extract: { mail: 'a[href="mailto:x@y.example"]', to: 'a[href^="mailto:"]@href' } })
      assert.deepEqual(page.fields, { mail: 'm', to: 'mailto:x@y.example' })
    })

    it('still extracts from noindex/nofollow pages', () => {
      const page = parsePage('<meta name="robots" content="none"><h1>x</h1>', PAGE, { extract: { h: 'h1' } })
      assert.deepEqual(page, { links: [], noindex: true, nofollow: true, fields: { h: 'x' } })
    })

    it('skips a field with an invalid selector instead of throwing', () => {
      const page = parsePage(html, PAGE, { extract: { bad: 'li[', heading: 'h1' } })
      assert.deepEqual(page.fields, { heading: 'Product' })
    })

    it('validateExtract names the field with an invalid selector', () => {
      validateExtract({ ok: '.price@data-value', also: 'h1' })
      assert.throws(() => { validateExtract({ ok: 'h1', broken: 'li[' }) }, (err: Error) => {
        assert.equal(err.name, 'ConfigError')
        assert.match(err.message, /extract\.broken/)
        return true
      })
      assert.throws(() => { validateExtract({ empty: '  ' }) }, { name: 'ConfigError', message: /extract\.empty/ })
      assert.throws(() => { validateExtract({ attrOnly: '@href' }) }, { name: 'ConfigError', message: /extract\.attrOnly/ })
    })
  })
})

import assert from 'node:assert/strict'
import { DEFAULT_TRACKING_PARAMS, hostKey, hostOf, normalizeUrl, type NormalizeOptions } from '../../node/normalize.js'

/** One row: the href, the base it is resolved against (if any), the expected result. */
type Row = [href: string, base: string | undefined, want: string | undefined]

interface Group {
  name: string
  opts?: NormalizeOptions
  rows: Row[]
}

// RFC 3986 §5.4 reference resolution examples, with the base used there.
// https://www.rfc-editor.org/rfc/rfc3986#section-5.4
// Where WHATWG parsing differs from RFC 3986 the row says so; fragments are then removed and the
// result normalized (so `//g` gains its `/` path).
const RFC_BASE = 'http://a/b/c/d;p?q'

const tracking: NormalizeOptions = { stripParams: DEFAULT_TRACKING_PARAMS }

const groups: Group[] = [
  {
    name: 'RFC 3986 §5.4.1 normal examples',
    rows: [
      ['g:h', RFC_BASE, undefined], // not http(s)
      ['g', RFC_BASE, 'http://a/b/c/g'],
      ['./g', RFC_BASE, 'http://a/b/c/g'],
      ['g/', RFC_BASE, 'http://a/b/c/g/'],
      ['/g', RFC_BASE, 'http://a/g'],
      ['//g', RFC_BASE, 'http://g/'],
      ['?y', RFC_BASE, 'http://a/b/c/d;p?y'],
      ['g?y', RFC_BASE, 'http://a/b/c/g?y'],
      ['#s', RFC_BASE, 'http://a/b/c/d;p?q'],
      ['g#s', RFC_BASE, 'http://a/b/c/g'],
      ['g?y#s', RFC_BASE, 'http://a/b/c/g?y'],
      [';x', RFC_BASE, 'http://a/b/c/;x'],
      ['g;x', RFC_BASE, 'http://a/b/c/g;x'],
      ['g;x?y#s', RFC_BASE, 'http://a/b/c/g;x?y'],
      ['', RFC_BASE, 'http://a/b/c/d;p?q'],
      ['.', RFC_BASE, 'http://a/b/c/'],
      ['./', RFC_BASE, 'http://a/b/c/'],
      ['..', RFC_BASE, 'http://a/b/'],
      ['../', RFC_BASE, 'http://a/b/'],
      ['../g', RFC_BASE, 'http://a/b/g'],
      ['../..', RFC_BASE, 'http://a/'],
      ['../../', RFC_BASE, 'http://a/'],
      ['../../g', RFC_BASE, 'http://a/g']
    ]
  },
  {
    name: 'RFC 3986 §5.4.2 abnormal examples',
    rows: [
      ['../../../g', RFC_BASE, 'http://a/g'],
      ['../../../../g', RFC_BASE, 'http://a/g'],
      ['/./g', RFC_BASE, 'http://a/g'],
      ['/../g', RFC_BASE, 'http://a/g'],
      ['g.', RFC_BASE, 'http://a/b/c/g.'],
      ['.g', RFC_BASE, 'http://a/b/c/.g'],
      ['g..', RFC_BASE, 'http://a/b/c/g..'],
      ['..g', RFC_BASE, 'http://a/b/c/..g'],
      ['./../g', RFC_BASE, 'http://a/b/g'],
      ['./g/.', RFC_BASE, 'http://a/b/c/g/'],
      ['g/./h', RFC_BASE, 'http://a/b/c/g/h'],
      ['g/../h', RFC_BASE, 'http://a/b/c/h'],
      ['g;x=1/./y', RFC_BASE, 'http://a/b/c/g;x=1/y'],
      ['g;x=1/../y', RFC_BASE, 'http://a/b/c/y'],
      ['g?y/./x', RFC_BASE, 'http://a/b/c/g?y/./x'], // dot-segments in a query are data
      ['g?y/../x', RFC_BASE, 'http://a/b/c/g?y/../x'],
      ['g#s/./x', RFC_BASE, 'http://a/b/c/g'],
      ['g#s/../x', RFC_BASE, 'http://a/b/c/g'],
      // RFC 3986 strict parsers give "http:g"; WHATWG treats a special scheme equal to the base's as relative.
      ['http:g', RFC_BASE, 'http://a/b/c/g']
    ]
  },
  {
    name: 'relative forms',
    rows: [
      ['//cdn.example.net/x.js', 'https://example.com/a/', 'https://cdn.example.net/x.js'],
      ['//cdn.example.net', 'http://example.com/a/', 'http://cdn.example.net/'],
      ['?page=2', 'https://example.com/list?page=1#top', 'https://example.com/list?page=2'],
      ['#section', 'https://example.com/doc?x=1#old', 'https://example.com/doc?x=1'],
      ['/abs/path', 'https://example.com/a/b/c', 'https://example.com/abs/path'],
      ['sibling.html', 'https://example.com/dir/index.html', 'https://example.com/dir/sibling.html'],
      ['sub/', 'https://example.com/dir/', 'https://example.com/dir/sub/'],
      ['../up', 'https://example.com/a/b/', 'https://example.com/a/up'],
      ['../../../../../../x', 'https://example.com/a/', 'https://example.com/x'],
      ['x', 'https://u:p@example.com/a/b#f', 'https://example.com/a/x'], // base userinfo and fragment dropped
      ['https:other.example/p', 'http://example.com/', 'https://other.example/p'], // scheme differs: authority follows
      ['\\\\host.example\\a\\b', 'http://example.com/', 'http://host.example/a/b'], // '\' is '/' in special URLs
      ['//', 'http://example.com/', undefined],
      ['/x', 'not a base', undefined],
      ['/x', undefined, undefined],
      ['relative', undefined, undefined]
    ]
  },
  {
    name: 'scheme and host case, ports',
    rows: [
      ['HTTP://EXAMPLE.COM/', undefined, 'http://example.com/'],
      ['HtTpS://WwW.ExAmPlE.cOm/Path/To?Q=V', undefined, 'https://www.example.com/Path/To?Q=V'], // path and query keep case
      ['http://example.com', undefined, 'http://example.com/'],
      ['http://example.com:80/', undefined, 'http://example.com/'],
      ['https://example.com:443/a', undefined, 'https://example.com/a'],
      ['http://example.com:443/', undefined, 'http://example.com:443/'],
      ['https://example.com:80/', undefined, 'https://example.com:80/'],
      ['http://example.com:8080/x', undefined, 'http://example.com:8080/x'],
      ['http://example.com:080/', undefined, 'http://example.com/'],
      ['http://example.com:08080/', undefined, 'http://example.com:8080/'],
      ['http://example.com:/', undefined, 'http://example.com/'],
      ['http://example.com:65535/', undefined, 'http://example.com:65535/'],
      ['http://example.com:65536/', undefined, undefined],
      ['http://example.com:-1/', undefined, undefined],
      ['http://example.com:port/', undefined, undefined],
      ['http://%65xample.com/', undefined, 'http://example.com/'] // host escapes are decoded by the host parser
    ]
  },
  {
    name: 'trailing dot on the host',
    rows: [
      ['http://example.com./', undefined, 'http://example.com/'],
      ['http://Example.COM./a?b', undefined, 'http://example.com/a?b'],
      ['http://example.com.:8080/a', undefined, 'http://example.com:8080/a'],
      ['https://example.com.:443/', undefined, 'https://example.com/'],
      ['http://example.com../', undefined, 'http://example.com/'],
      ['http://127.0.0.1./', undefined, 'http://127.0.0.1/'],
      ['http://./', undefined, undefined],
      ['http://../', undefined, undefined],
      ['http://a.b..c/', undefined, 'http://a.b..c/'] // only trailing dots go
    ]
  },
  {
    name: 'IDN, IPv4 and IPv6 hosts',
    rows: [
      ['http://münchen.de/', undefined, 'http://xn--mnchen-3ya.de/'],
      ['http://MÜNCHEN.DE/Straße', undefined, 'http://xn--mnchen-3ya.de/Stra%C3%9Fe'],
      ['http://xn--mnchen-3ya.de./', undefined, 'http://xn--mnchen-3ya.de/'],
      ['http://例え.テスト/', undefined, 'http://xn--r8jz45g.xn--zckzah/'],
      ['http://192.168.0.1:8080/', undefined, 'http://192.168.0.1:8080/'],
      ['http://0x7f.1/', undefined, 'http://127.0.0.1/'],
      ['http://2130706433/', undefined, 'http://127.0.0.1/'],
      ['http://[::1]/', undefined, 'http://[::1]/'],
      ['http://[::1]:8080/a', undefined, 'http://[::1]:8080/a'],
      ['https://[::1]:443/', undefined, 'https://[::1]/'],
      ['http://[2001:DB8::1]/', undefined, 'http://[2001:db8::1]/'],
      ['http://[0:0:0:0:0:0:0:1]/', undefined, 'http://[::1]/'],
      ['http://[::ffff:127.0.0.1]/', undefined, 'http://[::ffff:7f00:1]/'],
      ['http://[::1/', undefined, undefined],
      ['http://exa mple.com/', undefined, undefined],
      ['http://exa<mple.com/', undefined, undefined],
      ['http://', undefined, undefined],
      ['http:///', undefined, undefined]
    ]
  },
  {
    name: 'dot-segments in absolute URLs',
    rows: [
      ['http://a/b/c/./../../g', undefined, 'http://a/g'],
      ['http://a/./b', undefined, 'http://a/b'],
      ['http://a/../b', undefined, 'http://a/b'],
      ['http://a/b/..', undefined, 'http://a/'],
      ['http://a/b/.', undefined, 'http://a/b/'],
      ['http://a/b/%2e', undefined, 'http://a/b/'],
      ['http://a/b/%2E%2e/c', undefined, 'http://a/c'],
      ['http://a/b/.%2E/c', undefined, 'http://a/c'],
      ['http://a/b//../c', undefined, 'http://a/b/c'],
      ['http://a//b', undefined, 'http://a//b'] // empty segments are kept: they may matter to the server
    ]
  },
  {
    name: 'percent-encoding (RFC 3986 §6.2.2)',
    rows: [
      ['http://a/%7euser', undefined, 'http://a/~user'],
      ['http://a/%7Euser', undefined, 'http://a/~user'],
      ['http://a/%41%42%43', undefined, 'http://a/ABC'],
      ['http://a/%61%62%63', undefined, 'http://a/abc'],
      ['http://a/%30%39', undefined, 'http://a/09'],
      ['http://a/%2D%2E%5F%7E', undefined, 'http://a/-._~'],
      ['http://a/x%2ey', undefined, 'http://a/x.y'],
      ['http://a/a%2e%2e/b', undefined, 'http://a/a../b'], // not a dot-segment, so decoding is safe
      ['http://a/a%2fb', undefined, 'http://a/a%2Fb'],
      ['http://a/a%2Fb', undefined, 'http://a/a%2Fb'],
      ['http://a/%41%2f%42', undefined, 'http://a/A%2FB'],
      ['http://a/%3a%40%21%24%26', undefined, 'http://a/%3A%40%21%24%26'],
      ['http://a/%5b%5d', undefined, 'http://a/%5B%5D'],
      ['http://a/%c3%a9', undefined, 'http://a/%C3%A9'],
      ['http://a/é', undefined, 'http://a/%C3%A9'],
      ['http://a/%20', undefined, 'http://a/%20'],
      ['http://a/b c', undefined, 'http://a/b%20c'],
      ['http://a/%25', undefined, 'http://a/%25'],
      ['http://a/%2541', undefined, 'http://a/%2541'], // decoded once, never twice
      ['http://a/%zz', undefined, 'http://a/%zz'],
      ['http://a/%', undefined, 'http://a/%'],
      ['http://a/%4', undefined, 'http://a/%4'],
      ['http://a/%4g%41', undefined, 'http://a/%4gA'],
      ['http://a/%%41', undefined, 'http://a/%A'],
      ['http://a/?q=%7e', undefined, 'http://a/?q=~'],
      ['http://a/?q=%2f', undefined, 'http://a/?q=%2F'],
      ['http://a/?a%3db=c', undefined, 'http://a/?a%3Db=c'],
      ['http://a/?q=%26x', undefined, 'http://a/?q=%26x'],
      ['http://a/?q=%2b', undefined, 'http://a/?q=%2B'],
      ['http://a/?q=a+b', undefined, 'http://a/?q=a+b'],
      ['http://a/?q=a b', undefined, 'http://a/?q=a%20b'],
      ["http://a/?q='", undefined, 'http://a/?q=%27'],
      ['http://a/?q=é', undefined, 'http://a/?q=%C3%A9'],
      ['http://a/%7e?q=%7e#%7e', undefined, 'http://a/~?q=~']
    ]
  },
  {
    name: 'userinfo',
    rows: [
      ['http://user:pass@example.com/', undefined, 'http://example.com/'],
      ['http://user@example.com/a', undefined, 'http://example.com/a'],
      ['http://:pass@example.com/', undefined, 'http://example.com/'],
      ['http://@example.com/', undefined, 'http://example.com/'],
      ['http://u%40x:p@example.com:8080/a', undefined, 'http://example.com:8080/a'],
      ['https://user:pass@EXAMPLE.com:443/x?y#z', undefined, 'https://example.com/x?y']
    ]
  },
  {
    name: 'query and fragment',
    rows: [
      ['http://a/?', undefined, 'http://a/'],
      ['http://a/p?#frag', undefined, 'http://a/p'],
      ['http://a/p#', undefined, 'http://a/p'],
      ['http://a/p#x?y', undefined, 'http://a/p'],
      ['http://a/p?x=1#y', undefined, 'http://a/p?x=1'],
      ['http://a?x', undefined, 'http://a/?x'],
      ['http://a/p??', undefined, 'http://a/p??'],
      ['http://a/p?a=1&&b=2', undefined, 'http://a/p?a=1&&b=2'], // no rewrite asked: left as is
      ['http://a/p?utm_source=x', undefined, 'http://a/p?utm_source=x'] // stripParams not given: nothing stripped
    ]
  },
  {
    name: 'tracking parameters (DEFAULT_TRACKING_PARAMS)',
    opts: tracking,
    rows: [
      ['http://a/p?utm_source=x', undefined, 'http://a/p'],
      ['http://a/p?utm_source=x&utm_medium=y&id=3', undefined, 'http://a/p?id=3'],
      ['http://a/p?id=3&utm_campaign=z', undefined, 'http://a/p?id=3'],
      ['http://a/p?a=1&fbclid=abc&b=2', undefined, 'http://a/p?a=1&b=2'],
      ['http://a/p?b=2&a=1&gclid=x', undefined, 'http://a/p?b=2&a=1'], // order of the rest kept
      ['http://a/p?gclid', undefined, 'http://a/p'],
      ['http://a/p?utm_=1', undefined, 'http://a/p'],
      ['http://a/p?utmsource=1', undefined, 'http://a/p?utmsource=1'],
      ['http://a/p?UTM_SOURCE=1', undefined, 'http://a/p?UTM_SOURCE=1'], // names are case-sensitive
      ['http://a/p?%75tm_source=1&x=1', undefined, 'http://a/p?x=1'], // matched after percent-normalization
      ['http://a/p?x_fbclid=1', undefined, 'http://a/p?x_fbclid=1'],
      ['http://a/p?fbclid=1&fbclid=2', undefined, 'http://a/p'],
      ['http://a/p?_ga=1&_gac=2', undefined, 'http://a/p?_gac=2'],
      ['http://a/p?q=utm_source', undefined, 'http://a/p?q=utm_source'], // a value, not a name
      ['http://a/p?a=1&&utm_source=x&b=2', undefined, 'http://a/p?a=1&b=2'],
      ['http://a/p?a=1&&b=2', undefined, 'http://a/p?a=1&&b=2'], // nothing stripped: not rewritten
      ['http://a/p?dclid=1&msclkid=2&mc_cid=3&mc_eid=4&yclid=5&igshid=6&keep=1', undefined, 'http://a/p?keep=1'],
      ['http://a/p?a=1#utm_source=x', undefined, 'http://a/p?a=1'],
      ['?utm_source=x&page=2', 'https://example.com/list', 'https://example.com/list?page=2'],
      ['http://a/p?q=a%20b&utm_term=c%20d', undefined, 'http://a/p?q=a%20b'] // the rest is not re-encoded
    ]
  },
  {
    name: 'custom stripParams',
    opts: { stripParams: ['sessionid', 'ref*'] },
    rows: [
      ['http://a/p?ref=1&referrer=2&sessionid=3&x=1', undefined, 'http://a/p?x=1'],
      ['http://a/p?utm_source=x&sessionidx=1', undefined, 'http://a/p?utm_source=x&sessionidx=1']
    ]
  },
  {
    name: "stripParams ['*'] removes every parameter",
    opts: { stripParams: ['*'] },
    rows: [
      ['http://a/p?x=1&y=2', undefined, 'http://a/p']
    ]
  },
  {
    name: 'sortQuery',
    opts: { sortQuery: true },
    rows: [
      ['http://a/p?b=2&a=1&c=3', undefined, 'http://a/p?a=1&b=2&c=3'],
      ['http://a/p?b=1&a=2&b=0', undefined, 'http://a/p?a=2&b=1&b=0'], // stable: repeated names keep order
      ['http://a/p?b=1&&a=2', undefined, 'http://a/p?a=2&b=1'],
      ['http://a/p?B=1&a=2', undefined, 'http://a/p?B=1&a=2'] // code-unit order: upper case first
    ]
  },
  {
    name: 'sortQuery with tracking parameters',
    opts: { sortQuery: true, stripParams: DEFAULT_TRACKING_PARAMS },
    rows: [
      ['http://a/p?z=1&utm_source=2&a=1', undefined, 'http://a/p?a=1&z=1'],
      ['http://a/p?utm_source=2', undefined, 'http://a/p']
    ]
  },
  {
    name: 'whitespace around and inside the href',
    rows: [
      ['  http://a/b  ', undefined, 'http://a/b'],
      ['\n\thttp://a/b\r\n', undefined, 'http://a/b'],
      ['\f http://a/b', undefined, 'http://a/b'],
      ['http://a/b\nc', undefined, 'http://a/bc'],
      ['http://ex\tample.com/x', undefined, 'http://example.com/x'],
      ['ht\ntp://a/\r\nb', undefined, 'http://a/b'],
      ['  /x  ', 'http://example.com/a/', 'http://example.com/x'],
      ['   ', 'http://example.com/a/?q#f', 'http://example.com/a/?q'],
      ['\u00a0http://a/', undefined, undefined], // NBSP is not ASCII whitespace
      ['', undefined, undefined]
    ]
  },
  {
    name: 'schemes other than http(s)',
    rows: [
      ['mailto:someone@example.com', 'http://example.com/', undefined],
      ['javascript:void(0)', 'http://example.com/', undefined],
      ['JavaScript:alert(1)', 'http://example.com/', undefined],
      [' javascript:x', 'http://example.com/', undefined],
      ['java\nscript:x', 'http://example.com/', undefined],
      ['tel:+15555550100', 'http://example.com/', undefined],
      ['data:text/html,<p>hi</p>', 'http://example.com/', undefined],
      ['ftp://ftp.example.com/pub/', undefined, undefined],
      ['file:///etc/passwd', undefined, undefined],
      ['ws://example.com/socket', undefined, undefined],
      ['about:blank', undefined, undefined],
      ['blob:https://example.com/uuid', undefined, undefined],
      ['x', 'mailto:a@example.com', undefined],
      ['HTTPS://example.com/', undefined, 'https://example.com/'],
      ['http:example.com', undefined, 'http://example.com/'],
      ['http:\\\\example.com\\a\\b', undefined, 'http://example.com/a/b']
    ]
  }
]

describe('normalize', () => {
  describe('normalizeUrl', () => {
    for (const group of groups) {
      describe(group.name, () => {
        for (const [href, base, want] of group.rows) {
          it(`${JSON.stringify(href)}${base === undefined ? '' : ` against ${base}`} → ${String(want)}`, () => {
            assert.equal(normalizeUrl(href, base, group.opts), want)
          })
        }
      })
    }

    describe('is idempotent', () => {
      for (const group of groups) {
        it(`on every result of "${group.name}"`, () => {
          for (const [, , want] of group.rows) {
            if (want === undefined) continue
            assert.equal(normalizeUrl(want, undefined, group.opts), want, `normalizing ${want} again changed it`)
          }
        })
      }
    })

    it('accepts a URL object as base', () => {
      const base = new URL('https://example.com/a/b')
      assert.equal(normalizeUrl('c?d#e', base), 'https://example.com/a/c?d')
      assert.equal(base.href, 'https://example.com/a/b', 'the base is not modified')
    })

    it('keeps a very long path intact', () => {
      const long = 'http://example.com/' + 'x'.repeat(100_000)
      assert.equal(normalizeUrl(long), long)
    })

    it('fixes escapes all along a very long path', () => {
      const href = 'http://example.com/' + '%7e%2f'.repeat(10_000)
      assert.equal(normalizeUrl(href), 'http://example.com/' + '~%2F'.repeat(10_000))
    })

    it('resolves thousands of ../ segments', () => {
      assert.equal(normalizeUrl('../'.repeat(10_000) + 'g', 'http://example.com/a/b/c'), 'http://example.com/g')
    })

    it('strips tracking parameters from a very long query and keeps the rest in order', () => {
      const params = Array.from({ length: 5000 }, (_, i) => i % 2 === 0 ? `p${i}=${i}` : `utm_x${i}=${i}`)
      const kept = Array.from({ length: 2500 }, (_, i) => `p${2 * i}=${2 * i}`)
      assert.equal(normalizeUrl(`http://a/p?${params.join('&')}`, undefined, tracking), `http://a/p?${kept.join('&')}`)
    })

    it('does not mutate or depend on the identity of opts', () => {
      const list = ['a']
      const opts = { stripParams: list }
      assert.equal(normalizeUrl('http://h/?a=1&b=2', undefined, opts), 'http://h/?b=2')
      assert.equal(normalizeUrl('http://h/?a=1&b=2', undefined, { stripParams: ['b'] }), 'http://h/?a=1')
      assert.deepEqual(list, ['a'])
    })

    it('treats an empty stripParams list as no stripping', () => {
      assert.equal(normalizeUrl('http://h/?utm_source=1&&b=2', undefined, { stripParams: [] }), 'http://h/?utm_source=1&&b=2')
    })
  })

  describe('DEFAULT_TRACKING_PARAMS', () => {
    it('lists the usual trackers', () => {
      assert.deepEqual([...DEFAULT_TRACKING_PARAMS].sort(), ['_ga', 'dclid', 'fbclid', 'gclid', 'igshid', 'mc_cid', 'mc_eid', 'msclkid', 'utm_*', 'yclid'])
    })
  })

  describe('hostKey', () => {
    const rows: Array<[string, string]> = [
      ['http://a.example/', 'a.example:80'],
      ['https://a.example/x?y', 'a.example:443'],
      ['http://a.example:8080/', 'a.example:8080'],
      ['https://a.example:80/', 'a.example:80'],
      ['http://a.example:443/', 'a.example:443'],
      ['HTTP://A.Example./', 'a.example:80'],
      ['http://user:pw@a.example/', 'a.example:80'],
      ['https://[::1]/', '[::1]:443'],
      ['http://[::1]:3000/', '[::1]:3000'],
      ['http://127.0.0.1:8080/', '127.0.0.1:8080'],
      ['http://münchen.de/', 'xn--mnchen-3ya.de:80']
    ]
    for (const [url, want] of rows) {
      it(`${url} → ${want}`, () => {
        assert.equal(hostKey(url), want)
      })
    }

    it('throws InvalidURLError for what is not an absolute http(s) URL', () => {
      for (const bad of ['not a url', '/relative', 'mailto:a@b.c', 'ftp://a.example/']) {
        assert.throws(() => hostKey(bad), { name: 'InvalidURLError' }, bad)
      }
    })
  })

  describe('hostOf', () => {
    it('gives the hostname without port or trailing dot', () => {
      assert.equal(hostOf('https://WWW.Example.com.:8443/a'), 'www.example.com')
      assert.equal(hostOf('http://[::1]:3000/'), '[::1]')
    })

    it('throws InvalidURLError for what is not an absolute http(s) URL', () => {
      assert.throws(() => hostOf('data:,x'), { name: 'InvalidURLError' })
    })
  })
})

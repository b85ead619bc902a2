import assert from 'node:assert/strict'
import { DEFAULT_MAX_PATH_REPEATS, DEFAULT_MAX_PATH_SEGMENTS, DEFAULT_MAX_URL_LENGTH } from '../../node/constants.js'
import { registrableDomain, Scope, type ScopeInit, type ScopeVerdict } from '../../node/scope.js'

const OK: ScopeVerdict = { ok: true }
const no = (reason: string): unknown => ({ ok: false, reason })

/** Assert each URL's verdict, naming the URL that fails. */
function expectVerdicts (scope: Scope, verdicts: Record<string, string | true>): void {
  for (const [url, want] of Object.entries(verdicts)) {
    assert.deepEqual(scope.check(url), want === true ? OK : no(want), url)
  }
}

/** A path of `n` distinct segments. */
function segments (n: number): string {
  return Array.from({ length: n }, (_, i) => `s${i}`).join('/')
}

describe('scope', () => {
  describe("mode 'host' (the default)", () => {
    it('accepts the exact host:port of a seed, nothing else', () => {
      const scope = new Scope({}, ['https://example.com/start'])
      assert.equal(scope.mode, 'host')
      expectVerdicts(scope, {
        'https://example.com/': true,
        'https://example.com/a/b?c=d': true,
        'https://example.com:443/x': true,
        'https://EXAMPLE.com./x': true, // not normalized: still the same host
        'http://example.com/': 'out-of-scope', // port 80, not 443
        'https://example.com:8443/': 'out-of-scope',
        'https://www.example.com/': 'out-of-scope',
        'https://sub.example.com/': 'out-of-scope',
        'https://example.org/': 'out-of-scope'
      })
    })

    it('tells ports apart', () => {
      const scope = new Scope({ mode: 'host' }, ['http://localhost:3000/', 'http://127.0.0.1:4000/'])
      expectVerdicts(scope, {
        'http://localhost:3000/x': true,
        'http://localhost:3001/x': 'out-of-scope',
        'http://localhost/x': 'out-of-scope',
        'http://127.0.0.1:4000/': true,
        'http://127.0.0.1:3000/': 'out-of-scope'
      })
    })

    it('treats a seed default port like the explicit one', () => {
      const scope = new Scope({}, ['http://example.com:80/'])
      expectVerdicts(scope, { 'http://example.com/': true, 'http://example.com:80/a': true })
    })

    it('accepts nothing without seeds, and addSeed widens it', () => {
      const scope = new Scope({}, [])
      assert.deepEqual(scope.check('https://example.com/'), no('out-of-scope'))
      scope.addSeed('https://example.com/')
      assert.deepEqual(scope.check('https://example.com/'), OK)
      assert.deepEqual(scope.check('https://other.example/'), no('out-of-scope'))
    })

    it('normalizes seeds (IDN, userinfo, case)', () => {
      const scope = new Scope({}, ['HTTP://user:pw@MÜNCHEN.de./'])
      expectVerdicts(scope, { 'http://xn--mnchen-3ya.de/a': true })
    })
  })

  describe("mode 'domain'", () => {
    it('accepts the registrable domain of a seed and its subdomains, on any port and scheme', () => {
      const scope = new Scope({ mode: 'domain' }, ['https://www.example.com/'])
      expectVerdicts(scope, {
        'https://www.example.com/': true,
        'https://example.com/': true,
        'http://example.com:8080/': true,
        'https://a.b.example.com/x': true,
        'https://notexample.com/': 'out-of-scope',
        'https://example.com.evil.net/': 'out-of-scope',
        'https://example.org/': 'out-of-scope',
        'https://com/': 'out-of-scope'
      })
    })

    it('keeps three labels under a ccTLD second-level registry (example.co.uk)', () => {
      const scope = new Scope({ mode: 'domain' }, ['https://shop.example.co.uk/', 'https://www.example.com.au/'])
      expectVerdicts(scope, {
        'https://example.co.uk/': true,
        'https://blog.example.co.uk/': true,
        'https://other.co.uk/': 'out-of-scope',
        'https://co.uk/': 'out-of-scope',
        'https://example.com.au/': true,
        'https://other.com.au/': 'out-of-scope'
      })
    })

    it('matches an IP-address host only itself, on any port', () => {
      const scope = new Scope({ mode: 'domain' }, ['http://127.0.0.1:8080/', 'http://[::1]:3000/'])
      expectVerdicts(scope, {
        'http://127.0.0.1:9090/': true,
        'https://127.0.0.1/': true,
        'http://127.0.0.2/': 'out-of-scope',
        'http://0.0.1/': 'out-of-scope',
        'http://[::1]/': true,
        'http://[::2]/': 'out-of-scope'
      })
    })

    it('takes a single-label host as its own domain', () => {
      const scope = new Scope({ mode: 'domain' }, ['http://localhost:3000/'])
      expectVerdicts(scope, {
        'http://localhost:4000/': true,
        'http://a.localhost/': true,
        'http://localhost.example/': 'out-of-scope'
      })
    })

    it('widens with addSeed', () => {
      const scope = new Scope({ mode: 'domain' }, [])
      assert.deepEqual(scope.check('https://a.example.net/'), no('out-of-scope'))
      scope.addSeed('https://www.example.net/')
      assert.deepEqual(scope.check('https://a.example.net/'), OK)
    })
  })

  describe('registrableDomain', () => {
    const rows: Array<[string, string]> = [
      ['example.com', 'example.com'],
      ['www.example.com', 'example.com'],
      ['a.b.c.example.com', 'example.com'],
      ['example.com.', 'example.com'],
      ['WWW.Example.COM', 'example.com'],
      ['www.example.co.uk', 'example.co.uk'],
      ['example.co.uk', 'example.co.uk'],
      ['a.example.org.uk', 'example.org.uk'],
      ['a.example.ac.jp', 'example.ac.jp'],
      ['a.example.or.jp', 'example.or.jp'],
      ['a.example.gob.mx', 'example.gob.mx'],
      ['a.example.gov.br', 'example.gov.br'],
      ['a.example.de', 'example.de'],
      ['a.example.uk', 'example.uk'],
      ['a.co.example.com', 'example.com'], // a registry label counts only right before a two-letter TLD
      ['a.example.co', 'example.co'],
      ['co.uk', 'co.uk'],
      ['localhost', 'localhost'],
      ['192.168.1.20', '192.168.1.20'],
      ['[2001:db8::1]', '[2001:db8::1]']
    ]
    for (const [host, want] of rows) {
      it(`${host} → ${want}`, () => {
        assert.equal(registrableDomain(host), want)
      })
    }
  })

  describe("mode 'any'", () => {
    it('accepts every http(s) URL, and nothing else', () => {
      const scope = new Scope({ mode: 'any' }, [])
      expectVerdicts(scope, {
        'http://anything.example/': true,
        'https://[::1]:9/x': true,
        'ftp://ftp.example.com/': 'out-of-scope',
        'mailto:a@example.com': 'out-of-scope',
        'not a url': 'out-of-scope',
        '/relative': 'out-of-scope'
      })
    })
  })

  describe('include and exclude', () => {
    it('excludes a URL matching any exclude pattern', () => {
      const scope = new Scope({ mode: 'any', exclude: ['\\.pdf$', '/private/'] }, [])
      expectVerdicts(scope, {
        'https://example.com/doc.pdf': 'excluded',
        'https://example.com/private/x': 'excluded',
        'https://example.com/doc.html': true
      })
    })

    it('requires a match of at least one include pattern when any is given', () => {
      const scope = new Scope({ mode: 'any', include: ['/blog/', '/news/'] }, [])
      expectVerdicts(scope, {
        'https://example.com/blog/post': true,
        'https://example.com/news/today': true,
        'https://example.com/shop/': 'not-included'
      })
    })

    it('checks exclude before include', () => {
      const scope = new Scope({ mode: 'any', include: ['/blog/'], exclude: ['/blog/drafts/'] }, [])
      expectVerdicts(scope, {
        'https://example.com/blog/drafts/1': 'excluded',
        'https://example.com/blog/1': true
      })
    })

    it('tests patterns against the whole URL, query included', () => {
      const scope = new Scope({ mode: 'any', exclude: ['^http:', '[?&]sessionid='] }, [])
      expectVerdicts(scope, {
        'http://example.com/': 'excluded',
        'https://example.com/?a=1&sessionid=2': 'excluded',
        'https://example.com/?a=1': true
      })
    })

    it('gives the same verdict on repeated checks', () => {
      const scope = new Scope({ mode: 'any', include: ['a'] }, [])
      for (let i = 0; i < 3; i++) assert.deepEqual(scope.check('https://example.com/a'), OK)
    })

    for (const option of ['include', 'exclude'] as const) {
      it(`throws ConfigError naming ${option} and the pattern when a pattern is invalid`, () => {
        assert.throws(() => new Scope({ [option]: ['ok', '(unclosed'] }, []), (err: Error) => {
          assert.equal(err.name, 'ConfigError')
          assert.match(err.message, new RegExp(`^${option} pattern "\\(unclosed" is not a valid regular expression`))
          return true
        })
      })
    }
  })

  describe('trap guards', () => {
    const seed = 'https://example.com/'

    it(`rejects URLs longer than maxUrlLength (default ${DEFAULT_MAX_URL_LENGTH})`, () => {
      const scope = new Scope({}, [seed])
      const fits = seed + 'a'.repeat(DEFAULT_MAX_URL_LENGTH - seed.length)
      assert.equal(fits.length, DEFAULT_MAX_URL_LENGTH)
      assert.deepEqual(scope.check(fits), OK)
      assert.deepEqual(scope.check(fits + 'a'), no('url-too-long'))
    })

    it('applies a configured maxUrlLength', () => {
      const scope = new Scope({ maxUrlLength: 30 }, [seed])
      expectVerdicts(scope, {
        'https://example.com/1234567890': true, // 30 characters
        'https://example.com/12345678901': 'url-too-long' // 31
      })
    })

    it(`rejects paths of more than maxPathSegments segments (default ${DEFAULT_MAX_PATH_SEGMENTS})`, () => {
      const scope = new Scope({}, [seed])
      assert.deepEqual(scope.check(seed + segments(DEFAULT_MAX_PATH_SEGMENTS)), OK)
      assert.deepEqual(scope.check(seed + segments(DEFAULT_MAX_PATH_SEGMENTS) + '/'), OK) // trailing slash adds none
      assert.deepEqual(scope.check(seed + segments(DEFAULT_MAX_PATH_SEGMENTS + 1)), no('too-many-segments'))
    })

    it('applies a configured maxPathSegments', () => {
      const scope = new Scope({ maxPathSegments: 2 }, [seed])
      expectVerdicts(scope, {
        'https://example.com/': true,
        'https://example.com/a/b': true,
        'https://example.com/a/b/': true,
        'https://example.com/a/b/c': 'too-many-segments',
        'https://example.com/a//b': 'too-many-segments' // empty segments count
      })
    })

    it(`rejects a segment repeated more than maxPathRepeats times (default ${DEFAULT_MAX_PATH_REPEATS})`, () => {
      assert.equal(DEFAULT_MAX_PATH_REPEATS, 3, 'the rows below assume the default of 3')
      const scope = new Scope({}, [seed])
      expectVerdicts(scope, {
        'https://example.com/a/a/a': true,
        'https://example.com/a/a/a/': true,
        'https://example.com/a/a/a/a': 'path-repeats',
        'https://example.com/a/b/a/b/a/b': true,
        'https://example.com/a/b/a/b/a/b/a/b': 'path-repeats',
        'https://example.com/cal/2024/cal/2025/cal/2026/cal/2027': 'path-repeats',
        'https://example.com/x/////': 'path-repeats', // empty segments repeat too
        'https://example.com/a/A/a/A/a': true, // compared as spelled
        'https://example.com/p?x=/a/a/a/a/a': true // the query is not the path
      })
    })

    it('applies a configured maxPathRepeats', () => {
      const scope = new Scope({ maxPathRepeats: 1 }, [seed])
      expectVerdicts(scope, {
        'https://example.com/a/b/c': true,
        'https://example.com/a/b/a': 'path-repeats'
      })
    })
  })

  describe('order of checks', () => {
    const scope = new Scope({ exclude: ['x'], maxUrlLength: 60, maxPathSegments: 3 }, ['https://example.com/'])

    it('reports length before scope', () => {
      assert.deepEqual(scope.check('https://other.example/' + 'y'.repeat(60)), no('url-too-long'))
    })

    it('reports scope before exclude', () => {
      assert.deepEqual(scope.check('https://other.example/x'), no('out-of-scope'))
    })

    it('reports exclude before the path guards', () => {
      assert.deepEqual(scope.check('https://example.com/x/x/x/x/x'), no('excluded'))
    })

    it('reports too many segments before repeats', () => {
      assert.deepEqual(new Scope({}, ['https://example.com/']).check('https://example.com/' + 'a/'.repeat(40)), no('too-many-segments'))
    })
  })

  describe('options', () => {
    const invalid: Array<[string, ScopeInit, RegExp]> = [
      ['mode', { mode: 'site' as 'host' }, /^scope mode must be one of 'host', 'domain', 'any', got "site"$/],
      ['maxUrlLength 0', { maxUrlLength: 0 }, /^maxUrlLength must be a positive integer, got 0$/],
      ['maxUrlLength negative', { maxUrlLength: -5 }, /^maxUrlLength must be a positive integer, got -5$/],
      ['maxUrlLength fraction', { maxUrlLength: 1.5 }, /^maxUrlLength must be a positive integer, got 1.5$/],
      ['maxUrlLength NaN', { maxUrlLength: NaN }, /^maxUrlLength must be a positive integer, got NaN$/],
      ['maxUrlLength string', { maxUrlLength: '100' as unknown as number }, /^maxUrlLength must be a positive integer, got 100$/],
      ['maxPathRepeats 0', { maxPathRepeats: 0 }, /^maxPathRepeats must be a positive integer, got 0$/],
      ['maxPathSegments Infinity', { maxPathSegments: Infinity }, /^maxPathSegments must be a positive integer, got Infinity$/],
      ['include not an array', { include: '/blog/' as unknown as string[] }, /^include must be an array of regular-expression strings$/],
      ['exclude entry not a string', { exclude: [42 as unknown as string] }, /^exclude patterns must be strings, got number$/]
    ]
    for (const [label, init, message] of invalid) {
      it(`throws ConfigError for ${label}`, () => {
        assert.throws(() => new Scope(init, []), { name: 'ConfigError', message })
      })
    }

    it('throws ConfigError naming seeds for a seed that is not an http(s) URL', () => {
      for (const seed of ['mailto:a@example.com', 'not a url', '/relative']) {
        assert.throws(() => new Scope({}, ['https://ok.example/', seed]), {
          name: 'ConfigError',
          message: `seeds must be absolute http(s) URLs, got ${JSON.stringify(seed)}`
        })
      }
    })

    it('addSeed throws InvalidURLError for a URL that is not http(s)', () => {
      const scope = new Scope({}, [])
      assert.throws(() => { scope.addSeed('javascript:alert(1)') }, { name: 'InvalidURLError' })
    })

    it('accepts valid limits', () => {
      const scope = new Scope({ maxUrlLength: 1, maxPathRepeats: 1, maxPathSegments: 1 }, [])
      assert.deepEqual(scope.check('https://example.com/'), no('url-too-long'))
    })
  })
})

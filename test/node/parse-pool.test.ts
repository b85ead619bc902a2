import assert from 'node:assert/strict'
import { ParsePool } from '../../node/parse-pool.js'
import { parsePage } from '../../node/parser.js'

describe('parse pool', () => {
  it('parses in worker threads exactly as on the main thread', async () => {
    const pool = new ParsePool(2)
    await pool.start()
    try {
      const pages = Array.from({ length: 20 }, (_, i) => `<!doctype html><title>p${i}</title><base href="/dir/"><a href="x${i}.html">x</a><a href="#f">f</a><img srcset="a.png 1x, b.png 2x"><meta name="robots" content="${i % 5 === 0 ? 'noindex' : 'all'}">`)
      const opts = { extract: { title: 'title' } }
      const got = await Promise.all(pages.map(async (html) => await pool.parse(Buffer.from(html), 'text/html', 'http://a.test/p/q', opts)))
      assert.deepEqual(got, pages.map(html => parsePage(html, 'http://a.test/p/q', opts)))
      assert.equal(got[0].fields?.title, 'p0')
      // From the TypeScript sources the workers run a JavaScript bundle, not a second tsx loader.
      assert.match(pool.script ?? '', /\/dist\/parse-worker\.js$/)
    } finally {
      await pool.stop()
    }
  })

  it('with 0 workers parses inline', async () => {
    const pool = new ParsePool(0)
    await pool.start()
    const page = await pool.parse(Buffer.from('<a href="/z">z</a>'), 'text/html', 'http://a.test/', {})
    assert.deepEqual(page.links, ['http://a.test/z'])
    await pool.stop()
  })
})

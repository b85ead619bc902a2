import assert from 'node:assert/strict'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { ParsePool } from '../../node/parse-pool.js'
import { parsePage } from '../../node/parser.js'
import { RepeatFilter } from '../../node/recent.js'

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

  it('parses the pages of a worker that dies on the main thread, and says so', async () => {
    const pool = new ParsePool(1)
    await pool.start()
    const warnings: string[] = []
    const onWarning = (w: Error): void => { warnings.push(w.message) }
    process.on('warning', onWarning)
    try {
      const html = (i: number): Buffer => Buffer.from(`<a href="/a${i}">a</a>`)
      const before = Array.from({ length: 5 }, async (_, i) => await pool.parse(html(i), 'text/html', 'http://a.test/', {}))
      await (pool as any).workers[0].worker.terminate()
      const after = await pool.parse(html(9), 'text/html', 'http://a.test/', {})
      assert.deepEqual((await Promise.all(before)).map(p => p.links), [0, 1, 2, 3, 4].map(i => [`http://a.test/a${i}`]))
      assert.deepEqual(after.links, ['http://a.test/a9'])
      await new Promise(resolve => setImmediate(resolve)) // warnings are emitted on the next tick
      assert.equal(warnings.length, 1, warnings.join('; '))
      assert.match(warnings[0], /parse worker 0 exited .*parsing on the main thread/)
    } finally {
      process.off('warning', onWarning)
      await pool.stop()
    }
  })

  it('with reload, keeps no body while a worker has it, and parses a dead worker\'s pages from what reload gives', async () => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const pool = new ParsePool(1)
    await pool.start()
    try {
      const html = (i: number): Buffer => Buffer.from(`<a href="/a${i}">a</a>`)
      const reloads: number[] = []
      const reload = (i: number) => async (): Promise<Uint8Array> => { reloads.push(i); return html(i) }
      // Handed to the worker and forgotten here: with reload nothing else holds the body, without
      // it the pool does (to parse it again), until the worker answers.
      const send = (i: number, withReload: boolean): { parsed: Promise<unknown>, body: WeakRef<Buffer> } => {
        const body = html(i)
        return { parsed: pool.parse(body, 'text/html', 'http://a.test/', {}, undefined, withReload ? reload(i) : undefined), body: new WeakRef(body) }
      }
      // The worker is kept busy with a large page first, so that it has not answered the small ones
      // when this looks (a WeakRef's target lives to the end of the task that made it: it looks on
      // the next one).
      const bigPage = Buffer.from('<p>filler text</p>'.repeat(1 << 19))
      let busy = true
      const big = pool.parse(bigPage, 'text/html', 'http://a.test/', {}).finally(() => { busy = false })
      const sent = [send(0, true), send(1, false), send(2, true)]
      await new Promise(resolve => setImmediate(resolve))
      gc()
      assert.ok(busy, 'the worker answered too soon for this test to tell')
      assert.deepEqual(sent.map(s => s.body.deref() !== undefined), [false, true, false])
      await big
      await Promise.all(sent.map(async s => await s.parsed))
      assert.deepEqual(reloads, [], 'reload is only for a worker that dies')

      // The worker dies busy with a large page again, before it has answered the four behind it:
      // those with reload are read back, the others parsed from the bodies the pool kept.
      const big2 = pool.parse(bigPage, 'text/html', 'http://a.test/', {})
      const before = [0, 1, 2, 3].map(i => pool.parse(html(i), 'text/html', 'http://a.test/', {}, undefined, i % 2 === 0 ? reload(i) : undefined))
      await (pool as any).workers[0].worker.terminate()
      assert.deepEqual((await Promise.all(before)).map(p => p.links), [0, 1, 2, 3].map(i => [`http://a.test/a${i}`]))
      assert.deepEqual(reloads, [0, 2])
      await big2
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

  it('with 0 workers, the links and fields it hands on do not keep the page alive', async () => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const pool = new ParsePool(0, { size: 100 })
    await pool.start()
    const pageBytes = 1 << 18
    const kept: unknown[] = []
    const heapAfterGc = (): number => { gc(); gc(); return process.memoryUsage().heapUsed }
    try {
      // The first extraction loads and compiles cheerio: not what is measured.
      await pool.parse(Buffer.from('<title>t</title>'), 'text/html', 'http://a.test/', { extract: { title: 'title' } })
      const before = heapAfterGc()
      for (let i = 0; i < 40; i++) {
        // Each page is different (a string of its own), holds a plain absolute link, a root path,
        // a relative path (each resolved without the URL parser) and an extracted field.
        const head = `<title>page number ${i} of the test</title><a href="http://a.test/absolute/link-${i}.html">a</a><a href="/root/path-${i}.html">b</a><a href="rel/path-${i}.html">c</a>`
        const html = head + `<p>${String(i).padStart(8, '0')}</p>`.repeat(pageBytes / 16)
        const page = await pool.parse(Buffer.from(html), 'text/html', 'http://a.test/dir/', { extract: { title: 'title' } }, i)
        assert.equal(page.links.length, 3)
        kept.push(page.links, page.fields)
      }
      const grown = heapAfterGc() - before
      // 40 pages of 256 KiB each: held by their links, that is > 10 MiB.
      assert.ok(grown < 8 * pageBytes, `the heap grew ${(grown / 2 ** 20).toFixed(1)} MiB holding 40 pages' links`)
    } finally {
      await pool.stop()
    }
  })

  for (const workers of [0, 1]) {
    it(`drops the links its thread handed on recently, only when asked, until told to forget (${workers} workers)`, async () => {
      const pool = new ParsePool(workers, { size: 100, recrawlAfter: 1000 })
      await pool.start()
      try {
        const html = (...hrefs: string[]): Buffer => Buffer.from(hrefs.map(h => `<a href="${h}">x</a>`).join(''))
        // Without `now` nothing is filtered or remembered (links past maxDepth, never routed).
        const unrouted = await pool.parse(html('/a', '/b'), 'text/html', 'http://a.test/', {})
        assert.deepEqual(unrouted.links, ['http://a.test/a', 'http://a.test/b'])
        assert.equal(unrouted.repeats, undefined)
        const first = await pool.parse(html('/a', '/b'), 'text/html', 'http://a.test/', {}, 10)
        assert.deepEqual(first.links, ['http://a.test/a', 'http://a.test/b'])
        assert.deepEqual([first.linkCount, first.repeats], [2, 0])
        const second = await pool.parse(html('/b', '/c', '/a'), 'text/html', 'http://a.test/x', {}, 20)
        assert.deepEqual(second.links, ['http://a.test/c'])
        assert.deepEqual([second.linkCount, second.repeats], [3, 2])
        // recrawlAfter later, they go through again.
        const later = await pool.parse(html('/a', '/c'), 'text/html', 'http://a.test/y', {}, 1010)
        assert.deepEqual(later.links, ['http://a.test/a'])
        // A widened scope: the threads forget what they handed on (messages to a worker keep their order).
        pool.forgetRepeats()
        const after = await pool.parse(html('/a', '/c'), 'text/html', 'http://a.test/z', {}, 1020)
        assert.deepEqual(after.links, ['http://a.test/a', 'http://a.test/c'])
      } finally {
        await pool.stop()
      }
    })
  }
})

describe('RepeatFilter', () => {
  it('size 0 keeps every link and remembers nothing', () => {
    const f = new RepeatFilter(0)
    for (let i = 0; i < 2; i++) {
      const page = { links: ['http://a.test/1', 'http://a.test/2'] }
      f.apply(page, i)
      assert.deepEqual(page, { links: ['http://a.test/1', 'http://a.test/2'], linkCount: 2, repeats: 0 })
    }
  })

  it('forgets the oldest links once full, so they are handed on again', () => {
    const f = new RepeatFilter(4)
    const apply = (...links: string[]): string[] => { const p = { links }; f.apply(p, 0); return p.links }
    assert.deepEqual(apply('1', '2'), ['1', '2'])
    assert.deepEqual(apply('3', '4', '5', '6'), ['3', '4', '5', '6'])
    // Two generations of 2: 1 and 2 were dropped with the first one.
    assert.deepEqual(apply('1', '6'), ['1'])
  })

  it('keeps a link used again through the next rotation', () => {
    const f = new RepeatFilter(4)
    const apply = (...links: string[]): string[] => { const p = { links }; f.apply(p, 0); return p.links }
    apply('1', '2') // young: 1 2 → rotates: old 1 2
    assert.deepEqual(apply('1'), []) // a hit in old: copied to young
    apply('3') // young: 1 3 → rotates: old 1 3, 2 dropped
    assert.deepEqual(apply('1', '2'), ['2'])
  })

  it('tells apart every one of as many distinct URLs as it holds, and drops each when it comes again', () => {
    const size = 32_768
    const f = new RepeatFilter(size)
    const urls = Array.from({ length: size / 2 - 1 }, (_, i) => `http://h${i % 97}.test/p/${i}?q=${(i * 7919) % 1000}`)
    const first = { links: urls }
    f.apply(first, 0)
    assert.equal(first.links.length, urls.length, 'a fresh URL was taken for a repeat')
    const again: { links: string[], repeats?: number } = { links: [...urls] }
    f.apply(again, 0)
    assert.deepEqual(again.links, [])
    assert.equal(again.repeats, urls.length)
    assert.equal(f.has('http://h0.test/p/0?q=0', 0), true)
    assert.equal(f.has('http://h0.test/p/0?q=1', 0), false)
  })

  it('answers by recrawlAfter, and forgets everything on clear', () => {
    const f = new RepeatFilter(8, 100)
    f.remember('http://a.test/', 1000)
    assert.equal(f.has('http://a.test/', 1099), true)
    assert.equal(f.has('http://a.test/', 1100), false)
    f.clear()
    assert.equal(f.has('http://a.test/', 1000), false)
  })
})

import assert from 'node:assert/strict'
import { isPrivateAddress, parseRetryAfter } from '../../node/fetcher.js'

describe('fetcher helpers', () => {
  it('knows private, loopback, link-local and other non-public addresses', () => {
    for (const ip of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '224.0.0.1']) {
      assert.equal(isPrivateAddress(ip), true, ip)
    }
    for (const ip of ['8.8.8.8', '172.32.0.1', '93.184.216.34', '2606:4700::1111', '::ffff:8.8.8.8']) {
      assert.equal(isPrivateAddress(ip), false, ip)
    }
  })

  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z')
    assert.equal(parseRetryAfter('120', now), 120_000)
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000)
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now), 0)
    assert.equal(parseRetryAfter('soon', now), undefined)
    assert.equal(parseRetryAfter(undefined, now), undefined)
  })
})

describe('Fetcher: the caller\'s abort signal', () => {
  it('takes dozens of requests in flight on one signal without a listener-leak warning, and aborts them all', async () => {
    const { Fetcher } = await import('../../node/fetcher.js')
    let inFlight = 0
    const http = {
      // Answers only when the request's own signal aborts: every request stays in flight until then.
      request: async (req: { signal: AbortSignal }) => await new Promise<never>((_resolve, reject) => {
        req.signal.addEventListener('abort', () => { reject(req.signal.reason) }, { once: true })
        inFlight++
      }),
      close: async () => {}
    }
    const fetcher = new Fetcher({ http: http as any }, { userAgent: 'test', allowPrivate: true, maxRetries: 0 })
    const warnings: Error[] = []
    const onWarning = (w: Error): void => { warnings.push(w) }
    process.on('warning', onWarning)
    try {
      const ac = new AbortController()
      const all = Array.from({ length: 40 }, async (_, i) => await fetcher.fetch({ url: `http://a.test/${i}`, signal: ac.signal }))
      while (inFlight < 40) await new Promise(resolve => setImmediate(resolve))
      ac.abort(new Error('stop'))
      const results = await Promise.all(all)
      assert.ok(results.every(r => r.outcome !== 'ok'), 'every request ended with the abort')
      await new Promise(resolve => setImmediate(resolve))
      assert.deepEqual(warnings.map(w => w.name), [])
    } finally {
      process.off('warning', onWarning)
    }
  })
})

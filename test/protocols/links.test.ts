import '../../node/polyfills.js'
import assert from 'node:assert/strict'
import { format } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import debug from 'debug'
import { Packr } from 'msgpackr'
import {
  BatchBuilder, decodeMessage, encodeFrame, linksOf, LinksTransport, PROTOCOL, validateMessage
} from '../../protocols/links/index.js'
import { commonPrefixLength } from '../../protocols/links/messages.js'
import type { LinksTransportInit } from '../../protocols/links/index.js'
import type { Link } from '../../node/types.js'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { createNode, introduce, waitUntil as waitFor, deferred, track } from '../utils/protocol-nodes.js'

// ---- helpers ----


/** Let `from` dial `to` by peer id. */



/** Settle state of a promise, for asserting that it is still pending. */

function link (i: number, extra: Partial<Link> = {}): Link {
  return { url: `https://site${i % 7}.example.org/section/page-${i}.html`, depth: 1 + (i % 3), referrer: `https://site${i % 7}.example.org/`, ...extra }
}

/** Captures what `shoal:links` logs while a test runs. */
function captureLog (): { lines: string[], restore: () => void } {
  const lines: string[] = []
  const saved = debug.disable()
  const savedLog = debug.log
  debug.enable(saved === '' ? 'shoal:links' : `${saved},shoal:links`)
  debug.log = (...args: any[]) => { lines.push(format(...args)) }
  return {
    lines,
    restore: () => {
      debug.log = savedLog
      debug.disable()
      if (saved !== '') debug.enable(saved)
    }
  }
}

describe('protocols/links', function () {
  describe('messages and codec', () => {
    const limits = { maxBatchLinks: 1000, maxUrlLength: 2048 }

    it('round-trips links through groups with a shared referrer and prefix', () => {
      const b = new BatchBuilder(2)
      const links: Link[] = []
      for (let i = 0; i < 20; i++) links.push({ url: `https://news.example.com/world/2024/story-${i}`, depth: 3, referrer: 'https://news.example.com/world/' })
      links.push({ url: 'https://other.example.net/', depth: 0 })
      links.push({ url: 'https://news.example.com/r', depth: 3, redirects: 2 })
      for (const l of links) assert.equal(b.tryAdd(l, 1 << 20), true)
      const msg = b.toMessage(41)
      assert.equal(msg.g.length, 3)
      assert.equal(msg.g[0].r, 'https://news.example.com/world/')
      assert.equal(msg.g[0].p, 'https://news.example.com/world/2024/story-')
      const frame = encodeFrame(msg)
      const decoded = decodeMessage(frame.subarray(frame[0] < 0x80 ? 1 : 2), limits)
      assert.equal(decoded.t, 'links')
      assert.deepEqual(linksOf(decoded as any), links)
    })

    it('sends an empty referrer as none', () => {
      const b = new BatchBuilder(0)
      b.tryAdd({ url: 'https://a.example/1', depth: 0, referrer: '' }, 1 << 20)
      const msg = b.toMessage(1)
      assert.equal('r' in msg.g[0], false)
      assert.deepEqual(linksOf(msg), [{ url: 'https://a.example/1', depth: 0 }])
    })

    it('never splits a surrogate pair in a shared prefix', () => {
      assert.equal(commonPrefixLength(['ab\u{1F600}x', 'ab\u{1F601}y']), 2)
      assert.equal(commonPrefixLength(['abc', 'abd']), 2)
      assert.equal(commonPrefixLength(['only']), 0)
    })

    it('cuts a batch before its encoded size would pass the byte cap', () => {
      const b = new BatchBuilder(0)
      let n = 0
      while (b.tryAdd({ url: `https://a.example/${'x'.repeat(1000)}/${n}`, depth: 0 }, 64 * 1024)) n++
      assert.ok(n > 50 && n < 64, `took ${n} links`)
      assert.ok(encodeFrame(b.toMessage(1)).byteLength <= 64 * 1024)
    })

    it('applies the caps instead of truncating', () => {
      const url = (i: number): string => `https://a.example/${i}`
      const ok = { t: 'links', id: 1, hops: 0, g: [{ d: 0, u: Array.from({ length: 10 }, (_, i) => url(i)) }] }
      assert.equal((validateMessage(ok, { maxBatchLinks: 10, maxUrlLength: 100 }) as any).g[0].u.length, 10)
      assert.throws(() => validateMessage(ok, { maxBatchLinks: 9, maxUrlLength: 100 }), { name: 'InvalidMessageError', message: /more than maxBatchLinks \(9\)/ })
      const split = { t: 'links', id: 1, hops: 0, g: [{ d: 0, u: [url(1), url(2)] }, { d: 0, u: [url(3), url(4)] }] }
      assert.throws(() => validateMessage(split, { maxBatchLinks: 3, maxUrlLength: 100 }), { name: 'InvalidMessageError' })
      const long = { t: 'links', id: 1, hops: 0, g: [{ d: 0, p: 'https://a.example/', u: ['y'.repeat(83)] }] }
      assert.throws(() => validateMessage(long, { maxBatchLinks: 10, maxUrlLength: 100 }), { name: 'InvalidMessageError', message: /longer than 100/ })
      assert.throws(() => validateMessage({ ...ok, id: -1 }, limits), { name: 'InvalidMessageError', message: /^id/ })
      assert.throws(() => validateMessage({ ...ok, hops: 256 }, limits), { name: 'InvalidMessageError', message: /^hops/ })
      assert.throws(() => validateMessage({ t: 'links', id: 1, hops: 0, g: [{ d: 1.5, u: ['x'] }] }, limits), { name: 'InvalidMessageError', message: /g\[0\]\.d/ })
      assert.throws(() => validateMessage({ t: 'links', id: 1, hops: 0, g: [{ d: 1, u: [7] }] }, limits), { name: 'InvalidMessageError', message: /g\[0\]\.u\[0\]/ })
      assert.throws(() => validateMessage({ t: 'links', id: 1, hops: 0, g: [] }, limits), { name: 'InvalidMessageError' })
      assert.throws(() => validateMessage({ t: 'ack', id: 1, admitted: 1001 }, limits), { name: 'InvalidMessageError', message: /admitted/ })
      assert.throws(() => validateMessage({ t: 'nack', id: 1, error: 'e'.repeat(1025), retry: true }, limits), { name: 'InvalidMessageError', message: /error/ })
      assert.throws(() => validateMessage({ t: 'toString' }, limits), { name: 'InvalidMessageError', message: /unknown message type/ })
      assert.throws(() => validateMessage([1, 2], limits), { name: 'InvalidMessageError' })
    })

    it('rejects a small frame that declares a huge array', () => {
      // array32 header claiming 2^32-1 elements, then nothing
      assert.throws(() => decodeMessage(Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff]), limits), { name: 'InvalidMessageError' })
      // structured-clone references are refused: one array can't stand for many
      assert.throws(() => decodeMessage(Uint8Array.from([0xd6, 0x69, 0, 0, 0, 1, 0x90]), limits), { name: 'InvalidMessageError', message: /^not a msgpack value: Structured clone/ })
    })
  })

  describe('LinksTransport', function () {
    this.timeout(30_000)
    const nodes: Libp2p[] = []
    const transports: LinksTransport[] = []

    async function node (privateKey?: PrivateKey): Promise<Libp2p> {
      const n = await createNode(privateKey)
      nodes.push(n)
      return n
    }

    async function transport (libp2p: Libp2p, init: LinksTransportInit): Promise<LinksTransport> {
      const t = new LinksTransport({ libp2p }, init)
      await t.start()
      transports.push(t)
      return t
    }

    /** A sender and a receiver node, the sender knowing the receiver's address. */
    async function pair (receiverInit: LinksTransportInit, senderInit: Partial<LinksTransportInit> = {}): Promise<{ a: Libp2p, b: Libp2p, ta: LinksTransport, tb: LinksTransport }> {
      const [a, b] = await Promise.all([node(), node()])
      await introduce(a, b)
      const tb = await transport(b, receiverInit)
      const ta = await transport(a, { onLinks: async () => 0, ...senderInit })
      return { a, b, ta, tb }
    }

    afterEach(async () => {
      await Promise.all(transports.splice(0).map(async t => { await t.stop() }))
      await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
    })

    it('validates its options, naming the one at fault', async () => {
      const libp2p = await node()
      const onLinks = async (): Promise<number> => 0
      assert.throws(() => new LinksTransport({ libp2p }, { onLinks, window: 0 }), { name: 'ConfigError', message: /^window must be an integer from 1/ })
      assert.throws(() => new LinksTransport({ libp2p }, { onLinks, maxBatchLinks: 1.5 }), { name: 'ConfigError', message: /^maxBatchLinks/ })
      assert.throws(() => new LinksTransport({ libp2p }, { onLinks, flushDelay: -1 }), { name: 'ConfigError', message: /^flushDelay/ })
      assert.throws(() => new LinksTransport({ libp2p }, { onLinks, ackTimeout: Infinity }), { name: 'ConfigError', message: /^ackTimeout/ })
      assert.throws(() => new LinksTransport({ libp2p }, { onLinks, maxHops: 300 }), { name: 'ConfigError', message: /^maxHops/ })
      assert.throws(() => new LinksTransport({ libp2p }, { onLinks, maxMessageBytes: 4096, maxUrlLength: 2048 }), { name: 'ConfigError', message: /^maxMessageBytes must be at least/ })
      assert.throws(() => new LinksTransport({ libp2p }, {} as any), { name: 'ConfigError', message: /^onLinks/ })
    })

    it('acks a batch only once onLinks has resolved', async () => {
      const gate = deferred()
      const received: Array<{ from: string, links: Link[], hops: number }> = []
      const { a, ta, b, tb } = await pair({
        onLinks: async (from, links, hops) => {
          received.push({ from, links, hops })
          await gate.promise
          return links.length - 1
        }
      })
      const links = [link(1), link(2, { redirects: 1 }), { url: 'https://x.example/', depth: 0 }]
      const sent = track(ta.send(b.peerId.toString(), links))
      await waitFor(() => received.length === 1, 'onLinks')
      assert.equal(received[0].from, a.peerId.toString())
      assert.equal(received[0].hops, 0)
      assert.deepEqual(received[0].links, links)
      assert.equal(tb.stats.acksSent, 0)
      assert.equal(sent.settled, false)
      assert.equal(ta.inFlight(b.peerId.toString()), 1)
      gate.resolve()
      await sent.promise
      assert.equal(tb.stats.acksSent, 1)
      assert.equal(ta.stats.batchesAcked, 1)
      assert.equal(ta.stats.linksAdmitted, 2)
      assert.equal(ta.inFlight(b.peerId.toString()), 0)
    })

    it('delivers 10,000 links exactly once, in batches of at most maxBatchLinks', async () => {
      const seen = new Map<string, Link>()
      const batchSizes: number[] = []
      let duplicates = 0
      const { b, ta, tb } = await pair({
        onLinks: async (_from, links) => {
          batchSizes.push(links.length)
          for (const l of links) {
            if (seen.has(l.url)) duplicates++
            seen.set(l.url, l)
          }
          return links.length
        }
      })
      const all = Array.from({ length: 10_000 }, (_, i) => link(i, i % 11 === 0 ? { redirects: 1 } : {}))
      const peer = b.peerId.toString()
      const sends: Array<Promise<void>> = []
      for (let i = 0; i < all.length; i += 150) sends.push(ta.send(peer, all.slice(i, i + 150)))
      await Promise.all(sends)
      assert.equal(duplicates, 0)
      assert.equal(seen.size, 10_000)
      for (const l of all) assert.deepEqual(seen.get(l.url), l)
      assert.equal(batchSizes.reduce((s, n) => s + n, 0), 10_000)
      assert.ok(Math.max(...batchSizes) <= 1000, `largest batch ${Math.max(...batchSizes)}`)
      assert.ok(batchSizes.length >= 10)
      assert.equal(ta.stats.linksSent, 10_000)
      assert.equal(ta.stats.linksAdmitted, 10_000)
      assert.equal(ta.stats.streamsOpened, 1)
      assert.equal(tb.stats.streamsInbound, 1)
      assert.equal(ta.stats.batchesAcked, batchSizes.length)
      // wire cost: these URLs are ~42 characters; the frames must cost less than the URLs themselves
      const urlBytes = all.reduce((s, l) => s + l.url.length, 0)
      assert.ok(ta.stats.bytesSent < urlBytes, `${ta.stats.bytesSent} bytes sent for ${urlBytes} bytes of URLs`)
    })

    it('holds sends beyond the window until the receiver catches up', async () => {
      const gate = deferred()
      let running = 0
      let maxRunning = 0
      let calls = 0
      const { b, ta } = await pair({
        window: 4,
        onLinks: async (_from, links) => {
          calls++
          running++
          maxRunning = Math.max(maxRunning, running)
          await gate.promise
          running--
          return links.length
        }
      }, { window: 4, maxBatchLinks: 10 })
      const peer = b.peerId.toString()
      const sends = Array.from({ length: 10 }, (_, k) => track(ta.send(peer, Array.from({ length: 10 }, (_, i) => link(k * 10 + i)))))
      await waitFor(() => calls === 4, 'four batches at the receiver')
      assert.equal(ta.inFlight(peer), 4)
      assert.equal(ta.queued(peer), 6)
      assert.equal(sends.filter(s => s.settled).length, 0)
      gate.resolve()
      await Promise.all(sends.map(async s => { await s.promise }))
      assert.equal(calls, 10)
      assert.equal(maxRunning, 4)
      assert.equal(ta.inFlight(peer), 0)
      assert.equal(ta.queued(peer), 0)
    })

    it('rejects a send with a retryable LinksSendError when the owner nacks', async () => {
      const { b, ta, tb } = await pair({ onLinks: async () => { throw new Error('frontier is closing') } })
      const peer = b.peerId.toString()
      await assert.rejects(ta.send(peer, [link(1)]), (err: any) => {
        assert.equal(err.name, 'LinksSendError')
        assert.equal(err.retryable, true)
        assert.equal(err.peer, peer)
        assert.match(err.message, /frontier is closing/)
        return true
      })
      assert.equal(tb.stats.nacksSent, 1)
      assert.equal(ta.stats.batchesNacked, 1)
      // the stream survives a nack
      assert.equal(ta.stats.streamsOpened, 1)
    })

    it('passes hops along and nacks, without retry, a batch past maxHops', async () => {
      const hops: number[] = []
      const { b, ta } = await pair({ maxHops: 2, onLinks: async (_f, links, h) => { hops.push(h); return links.length } }, { maxHops: 8 })
      const peer = b.peerId.toString()
      await ta.send(peer, [link(1)], { hops: 2 })
      assert.deepEqual(hops, [2])
      await assert.rejects(ta.send(peer, [link(2)], { hops: 3 }), { name: 'LinksSendError', retryable: false })
      assert.deepEqual(hops, [2])
      await assert.rejects(ta.send(peer, [link(2)], { hops: 9 }), { name: 'InvalidLinksError' })
    })

    it('refuses links the protocol cannot carry', async () => {
      const { b, ta } = await pair({ onLinks: async (_f, links) => links.length })
      const peer = b.peerId.toString()
      await assert.rejects(ta.send(peer, [{ url: 'https://a.example/' + 'x'.repeat(2048), depth: 0 }]), { name: 'InvalidLinksError', message: /links\[0\]\.url/ })
      await assert.rejects(ta.send(peer, [link(1), { url: 'https://a.example/', depth: -1 }]), { name: 'InvalidLinksError', message: /links\[1\]\.depth/ })
      await assert.rejects(ta.send('not-a-peer-id', [link(1)]), { name: 'LinksSendError', retryable: false })
      assert.equal(ta.stats.messagesSent, 0)
    })

    it('rejects promptly when the ack does not come, then opens a new stream', async () => {
      let stall = true
      const { b, ta } = await pair({
        onLinks: async (_f, links) => {
          if (stall) await new Promise(() => {})
          return links.length
        }
      }, { ackTimeout: 300 })
      const peer = b.peerId.toString()
      const started = Date.now()
      await assert.rejects(ta.send(peer, [link(1)]), { name: 'LinksSendError', retryable: true, message: /no ack .* within 300 ms/ })
      assert.ok(Date.now() - started < 2000)
      stall = false
      await ta.send(peer, [link(2)])
      assert.equal(ta.stats.streamsOpened, 2)
    })

    it('abandon: a peer that left the ring fails its unacked batches at once (retryable), long before the ack timeout', async () => {
      let stall = true
      const { b, ta } = await pair({
        onLinks: async (_f, links) => {
          if (stall) await new Promise(() => {})
          return links.length
        }
      })
      const peer = b.peerId.toString()
      const sent = ta.send(peer, [link(1), link(2)])
      await waitFor(() => ta.inFlight(peer) === 1, 'the batch in flight')
      ta.abandon(peer, 'it left the ring')
      await assert.rejects(sent, { name: 'LinksSendError', retryable: true, message: /it left the ring/ })
      assert.equal(ta.inFlight(peer), 0)
      ta.abandon(peer, 'again: nothing to do')
      stall = false
      await ta.send(peer, [link(3)])
    })

    it('rejects pending sends promptly when the remote stops, and sends to it again once it is back', async () => {
      const key = await generateKeyPair('Ed25519')
      const b = await node(key)
      const a = await node()
      await introduce(a, b)
      let calls = 0
      const tb = await transport(b, { onLinks: async () => { calls++; return await new Promise<number>(() => {}) } })
      const ta = await transport(a, { onLinks: async () => 0, maxBatchLinks: 10 })
      const peer = b.peerId.toString()
      const sends = Array.from({ length: 3 }, (_, k) => track(ta.send(peer, Array.from({ length: 10 }, (_, i) => link(k * 10 + i)))))
      await waitFor(() => calls === 3, 'three batches at the receiver')
      // The remote's libp2p goes away under its transport, as when its process dies.
      const stopping = Date.now()
      await b.stop()
      const stopped = Date.now()
      assert.ok(tb.stats.acksSent === 0)
      await waitFor(() => sends.every(s => s.settled), 'the sends to settle', 5000)
      assert.ok(Date.now() - stopped < 2000, `settled ${Date.now() - stopped} ms after the stop (which took ${stopped - stopping} ms)`)
      for (const s of sends) {
        assert.equal(s.error?.name, 'LinksSendError')
        assert.equal(s.error?.retryable, true)
        assert.equal(s.error?.peer, peer)
      }
      assert.equal(ta.inFlight(peer), 0)

      // The same peer (same key) comes back on a new port.
      const b2 = await node(key)
      assert.equal(b2.peerId.toString(), peer)
      const got: Link[] = []
      await transport(b2, { onLinks: async (_f, links) => { got.push(...links); return links.length } })
      await a.peerStore.patch(b2.peerId, { multiaddrs: b2.getMultiaddrs() })
      await ta.send(peer, [link(99)])
      assert.deepEqual(got, [link(99)])
      assert.equal(ta.stats.streamsOpened, 2)
    })

    it('runs at most its own window of onLinks per stream, even for a sender with a larger window', async () => {
      const gate = deferred()
      let running = 0
      let maxRunning = 0
      let calls = 0
      const { b, ta } = await pair({
        window: 2,
        onLinks: async (_from, links) => {
          calls++
          running++
          maxRunning = Math.max(maxRunning, running)
          await gate.promise
          running--
          return links.length
        }
      }, { window: 8, maxBatchLinks: 10 })
      const peer = b.peerId.toString()
      const sends = Array.from({ length: 8 }, (_, k) => ta.send(peer, Array.from({ length: 10 }, (_, i) => link(k * 10 + i))))
      await waitFor(() => calls === 2 && ta.inFlight(peer) === 8, 'two batches at the receiver, eight in flight')
      gate.resolve()
      await Promise.all(sends)
      assert.equal(calls, 8)
      assert.equal(maxRunning, 2)
    })

    it('closes an idle outbound stream, and the next send opens a new one', async () => {
      const { b, ta, tb } = await pair({ onLinks: async (_f, links) => links.length }, { idleTimeout: 100 })
      const peer = b.peerId.toString()
      await ta.send(peer, [link(1)])
      await waitFor(() => ta.queued(peer) === 0 && (ta as any).channels.size === 0, 'the idle stream to close')
      await ta.send(peer, [link(2)])
      assert.equal(ta.stats.streamsOpened, 2)
      assert.equal(tb.stats.malformedMessages, 0)
      assert.equal(ta.stats.batchesFailed, 0)
    })

    it('closes an inbound stream that stays silent past readTimeout', async () => {
      const { a, b, tb } = await pair({ readTimeout: 200, onLinks: async (_f, links) => links.length })
      const log = captureLog()
      try {
        const raw = await a.dialProtocol(b.peerId, PROTOCOL)
        const started = Date.now()
        await assert.rejects(lpStream(raw).read({ signal: AbortSignal.timeout(5000) }), (err: any) => err.name !== 'AbortError' && err.name !== 'TimeoutError')
        assert.ok(Date.now() - started >= 150)
        assert.ok(log.lines.some(l => /no message from .* for 200 ms/.test(l)), log.lines.join('\n'))
      } finally {
        log.restore()
      }
      assert.equal(tb.stats.malformedMessages, 0)
    })

    it('rejects pending sends with a clear error when it stops', async () => {
      const { b, ta } = await pair({ onLinks: async () => await new Promise<number>(() => {}) })
      const peer = b.peerId.toString()
      const sent = track(ta.send(peer, [link(1)]))
      await waitFor(() => ta.inFlight(peer) === 1, 'a batch in flight')
      await ta.stop()
      await waitFor(() => sent.settled, 'the send to settle')
      assert.equal(sent.error?.name, 'LinksSendError')
      assert.equal(sent.error?.retryable, false)
      assert.match(sent.error?.message, /stopped/)
      await assert.rejects(ta.send(peer, [link(2)]), { name: 'LinksSendError', message: /not running/ })
    })

    describe('a malformed message closes its stream, and only that one', () => {
      const packr = new Packr({ useRecords: false, variableMapSize: true })
      const frame = (value: unknown): Uint8Array => {
        const body = packr.pack(value)
        return Uint8Array.from([...varint(body.byteLength), ...body])
      }
      const varint = (n: number): number[] => {
        const out: number[] = []
        while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
        out.push(n)
        return out
      }
      const url = (i: number): string => `https://a.example/${i}`
      const cases: Array<[string, Uint8Array]> = [
        ['bytes that are not msgpack', Uint8Array.from([3, 0xc1, 0xc1, 0xc1])],
        ['a reply where a request belongs', frame({ t: 'ack', id: 1, admitted: 1 })],
        ['an unknown type', frame({ t: 'hello', id: 1 })],
        ['a list over maxBatchLinks', frame({ t: 'links', id: 1, hops: 0, g: [{ d: 0, u: Array.from({ length: 51 }, (_, i) => url(i)) }] })],
        ['groups adding up over maxBatchLinks', frame({ t: 'links', id: 1, hops: 0, g: Array.from({ length: 6 }, (_, k) => ({ d: 0, u: Array.from({ length: 10 }, (_, i) => url(k * 10 + i)) })) })],
        ['a URL over maxUrlLength', frame({ t: 'links', id: 1, hops: 0, g: [{ d: 0, u: ['https://a.example/' + 'x'.repeat(2048)] }] })],
        ['a depth that is a string', frame({ t: 'links', id: 1, hops: 0, g: [{ d: '1', u: [url(1)] }] })],
        ['URLs that are numbers', frame({ t: 'links', id: 1, hops: 0, g: [{ d: 1, u: [1, 2, 3] }] })],
        ['a frame over maxDataLength', Uint8Array.from([...varint(64 * 1024 + 1), 0x80])]
      ]

      for (const [what, bytes] of cases) {
        it(what, async () => {
          const delivered: Link[] = []
          const { a, b, ta, tb } = await pair({
            maxBatchLinks: 50,
            maxMessageBytes: 64 * 1024,
            onLinks: async (_f, links) => { delivered.push(...links); return links.length }
          })
          const peer = b.peerId.toString()
          // a healthy stream first
          await ta.send(peer, [link(1)])
          const log = captureLog()
          try {
            const raw = await a.dialProtocol(b.peerId, PROTOCOL)
            const lp = lpStream(raw)
            raw.send(bytes)
            await assert.rejects(lp.read({ signal: AbortSignal.timeout(5000) }), (err: any) => {
              assert.notEqual(err.name, 'AbortError', 'the receiver did not close the stream')
              assert.notEqual(err.name, 'TimeoutError', 'the receiver did not close the stream')
              return true
            })
            await waitFor(() => tb.stats.malformedMessages === 1, 'the malformed message to be counted')
            assert.ok(log.lines.some(l => l.includes('closing links stream from')), `logged: ${log.lines.join('\n')}`)
          } finally {
            log.restore()
          }
          // nothing of the bad message was delivered, and the healthy stream still serves
          assert.deepEqual(delivered, [link(1)])
          await ta.send(peer, [link(2)])
          assert.deepEqual(delivered, [link(1), link(2)])
          assert.equal(ta.stats.streamsOpened, 1)
        })
      }
    })
  })
})

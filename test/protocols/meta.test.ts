import '../../node/polyfills.js'
import assert from 'node:assert/strict'
import { format } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import debug from 'debug'
import { Packr } from 'msgpackr'
import {
  DEFAULT_MAX_MESSAGE_BYTES, decodeMessage, encodeApplyFrame, encodeFrame, encodeOp, MetaTransport, PROTOCOL, validateMessage, validateOp
} from '../../protocols/meta/index.js'
import type { MessageLimits, MetaTransportInit, Op } from '../../protocols/meta/index.js'
import type { UrlRecord } from '../../node/types.js'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { createNode, introduce, waitUntil as waitFor, deferred, track } from '../utils/protocol-nodes.js'

// ---- helpers ----


/** Let `from` dial `to` by peer id. */



/** Settle state of a promise, for asserting that it is still pending. */

/** Captures what `shoal:meta` logs while a test runs. */
function captureLog (): { lines: string[], restore: () => void } {
  const lines: string[] = []
  const saved = debug.disable()
  const savedLog = debug.log
  debug.enable(saved === '' ? 'shoal:meta' : `${saved},shoal:meta`)
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

function rec (url: string, extra: Partial<UrlRecord> = {}): UrlRecord {
  return { url, status: 'fetched', httpStatus: 200, fetchedAt: 1_700_000_000_000, cid: 'bafkreigh2akiscaildc', contentType: 'text/html', size: 5120, depth: 2, links: 14, ...extra }
}

/** One op of each kind, with every optional field somewhere. */
function opsOfEveryKind (): Op[] {
  return [
    { k: 'entry', h: 'a.example:443', key: '0001:https://a.example/x', u: 'https://a.example/x', d: 3, r: 'https://a.example/', x: 1 },
    { k: 'entry', h: 'a.example:443', key: '0002:https://a.example/y', u: 'https://a.example/y', d: 0 },
    { k: 'done', h: 'a.example:443', key: '0001:https://a.example/x', rec: rec('https://a.example/x', { referrer: 'https://a.example/', etag: '"v1"', fields: { title: 'X', tags: ['a', 'b'] }, noindex: false, attempts: 2 }) },
    { k: 'seen', u: 'https://b.example/', at: 1_700_000_000_123.5 },
    { k: 'record', rec: rec('https://b.example/moved', { status: 'redirect', httpStatus: 301, redirectTo: 'https://b.example/new' }) },
    { k: 'drop', h: 'c.example:80' },
    { k: 'handed', h: 'c.example:80' }
  ]
}

/** The i-th op of a long, mixed stream of ops; its key, URL or host says `i`. */
function op (i: number): Op {
  const host = `site${i % 13}.example.org:443`
  const url = `https://site${i % 13}.example.org/page-${i}.html`
  switch (i % 5) {
    case 0: return { k: 'entry', h: host, key: `k${i}`, u: url, d: i % 7, r: `https://site${i % 13}.example.org/` }
    case 1: return { k: 'done', h: host, key: `k${i}`, rec: rec(url) }
    case 2: return { k: 'seen', u: url, at: 1_700_000_000_000 + i }
    case 3: return { k: 'record', rec: rec(url, { status: 'http-error', httpStatus: 404 }) }
    default: return { k: 'drop', h: `gone${i}.example:80` }
  }
}

/** The `i` an op of `op(i)` was made from. */
function indexOf (o: Op): number {
  switch (o.k) {
    case 'entry': case 'done': return Number(o.key.slice(1))
    case 'seen': return Number(/page-(\d+)/.exec(o.u)?.[1])
    case 'record': return Number(/page-(\d+)/.exec(o.rec.url)?.[1])
    case 'drop': case 'handed': return Number(/gone(\d+)/.exec(o.h)?.[1])
  }
}

/** The body of a frame, whatever the length of its varint prefix. */
function bodyOf (frame: Uint8Array): Uint8Array {
  let i = 0
  while ((frame[i] & 0x80) !== 0) i++
  return frame.subarray(i + 1)
}

const packr = new Packr({ useRecords: false, variableMapSize: true })
const varint = (n: number): number[] => {
  const out: number[] = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  out.push(n)
  return out
}
/** A frame of any value, valid or not. */
const rawFrame = (value: unknown): Uint8Array => {
  const body = packr.pack(value)
  return Uint8Array.from([...varint(body.byteLength), ...body])
}

describe('protocols/meta', function () {
  describe('messages and codec', () => {
    const limits: MessageLimits = { maxBatchOps: 2000, maxUrlLength: 2048, maxKeyLength: 2048, maxHostLength: 300 }

    it('round-trips each op kind through encode, decode and validate', () => {
      const ops = opsOfEveryKind()
      for (const o of ops) {
        const decoded = decodeMessage(bodyOf(encodeFrame({ t: 'apply', id: 7, ops: [o] })), limits)
        assert.deepEqual(decoded, { t: 'apply', id: 7, ops: [o] }, `op ${o.k}`)
      }
      const all = decodeMessage(bodyOf(encodeFrame({ t: 'apply', id: 8, ops })), limits)
      assert.deepEqual(all, { t: 'apply', id: 8, ops })
      assert.deepEqual(decodeMessage(bodyOf(encodeFrame({ t: 'ack', id: 9 })), limits), { t: 'ack', id: 9 })
      assert.deepEqual(decodeMessage(bodyOf(encodeFrame({ t: 'nack', id: 9, error: 'disk full', retry: true })), limits), { t: 'nack', id: 9, error: 'disk full', retry: true })
    })

    it('assembles an apply frame from encoded ops into the very bytes of the whole message', () => {
      for (const n of [1, 15, 16, 300, 65_536]) {
        const ops = Array.from({ length: n }, (_, i) => op(i))
        const whole = encodeFrame({ t: 'apply', id: 4_000_000_000, ops })
        const assembled = encodeApplyFrame(4_000_000_000, ops.map(encodeOp))
        assert.deepEqual(assembled, whole, `${n} ops`)
      }
    })

    it('fits the largest record validateRecord lets through in one default-size message', () => {
      // every string at its cap, in three-byte UTF-8 characters
      const c = (n: number): string => '€'.repeat(n)
      const big: Op = {
        k: 'done',
        h: c(300),
        key: c(2048),
        rec: {
          ...rec(c(2048)),
          referrer: c(2048),
          redirectTo: c(8192),
          contentType: c(8192),
          etag: c(8192),
          lastModified: c(8192),
          error: c(4096),
          cid: c(128),
          fields: { a: c(65_536), b: c(65_536), c: c(65_536), d: Array.from({ length: 16 }, () => c(4095)) }
        }
      }
      assert.deepEqual(validateOp(big, limits), big)
      const bytes = encodeOp(big).byteLength
      assert.ok(bytes > 800_000, `${bytes} bytes`)
      assert.ok(bytes + 32 <= DEFAULT_MAX_MESSAGE_BYTES, `${bytes} bytes`)
    })

    it('keeps only the known fields of an op', () => {
      const o = validateOp({ k: 'drop', h: 'a.example:80', extra: 'x'.repeat(10) }, limits)
      assert.deepEqual(o, { k: 'drop', h: 'a.example:80' })
      const r = validateOp({ k: 'record', rec: { ...rec('https://a.example/'), later: 1 } }, limits)
      assert.deepEqual(r, { k: 'record', rec: rec('https://a.example/') })
    })

    it('applies the caps instead of truncating, naming the field at fault', () => {
      const apply = (ops: unknown[]): unknown => ({ t: 'apply', id: 1, ops })
      const url = 'https://a.example/'
      const bad: Array<[string, unknown, RegExp]> = [
        ['unknown op kind', { k: 'put', h: 'a' }, /^ops\[0\] has an unknown op kind "put"/],
        ['no op kind', { h: 'a' }, /^ops\[0\] has an unknown op kind undefined/],
        ['an op that is a list', [1, 2], /^ops\[0\] must be a map/],
        ['url over maxUrlLength', { k: 'seen', u: url + 'x'.repeat(2048), at: 1 }, /^ops\[0\]\.u is longer than 2048/],
        ['empty url', { k: 'entry', h: 'a', key: 'k', u: '', d: 0 }, /^ops\[0\]\.u must not be empty/],
        ['key over maxKeyLength', { k: 'entry', h: 'a', key: 'k'.repeat(2049), u: url, d: 0 }, /^ops\[0\]\.key is longer than 2048/],
        ['host over maxHostLength', { k: 'drop', h: 'h'.repeat(301) }, /^ops\[0\]\.h is longer than 300/],
        ['referrer over maxUrlLength', { k: 'entry', h: 'a', key: 'k', u: url, d: 0, r: 'r'.repeat(2049) }, /^ops\[0\]\.r is longer/],
        ['a negative depth', { k: 'entry', h: 'a', key: 'k', u: url, d: -1 }, /^ops\[0\]\.d must be an integer from 0 to 65535/],
        ['a fractional depth', { k: 'entry', h: 'a', key: 'k', u: url, d: 1.5 }, /^ops\[0\]\.d/],
        ['redirects over 255', { k: 'entry', h: 'a', key: 'k', u: url, d: 0, x: 256 }, /^ops\[0\]\.x/],
        ['a seen time that is a string', { k: 'seen', u: url, at: '1' }, /^ops\[0\]\.at must be a time/],
        ['a seen time that is not finite', { k: 'seen', u: url, at: Infinity }, /^ops\[0\]\.at/],
        ['a record with a 1 MB field', { k: 'record', rec: rec(url, { fields: { body: 'x'.repeat(1_000_000) } }) }, /^ops\[0\]\.rec: record\.fields\["body"\] is longer than 65536/],
        ['a record with an unknown status', { k: 'done', h: 'a', key: 'k', rec: { ...rec(url), status: 'maybe' } }, /^ops\[0\]\.rec: record\.status/],
        ['a record that is null', { k: 'record', rec: null }, /^ops\[0\]\.rec: record must be a map/],
        ['a done op without a key', { k: 'done', h: 'a', rec: rec(url) }, /^ops\[0\]\.key must be a string/]
      ]
      for (const [what, o, message] of bad) {
        assert.throws(() => validateMessage(apply([o]), limits), { name: 'InvalidMessageError', message }, what)
      }
      // the op at fault is named by its place
      assert.throws(() => validateMessage(apply([op(0), op(1), { k: 'drop' }]), limits), { name: 'InvalidMessageError', message: /^ops\[2\]\.h/ })
      const many = Array.from({ length: 11 }, (_, i) => op(i))
      assert.equal((validateMessage(apply(many.slice(0, 10)), { ...limits, maxBatchOps: 10 }) as any).ops.length, 10)
      assert.throws(() => validateMessage(apply(many), { ...limits, maxBatchOps: 10 }), { name: 'InvalidMessageError', message: /^ops holds 11 ops, more than maxBatchOps \(10\)/ })
      assert.throws(() => validateMessage(apply([]), limits), { name: 'InvalidMessageError', message: /at least one op/ })
      assert.throws(() => validateMessage({ t: 'apply', id: -1, ops: [op(0)] }, limits), { name: 'InvalidMessageError', message: /^id/ })
      assert.throws(() => validateMessage({ t: 'apply', id: 1, ops: 'x' }, limits), { name: 'InvalidMessageError', message: /^ops must be an array/ })
      assert.throws(() => validateMessage({ t: 'nack', id: 1, error: 'e'.repeat(1025), retry: true }, limits), { name: 'InvalidMessageError', message: /^error/ })
      assert.throws(() => validateMessage({ t: 'constructor' }, limits), { name: 'InvalidMessageError', message: /unknown message type/ })
      // structured-clone references are refused: one array can't stand for many
      assert.throws(() => decodeMessage(Uint8Array.from([0xd6, 0x69, 0, 0, 0, 1, 0x90]), limits), { name: 'InvalidMessageError', message: /^not a msgpack value/ })
    })
  })

  describe('MetaTransport', function () {
    this.timeout(30_000)
    const nodes: Libp2p[] = []
    const transports: MetaTransport[] = []

    async function node (privateKey?: PrivateKey): Promise<Libp2p> {
      const n = await createNode(privateKey)
      nodes.push(n)
      return n
    }

    async function transport (libp2p: Libp2p, init: MetaTransportInit): Promise<MetaTransport> {
      const t = new MetaTransport({ libp2p }, init)
      await t.start()
      transports.push(t)
      return t
    }

    /** A sender and a receiver node, the sender knowing the receiver's address. */
    async function pair (receiverInit: MetaTransportInit, senderInit: Partial<MetaTransportInit> = {}): Promise<{ a: Libp2p, b: Libp2p, ta: MetaTransport, tb: MetaTransport }> {
      const [a, b] = await Promise.all([node(), node()])
      await introduce(a, b)
      const tb = await transport(b, receiverInit)
      const ta = await transport(a, { onApply: async () => {}, ...senderInit })
      return { a, b, ta, tb }
    }

    afterEach(async () => {
      await Promise.all(transports.splice(0).map(async t => { await t.stop() }))
      await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
    })

    it('validates its options, naming the one at fault', async () => {
      const libp2p = await node()
      const onApply = async (): Promise<void> => {}
      assert.throws(() => new MetaTransport({ libp2p }, {} as any), { name: 'ConfigError', message: /^onApply must be a function/ })
      assert.throws(() => new MetaTransport({ libp2p }, { onApply, window: 0 }), { name: 'ConfigError', message: /^window must be an integer from 1/ })
      assert.throws(() => new MetaTransport({ libp2p }, { onApply, maxBatchOps: 1.5 }), { name: 'ConfigError', message: /^maxBatchOps/ })
      assert.throws(() => new MetaTransport({ libp2p }, { onApply, maxBatchOps: 70_000 }), { name: 'ConfigError', message: /^maxBatchOps must be an integer from 1 to 65535/ })
      assert.throws(() => new MetaTransport({ libp2p }, { onApply, flushDelay: -1 }), { name: 'ConfigError', message: /^flushDelay/ })
      assert.throws(() => new MetaTransport({ libp2p }, { onApply, ackTimeout: Infinity }), { name: 'ConfigError', message: /^ackTimeout/ })
      assert.throws(() => new MetaTransport({ libp2p }, { onApply, idleTimeout: 0 }), { name: 'ConfigError', message: /^idleTimeout/ })
      assert.throws(() => new MetaTransport({ libp2p }, { onApply, readTimeout: '5' as any }), { name: 'ConfigError', message: /^readTimeout/ })
      assert.throws(() => new MetaTransport({ libp2p }, { onApply, maxInboundStreams: 0 }), { name: 'ConfigError', message: /^maxInboundStreams/ })
      assert.throws(() => new MetaTransport({ libp2p }, { onApply, maxUrlLength: 8 }), { name: 'ConfigError', message: /^maxUrlLength/ })
      assert.throws(() => new MetaTransport({ libp2p }, { onApply, maxKeyLength: 1e9 }), { name: 'ConfigError', message: /^maxKeyLength/ })
      assert.throws(() => new MetaTransport({ libp2p }, { onApply, maxHostLength: 2000 }), { name: 'ConfigError', message: /^maxHostLength/ })
      assert.throws(() => new MetaTransport({ libp2p }, { onApply, maxMessageBytes: 1024 }), { name: 'ConfigError', message: /^maxMessageBytes must be an integer from 16384/ })
      assert.throws(() => new MetaTransport({ libp2p }, { onApply, maxMessageBytes: 18_000 }), { name: 'ConfigError', message: /^maxMessageBytes must be at least \d+ bytes so one entry op always fits/ })
    })

    it('acks a batch only once onApply has resolved', async () => {
      const gate = deferred()
      const received: Array<{ from: string, ops: Op[] }> = []
      const { a, ta, b, tb } = await pair({
        onApply: async (from, ops) => {
          received.push({ from, ops })
          await gate.promise
        }
      })
      const ops = opsOfEveryKind()
      const peer = b.peerId.toString()
      const sent = track(ta.send(peer, ops))
      await waitFor(() => received.length === 1, 'onApply')
      assert.equal(received[0].from, a.peerId.toString())
      assert.deepEqual(received[0].ops, ops)
      // onApply has the batch but has not resolved: no ack yet, the send is pending
      await new Promise(resolve => setTimeout(resolve, 50))
      assert.equal(tb.stats.acksSent, 0)
      assert.equal(sent.settled, false)
      assert.equal(ta.inFlight(peer), 1)
      gate.resolve()
      await sent.promise
      assert.equal(tb.stats.acksSent, 1)
      assert.equal(tb.stats.opsReceived, ops.length)
      assert.equal(ta.stats.batchesAcked, 1)
      assert.equal(ta.stats.opsSent, ops.length)
      assert.equal(ta.stats.opsAcked, ops.length)
      assert.equal(ta.inFlight(peer), 0)
    })

    it('rejects a send with a retryable MetaSendError when onApply rejects, and keeps the stream', async () => {
      let fail = true
      const { b, ta, tb } = await pair({
        onApply: async () => { if (fail) throw new Error('frontier store is closing') }
      })
      const peer = b.peerId.toString()
      await assert.rejects(ta.send(peer, [op(1)]), (err: any) => {
        assert.equal(err.name, 'MetaSendError')
        assert.equal(err.retryable, true)
        assert.equal(err.peer, peer)
        assert.match(err.message, /refused a batch of 1 ops: frontier store is closing/)
        return true
      })
      assert.equal(tb.stats.nacksSent, 1)
      assert.equal(ta.stats.batchesNacked, 1)
      assert.equal(ta.stats.opsAcked, 0)
      fail = false
      await ta.send(peer, [op(2)])
      assert.equal(ta.stats.streamsOpened, 1)
    })

    it('delivers 20,000 ops exactly once, in order, in batches of at most maxBatchOps', async () => {
      const got: Op[] = []
      const batchSizes: number[] = []
      const { b, ta, tb } = await pair({
        onApply: async (_from, ops) => {
          batchSizes.push(ops.length)
          got.push(...ops)
          // a disk write takes a while: later batches must wait for this one
          await new Promise(resolve => setImmediate(resolve))
        }
      })
      const all = Array.from({ length: 20_000 }, (_, i) => op(i))
      const peer = b.peerId.toString()
      const sends: Array<Promise<void>> = []
      for (let i = 0; i < all.length; i += 137) sends.push(ta.send(peer, all.slice(i, i + 137)))
      await Promise.all(sends)
      assert.equal(got.length, 20_000)
      for (let i = 0; i < got.length; i++) {
        if (indexOf(got[i]) !== i) assert.fail(`op ${i} arrived as op ${indexOf(got[i])}`)
      }
      assert.deepEqual(got, all)
      assert.equal(batchSizes.reduce((s, n) => s + n, 0), 20_000)
      assert.ok(Math.max(...batchSizes) <= 2000, `largest batch ${Math.max(...batchSizes)}`)
      assert.ok(batchSizes.length >= 10)
      assert.equal(ta.stats.opsSent, 20_000)
      assert.equal(ta.stats.opsAcked, 20_000)
      assert.equal(tb.stats.opsReceived, 20_000)
      assert.equal(ta.stats.batchesAcked, batchSizes.length)
      assert.equal(ta.stats.streamsOpened, 1)
      assert.equal(tb.stats.streamsInbound, 1)
      assert.equal(tb.stats.malformedMessages, 0)
    })

    it('cuts batches at maxMessageBytes and refuses an op no batch can hold', async () => {
      const maxMessageBytes = 256 * 1024
      const sizes: number[] = []
      const counts: number[] = []
      const got: Op[] = []
      const { b, ta } = await pair({
        maxMessageBytes,
        onApply: async (_from, ops) => {
          got.push(...ops)
          counts.push(ops.length)
          sizes.push(encodeFrame({ t: 'apply', id: 0, ops }).byteLength)
        }
      }, { maxMessageBytes })
      const peer = b.peerId.toString()
      // records of ~50 KB each: a batch of 256 KiB holds five
      const ops: Op[] = Array.from({ length: 20 }, (_, i) => ({ k: 'record', rec: rec(`https://a.example/${i}`, { fields: { text: String(i).padEnd(50_000, '.') } }) }))
      await ta.send(peer, ops)
      assert.deepEqual(got, ops)
      assert.deepEqual(counts, [5, 5, 5, 5])
      assert.ok(Math.max(...sizes) <= maxMessageBytes + 4, `largest frame ${Math.max(...sizes)}`)
      // a valid record of four 64,000-character fields of two-byte characters encodes past 256 KiB: refused by name, nothing sent
      const sent = ta.stats.messagesSent
      const big: Op = { k: 'record', rec: rec('https://a.example/big', { fields: { a: 'é'.repeat(64_000), b: 'ü'.repeat(64_000), c: 'ß'.repeat(64_000), d: 'ø'.repeat(64_000) } }) }
      await assert.rejects(ta.send(peer, [op(0), big]), { name: 'InvalidOpsError', message: /^ops\[1\] encodes to \d+ bytes, more than a batch of maxMessageBytes \(262144\)/ })
      assert.equal(ta.stats.messagesSent, sent)
    })

    it('refuses ops the protocol cannot carry, before sending anything', async () => {
      const { b, ta } = await pair({ onApply: async () => {} })
      const peer = b.peerId.toString()
      await assert.rejects(ta.send(peer, [op(0), { k: 'seen', u: 'https://a.example/' + 'x'.repeat(2048), at: 1 }]), { name: 'InvalidOpsError', message: /^ops\[1\]\.u is longer than 2048/ })
      await assert.rejects(ta.send(peer, [{ k: 'nope' } as any]), { name: 'InvalidOpsError', message: /^ops\[0\] has an unknown op kind/ })
      await assert.rejects(ta.send(peer, [{ k: 'record', rec: rec('https://a.example/', { fields: { x: 'x'.repeat(1_000_000) } }) }]), { name: 'InvalidOpsError', message: /^ops\[0\]\.rec: record\.fields/ })
      await assert.rejects(ta.send(peer, 'ops' as any), { name: 'InvalidOpsError' })
      await assert.rejects(ta.send('not-a-peer-id', [op(0)]), { name: 'MetaSendError', retryable: false })
      await ta.send(peer, [])
      assert.equal(ta.stats.messagesSent, 0)
    })

    it('holds batches beyond the window while onApply is stalled, applying one batch at a time', async () => {
      const gate = deferred()
      let running = 0
      let maxRunning = 0
      let calls = 0
      const order: number[] = []
      const { b, ta, tb } = await pair({
        window: 4,
        onApply: async (_from, ops) => {
          calls++
          running++
          maxRunning = Math.max(maxRunning, running)
          order.push(indexOf(ops[0]))
          await gate.promise
          running--
        }
      }, { window: 4, maxBatchOps: 10 })
      const peer = b.peerId.toString()
      const sends = Array.from({ length: 10 }, (_, k) => track(ta.send(peer, Array.from({ length: 10 }, (_, i) => op(k * 10 + i)))))
      await waitFor(() => ta.inFlight(peer) === 4 && tb.stats.messagesReceived === 4, 'four batches at the receiver')
      // give the sender every chance to overrun the window
      await new Promise(resolve => setTimeout(resolve, 100))
      assert.equal(ta.inFlight(peer), 4)
      assert.equal(ta.queued(peer), 6)
      assert.equal(ta.stats.batchesSent, 4)
      assert.equal(calls, 1)
      assert.equal(sends.filter(s => s.settled).length, 0)
      gate.resolve()
      await Promise.all(sends.map(async s => { await s.promise }))
      assert.equal(calls, 10)
      assert.equal(maxRunning, 1)
      assert.deepEqual(order, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90])
      assert.equal(ta.inFlight(peer), 0)
      assert.equal(ta.queued(peer), 0)
    })

    it('holds at most its own window of batches per stream, even for a sender with a larger window', async () => {
      const gate = deferred()
      let calls = 0
      const { b, ta, tb } = await pair({
        window: 2,
        onApply: async () => { calls++; await gate.promise }
      }, { window: 8, maxBatchOps: 10 })
      const peer = b.peerId.toString()
      const sends = Array.from({ length: 8 }, (_, k) => ta.send(peer, Array.from({ length: 10 }, (_, i) => op(k * 10 + i))))
      await waitFor(() => calls === 1 && ta.inFlight(peer) === 8, 'one batch applying, eight in flight')
      await waitFor(() => tb.stats.messagesReceived === 2, 'two batches read')
      await new Promise(resolve => setTimeout(resolve, 100))
      // the receiver stopped reading at its window
      assert.equal(tb.stats.messagesReceived, 2)
      gate.resolve()
      await Promise.all(sends)
      assert.equal(calls, 8)
    })

    it('rejects promptly when the ack does not come, then opens a new stream', async () => {
      let stall = true
      const { b, ta } = await pair({
        onApply: async () => { if (stall) await new Promise(() => {}) }
      }, { ackTimeout: 300 })
      const peer = b.peerId.toString()
      const started = Date.now()
      await assert.rejects(ta.send(peer, [op(1)]), { name: 'MetaSendError', retryable: true, message: /no ack .* within 300 ms/ })
      assert.ok(Date.now() - started < 2000)
      stall = false
      await ta.send(peer, [op(2)])
      assert.equal(ta.stats.streamsOpened, 2)
    })

    it('rejects pending sends promptly when the remote stops, and sends to it again once it is back', async () => {
      const key = await generateKeyPair('Ed25519')
      const b = await node(key)
      const a = await node()
      await introduce(a, b)
      let calls = 0
      await transport(b, { onApply: async () => { calls++; await new Promise(() => {}) } })
      const ta = await transport(a, { onApply: async () => {}, maxBatchOps: 10 })
      const peer = b.peerId.toString()
      const sends = Array.from({ length: 3 }, (_, k) => track(ta.send(peer, Array.from({ length: 10 }, (_, i) => op(k * 10 + i)))))
      await waitFor(() => calls === 1 && ta.inFlight(peer) === 3, 'three batches in flight, one applying')
      // The remote's libp2p goes away under its transport, as when its process dies.
      await b.stop()
      const stopped = Date.now()
      await waitFor(() => sends.every(s => s.settled), 'the sends to settle', 5000)
      assert.ok(Date.now() - stopped < 2000, `settled ${Date.now() - stopped} ms after the stop`)
      for (const s of sends) {
        assert.equal(s.error?.name, 'MetaSendError')
        assert.equal(s.error?.retryable, true)
        assert.equal(s.error?.peer, peer)
      }
      assert.equal(ta.inFlight(peer), 0)
      assert.equal(ta.stats.batchesFailed, 3)

      // The same peer (same key) comes back on a new port.
      const b2 = await node(key)
      const got: Op[] = []
      await transport(b2, { onApply: async (_f, ops) => { got.push(...ops) } })
      await a.peerStore.patch(b2.peerId, { multiaddrs: b2.getMultiaddrs() })
      await ta.send(peer, [op(99)])
      assert.deepEqual(got, [op(99)])
      assert.equal(ta.stats.streamsOpened, 2)
    })

    it('rejects pending sends with a clear error when it stops', async () => {
      const { b, ta } = await pair({ onApply: async () => { await new Promise(() => {}) } })
      const peer = b.peerId.toString()
      const sent = track(ta.send(peer, [op(1)]))
      await waitFor(() => ta.inFlight(peer) === 1, 'a batch in flight')
      await ta.stop()
      await waitFor(() => sent.settled, 'the send to settle')
      assert.equal(sent.error?.name, 'MetaSendError')
      assert.equal(sent.error?.retryable, false)
      assert.match(sent.error?.message, /the meta transport stopped/)
      await assert.rejects(ta.send(peer, [op(2)]), { name: 'MetaSendError', retryable: false, message: /not running/ })
    })

    it('closes an idle outbound stream, and the next send opens a new one', async () => {
      const { b, ta, tb } = await pair({ onApply: async () => {} }, { idleTimeout: 100 })
      const peer = b.peerId.toString()
      await ta.send(peer, [op(1)])
      await waitFor(() => ta.queued(peer) === 0 && (ta as any).channels.size === 0, 'the idle stream to close')
      await ta.send(peer, [op(2)])
      assert.equal(ta.stats.streamsOpened, 2)
      assert.equal(tb.stats.malformedMessages, 0)
      assert.equal(ta.stats.batchesFailed, 0)
    })

    describe('a malformed message closes its stream, and only that one', () => {
      const url = 'https://a.example/'
      const cases: Array<[string, Uint8Array]> = [
        ['bytes that are not msgpack', Uint8Array.from([3, 0xc1, 0xc1, 0xc1])],
        ['a reply where a request belongs', rawFrame({ t: 'ack', id: 1 })],
        ['an unknown op kind', rawFrame({ t: 'apply', id: 1, ops: [op(0), { k: 'delete-everything', h: 'a.example:443' }] })],
        ['an oversize URL', rawFrame({ t: 'apply', id: 1, ops: [{ k: 'seen', u: url + 'x'.repeat(2048), at: 1 }] })],
        ['a record with a 1 MB field', rawFrame({ t: 'apply', id: 1, ops: [{ k: 'record', rec: rec(url, { fields: { body: 'x'.repeat(1_000_000) } }) }] })],
        ['too many ops', rawFrame({ t: 'apply', id: 1, ops: Array.from({ length: 51 }, (_, i) => ({ k: 'drop', h: `h${i}.example:80` })) })],
        ['bytes over the cap', Uint8Array.from([...varint(2 * 1024 * 1024 + 1), 0x80])]
      ]

      for (const [what, bytes] of cases) {
        it(what, async () => {
          const delivered: Op[] = []
          const { a, b, ta, tb } = await pair({
            maxBatchOps: 50,
            onApply: async (_f, ops) => { delivered.push(...ops) }
          })
          const peer = b.peerId.toString()
          // a healthy stream first
          await ta.send(peer, [op(1)])
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
            assert.ok(log.lines.some(l => l.includes('closing meta stream from')), `logged: ${log.lines.join('\n')}`)
          } finally {
            log.restore()
          }
          // nothing of the bad message was applied, and the healthy stream still serves
          assert.deepEqual(delivered, [op(1)])
          await ta.send(peer, [op(2)])
          assert.deepEqual(delivered, [op(1), op(2)])
          assert.equal(ta.stats.streamsOpened, 1)
        })
      }
    })
  })
})

import '../../node/polyfills.js'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { format } from 'node:util'
import { lpStream } from '@libp2p/utils'
import debug from 'debug'
import { Packr, Unpackr } from 'msgpackr'
import { cidOf } from '../../node/blocks.js'
import {
  decodeMessage, encodeFrame, MAX_CHUNK_BYTES, PROTOCOL, QueryService, queryPeer, validateMessage, validateRecord
} from '../../protocols/query/index.js'
import { waitFor } from '../utils/libp2p.js'
import type { Found, MessageLimits, QueryServiceInit } from '../../protocols/query/index.js'
import type { UrlRecord } from '../../node/types.js'
import type { Libp2p, Stream } from '@libp2p/interface'
import { createNode, introduce } from '../utils/protocol-nodes.js'

// ---- helpers ----


/** Let `from` dial `to` by peer id. */

/** Captures what `shoal:query` logs while a test runs. */
function captureLog (): { lines: string[], restore: () => void } {
  const lines: string[] = []
  const saved = debug.disable()
  const savedLog = debug.log
  debug.enable(saved === '' ? 'shoal:query' : `${saved},shoal:query`)
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

function record (url: string, extra: Partial<UrlRecord> = {}): UrlRecord {
  return { url, status: 'fetched', httpStatus: 200, fetchedAt: 1_700_000_000_000, depth: 1, contentType: 'text/html', ...extra }
}

/** A page with a stored body: its record carries the body's CID and size. */
function page (url: string, body: Uint8Array, extra: Partial<UrlRecord> = {}): { record: UrlRecord, body: Uint8Array } {
  return { record: record(url, { cid: cidOf(body), size: body.byteLength, ...extra }), body }
}

/** What a test server holds: url → record, cid → body; lookups and body reads are counted. */
class Store {
  readonly records = new Map<string, UrlRecord>()
  readonly bodies = new Map<string, Uint8Array>()
  readonly verdicts = new Map<string, string>()
  lookups = 0
  bodyReads = 0

  add (p: { record: UrlRecord, body?: Uint8Array }): this {
    this.records.set(p.record.url, p.record)
    if (p.body != null && p.record.cid != null) this.bodies.set(p.record.cid, p.body)
    return this
  }

  init (): QueryServiceInit {
    return {
      lookup: async (url) => {
        this.lookups++
        const r = this.records.get(url)
        return r != null ? { record: r, verdict: r.status } : { verdict: this.verdicts.get(url) ?? 'never seen' }
      },
      body: async (r) => {
        this.bodyReads++
        return r.cid == null ? undefined : this.bodies.get(r.cid)
      }
    }
  }
}

const packr = new Packr({ useRecords: false, variableMapSize: true })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })
const varint = (n: number): number[] => {
  const out: number[] = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  out.push(n)
  return out
}
/** Any value as a length-prefixed msgpack frame, valid or not. */
const frame = (value: unknown): Uint8Array => {
  const body = packr.pack(value)
  const out = new Uint8Array(varint(body.byteLength).length + body.byteLength)
  out.set(varint(body.byteLength))
  out.set(body, varint(body.byteLength).length)
  return out
}

describe('protocols/query', function () {
  describe('messages and codec', () => {
    const limits: MessageLimits = { maxUrlLength: 2048, maxChunkBytes: 64 * 1024, maxBodyBytes: 10 * 1024 * 1024 }
    const full: UrlRecord = {
      url: 'https://a.example/page',
      status: 'fetched',
      httpStatus: 200,
      fetchedAt: 1_700_000_000_123,
      cid: cidOf(new Uint8Array([1, 2, 3])),
      contentType: 'text/html; charset=utf-8',
      size: 3,
      etag: '"abc"',
      lastModified: 'Tue, 15 Nov 1994 08:12:31 GMT',
      depth: 2,
      referrer: 'https://a.example/',
      redirectTo: 'https://a.example/elsewhere',
      error: 'none',
      attempts: 1,
      links: 17,
      noindex: true,
      fields: { title: 'A page', tags: ['x', 'y'] }
    }
    /** A frame's body, without its varint length prefix. */
    const strip = (f: Uint8Array): Uint8Array => {
      let i = 0
      while (f[i] >= 0x80) i++
      return f.subarray(i + 1)
    }

    it('round-trips every message, and every field of a record', () => {
      const data = randomBytes(1000)
      const msgs = [
        { t: 'get', id: 7, url: 'https://a.example/page', body: true },
        { t: 'record', id: 7, record: full, verdict: 'fetched' },
        { t: 'record', id: 7, record: null, verdict: 'never seen' },
        { t: 'chunk', id: 7, data: new Uint8Array(data) },
        { t: 'end', id: 7, bytes: 1000 },
        { t: 'error', id: 7, error: 'busy', retry: true },
        { t: 'error', id: 7, error: 'no' }
      ] as const
      for (const m of msgs) {
        const decoded = decodeMessage(strip(encodeFrame(m as any)), limits)
        if (m.t === 'chunk') {
          assert.equal(decoded.t, 'chunk')
          assert.deepEqual(Buffer.from((decoded as any).data), data)
        } else {
          assert.deepEqual(decoded, m)
        }
      }
    })

    it('drops record fields it does not know, keeps the ones it does', () => {
      const r = validateRecord({ ...full, comingInV2: 'x'.repeat(100) }, limits)
      assert.deepEqual(r, full)
      assert.equal('comingInV2' in r, false)
    })

    it('applies the caps instead of truncating', () => {
      const r = (extra: Record<string, unknown>): unknown => ({ t: 'record', id: 1, verdict: '', record: { ...full, ...extra } })
      const bad: Array<[unknown, RegExp]> = [
        [{ t: 'get', id: 1, url: 'https://a.example/' + 'x'.repeat(2048), body: false }, /^url is longer than 2048/],
        [{ t: 'get', id: 1, url: '', body: false }, /^url must not be empty/],
        [{ t: 'get', id: 1, url: 'https://a.example/', body: 'true' }, /^body must be a boolean/],
        [{ t: 'get', id: -1, url: 'https://a.example/', body: false }, /^id/],
        [{ t: 'get', id: 2 ** 32, url: 'https://a.example/', body: false }, /^id/],
        [{ t: 'record', id: 1, record: null, verdict: 'v'.repeat(1025) }, /^verdict is longer than 1024/],
        [{ t: 'record', id: 1, record: [full], verdict: '' }, /^record must be a map/],
        [r({ error: 'e'.repeat(4097) }), /^record\.error is longer than 4096/],
        [r({ etag: 'e'.repeat(1_000_000) }), /^record\.etag is longer/],
        [r({ url: 'https://a.example/' + 'x'.repeat(2048) }), /^record\.url/],
        [r({ cid: 'b'.repeat(129) }), /^record\.cid/],
        [r({ status: 'stolen' }), /^record\.status must be one of/],
        [r({ fetchedAt: -1 }), /^record\.fetchedAt/],
        [r({ fetchedAt: Infinity }), /^record\.fetchedAt/],
        [r({ depth: 1.5 }), /^record\.depth/],
        [r({ httpStatus: '200' }), /^record\.httpStatus/],
        [r({ httpStatus: null }), /^record\.httpStatus/],
        [r({ size: -1 }), /^record\.size/],
        [r({ noindex: 1 }), /^record\.noindex/],
        [r({ fields: { big: 'x'.repeat(1_000_000) } }), /^record\.fields\["big"\] is longer than 65536/],
        [r({ fields: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`f${i}`, 'v'])) }), /holds 257 fields, more than 256/],
        [r({ fields: { list: Array.from({ length: 1001 }, () => 'v') } }), /holds 1001 values/],
        [r({ fields: { list: ['ok', 7] } }), /record\.fields\["list"\]\[1\] must be a string/],
        [r({ fields: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`f${i}`, 'x'.repeat(60_000)])) }), /more than 262144 characters/],
        [r({ fields: ['a'] }), /^record\.fields must be a map/],
        [{ t: 'chunk', id: 1, data: new Uint8Array(64 * 1024 + 1) }, /more than maxChunkBytes \(65536\)/],
        [{ t: 'chunk', id: 1, data: new Uint8Array(0) }, /must not be empty/],
        [{ t: 'chunk', id: 1, data: 'bytes' }, /^data must be bytes/],
        [{ t: 'end', id: 1, bytes: 10 * 1024 * 1024 + 1 }, /^bytes/],
        [{ t: 'error', id: 1, error: 'e'.repeat(1025) }, /^error is longer than 1024/],
        [{ t: 'error', id: 1, error: 'e', retry: 'yes' }, /^retry must be a boolean/],
        [{ t: 'toString' }, /unknown message type/],
        [{ t: 'hello', id: 1 }, /unknown message type/],
        [[1, 2], /a message must be a map/]
      ]
      for (const [value, message] of bad) {
        assert.throws(() => validateMessage(value, limits), { name: 'InvalidMessageError', message }, JSON.stringify(value).slice(0, 100))
      }
      // the same caps hold through the codec
      assert.throws(() => decodeMessage(strip(frame(r({ error: 'e'.repeat(1_000_000) }))), limits), { name: 'InvalidMessageError', message: /^record\.error/ })
    })

    it('rejects a small frame that declares a huge array, and structured-clone references', () => {
      assert.throws(() => decodeMessage(Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff]), limits), { name: 'InvalidMessageError' })
      assert.throws(() => decodeMessage(Uint8Array.from([0xd6, 0x69, 0, 0, 0, 1, 0x90]), limits), { name: 'InvalidMessageError', message: /^not a msgpack value/ })
    })
  })

  describe('QueryService and queryPeer', function () {
    this.timeout(30_000)
    const nodes: Libp2p[] = []
    const services: QueryService[] = []

    async function node (): Promise<Libp2p> {
      const n = await createNode()
      nodes.push(n)
      return n
    }

    async function service (libp2p: Libp2p, init: QueryServiceInit): Promise<QueryService> {
      const s = new QueryService({ libp2p }, init)
      await s.start()
      services.push(s)
      return s
    }

    /** A client node and a server node with a QueryService, the client knowing the server's address. */
    async function pair (init: QueryServiceInit): Promise<{ a: Libp2p, b: Libp2p, server: QueryService }> {
      const [a, b] = await Promise.all([node(), node()])
      await introduce(a, b)
      const server = await service(b, init)
      return { a, b, server }
    }

    afterEach(async () => {
      await Promise.all(services.splice(0).map(async s => { await s.stop() }))
      await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
    })

    it('validates its options, naming the one at fault', async () => {
      const libp2p = await node()
      const init = new Store().init()
      assert.throws(() => new QueryService({ libp2p }, { ...init, timeout: 0 }), { name: 'ConfigError', message: /^timeout must be an integer from 1/ })
      assert.throws(() => new QueryService({ libp2p }, { ...init, chunkBytes: 64 * 1024 + 1 }), { name: 'ConfigError', message: /^chunkBytes/ })
      assert.throws(() => new QueryService({ libp2p }, { ...init, maxBodyBytes: Infinity }), { name: 'ConfigError', message: /^maxBodyBytes/ })
      assert.throws(() => new QueryService({ libp2p }, { ...init, maxConcurrent: 0 }), { name: 'ConfigError', message: /^maxConcurrent/ })
      assert.throws(() => new QueryService({ libp2p }, { body: init.body } as any), { name: 'ConfigError', message: /^lookup/ })
      assert.throws(() => new QueryService({ libp2p }, { lookup: init.lookup } as any), { name: 'ConfigError', message: /^body/ })
      const peer = libp2p.peerId
      await assert.rejects(queryPeer(libp2p, peer, 'https://a.example/', { timeout: -1 }), { name: 'InvalidQueryError', message: /^timeout/ })
      await assert.rejects(queryPeer(libp2p, peer, 'https://a.example/', { maxBodyBytes: 0 }), { name: 'InvalidQueryError', message: /^maxBodyBytes/ })
      await assert.rejects(queryPeer(libp2p, peer, 'https://a.example/' + 'x'.repeat(2048)), { name: 'InvalidQueryError', message: /^url is longer/ })
      await assert.rejects(queryPeer(libp2p, peer, ''), { name: 'InvalidQueryError', message: /^url must be/ })
      await assert.rejects(queryPeer(libp2p, 'not-a-peer-id', 'https://a.example/'), { name: 'InvalidQueryError', message: /is not a peer id/ })
    })

    it('answers with the record and its verdict, without reading the body unless asked', async () => {
      const p = page('https://a.example/found', randomBytes(5000), { fields: { title: 'Found' }, links: 3 })
      const store = new Store().add(p)
      const { a, b, server } = await pair(store.init())
      const res = await queryPeer(a, b.peerId.toString(), p.record.url)
      assert.deepEqual(res, { record: p.record, verdict: 'fetched' })
      assert.equal(store.bodyReads, 0)
      assert.equal(server.stats.recordsFound, 1)
      assert.equal(server.stats.chunksSent, 0)
    })

    it('answers a URL it has no record of with no record and the verdict', async () => {
      const store = new Store()
      store.verdicts.set('https://a.example/later', 'queued')
      const { a, b, server } = await pair(store.init())
      assert.deepEqual(await queryPeer(a, b.peerId, 'https://a.example/never', { body: true }), { verdict: 'never seen' })
      assert.deepEqual(await queryPeer(a, b.peerId, 'https://a.example/later'), { verdict: 'queued' })
      assert.equal(server.stats.recordsMissing, 2)
      assert.equal(store.bodyReads, 0)
    })

    it('streams a 200 KB body in several chunks and verifies it', async () => {
      const p = page('https://a.example/big', randomBytes(200_000))
      const empty = page('https://a.example/empty', new Uint8Array(0))
      const { a, b, server } = await pair(new Store().add(p).add(empty).init())
      const res = await queryPeer(a, b.peerId, p.record.url, { body: true })
      assert.deepEqual(res.record, p.record)
      assert.ok(res.body != null)
      assert.equal(Buffer.compare(res.body, p.body), 0)
      assert.equal(server.stats.chunksSent, Math.ceil(200_000 / MAX_CHUNK_BYTES))
      assert.equal(server.stats.chunksSent, 4)
      assert.equal(server.stats.bodiesSent, 1)
      // an empty body is no chunks and an end
      const none = await queryPeer(a, b.peerId, empty.record.url, { body: true })
      assert.deepEqual(none.body, new Uint8Array(0))
      assert.equal(server.stats.chunksSent, 4)
      assert.equal(server.stats.bodiesSent, 2)
    })

    it('sends chunks of chunkBytes at most', async () => {
      const p = page('https://a.example/big', randomBytes(100_000))
      const { a, b, server } = await pair({ ...new Store().add(p).init(), chunkBytes: 16 * 1024 })
      const res = await queryPeer(a, b.peerId, p.record.url, { body: true })
      assert.equal(Buffer.compare(res.body!, p.body), 0)
      assert.equal(server.stats.chunksSent, 7)
    })

    it('sends no body for a record without a CID, even when asked', async () => {
      const r = record('https://a.example/moved', { status: 'redirect', httpStatus: 301, redirectTo: 'https://a.example/new' })
      const store = new Store().add({ record: r })
      const { a, b } = await pair(store.init())
      assert.deepEqual(await queryPeer(a, b.peerId, r.url, { body: true }), { record: r, verdict: 'redirect' })
      assert.equal(store.bodyReads, 0)
    })

    it('rejects with QueryBodyMismatchError when the body does not hash to the record\'s CID', async () => {
      const p = page('https://a.example/lie', randomBytes(70_000))
      const store = new Store().add(p)
      store.bodies.set(p.record.cid!, randomBytes(70_000))
      const { a, b } = await pair(store.init())
      await assert.rejects(queryPeer(a, b.peerId, p.record.url, { body: true }), (err: any) => {
        assert.equal(err.name, 'QueryBodyMismatchError')
        assert.equal(err.retryable, false)
        assert.equal(err.peer, b.peerId.toString())
        assert.equal(err.expected, p.record.cid)
        assert.equal(err.actual, cidOf(store.bodies.get(p.record.cid!)!))
        assert.deepEqual(err.record, p.record)
        return true
      })
    })

    it('rejects with a retryable QueryRemoteError, with the record, when the body is not stored there', async () => {
      const p = page('https://a.example/elsewhere', randomBytes(100))
      const store = new Store().add({ record: p.record })
      const { a, b } = await pair(store.init())
      await assert.rejects(queryPeer(a, b.peerId, p.record.url, { body: true }), (err: any) => {
        assert.equal(err.name, 'QueryRemoteError')
        assert.equal(err.retryable, true)
        assert.match(err.message, /is not stored here/)
        assert.deepEqual(err.record, p.record)
        return true
      })
      assert.equal(store.bodyReads, 1)
    })

    it('holds bodies to maxBodyBytes on both sides', async () => {
      const p = page('https://a.example/big', randomBytes(100_000))
      const hidden = page('https://a.example/undeclared', randomBytes(100_000), { size: undefined })
      delete hidden.record.size
      const { a, b } = await pair(new Store().add(p).add(hidden).init())
      // declared by the record's size: refused before any chunk
      await assert.rejects(queryPeer(a, b.peerId, p.record.url, { body: true, maxBodyBytes: 50_000 }), { name: 'QueryBodyTooLargeError', retryable: false, message: /has 100000 bytes/ })
      // not declared: refused once the chunks pass the cap
      await assert.rejects(queryPeer(a, b.peerId, hidden.record.url, { body: true, maxBodyBytes: 50_000 }), { name: 'QueryBodyTooLargeError', message: /larger than maxBodyBytes \(50000\)/ })
      // the server's own cap
      const c = await node()
      await introduce(a, c)
      await service(c, { ...new Store().add(hidden).init(), maxBodyBytes: 50_000 })
      await assert.rejects(queryPeer(a, c.peerId, hidden.record.url, { body: true }), { name: 'QueryRemoteError', retryable: false, message: /more than this peer sends \(50000\)/ })
      // and the connection still serves
      assert.equal((await queryPeer(a, b.peerId, p.record.url, { body: true })).body?.byteLength, 100_000)
    })

    it('answers a failed lookup with a retryable error, and a record it cannot send with a final one', async () => {
      const good = record('https://a.example/good', { etag: undefined, error: 'x'.repeat(10_000) })
      const { a, b, server } = await pair({
        lookup: async (url): Promise<Found> => {
          if (url.endsWith('/throws')) throw new Error('the store is closed')
          if (url.endsWith('/huge')) return { record: record(url, { etag: 'e'.repeat(1_000_000) }), verdict: 'fetched' }
          if (url.endsWith('/good')) return { record: good, verdict: 'v'.repeat(5000) }
          return { verdict: 'never seen' }
        },
        body: async () => undefined
      })
      await assert.rejects(queryPeer(a, b.peerId, 'https://a.example/throws'), { name: 'QueryRemoteError', retryable: true, message: /lookup failed: the store is closed/ })
      await assert.rejects(queryPeer(a, b.peerId, 'https://a.example/huge'), { name: 'QueryRemoteError', retryable: false, message: /record cannot be sent: record\.etag is longer/ })
      // free text is clipped to its cap, undefined fields are not sent
      const res = await queryPeer(a, b.peerId, 'https://a.example/good')
      assert.equal(res.verdict.length, 1024)
      assert.equal(res.record?.error?.length, 4096)
      assert.equal('etag' in res.record!, false)
      assert.equal(server.stats.errorsSent, 2)
    })

    it('times out promptly with a retryable QueryTimeoutError when the server never answers', async () => {
      let lookups = 0
      const { a, b } = await pair({
        lookup: async (url) => {
          lookups++
          if (url.endsWith('/stuck')) return await new Promise<Found>(() => {})
          return { verdict: 'never seen' }
        },
        body: async () => undefined
      })
      const started = Date.now()
      await assert.rejects(queryPeer(a, b.peerId, 'https://a.example/stuck', { timeout: 300 }), (err: any) => {
        assert.equal(err.name, 'QueryTimeoutError')
        assert.equal(err.retryable, true)
        assert.equal(err.peer, b.peerId.toString())
        assert.match(err.message, /no answer from .* within 300 ms/)
        return true
      })
      const took = Date.now() - started
      assert.ok(took >= 250 && took < 2000, `took ${took} ms`)
      assert.equal(lookups, 1)
      // the server still answers others
      assert.deepEqual(await queryPeer(a, b.peerId, 'https://a.example/other', { timeout: 2000 }), { verdict: 'never seen' })
    })

    it('answers a retryable error when its own lookup takes longer than its timeout', async () => {
      const { a, b, server } = await pair({ timeout: 200, lookup: async () => await new Promise<Found>(() => {}), body: async () => undefined })
      const started = Date.now()
      await assert.rejects(queryPeer(a, b.peerId, 'https://a.example/slow', { timeout: 5000 }), { name: 'QueryRemoteError', retryable: true, message: /the lookup took more than 200 ms/ })
      assert.ok(Date.now() - started < 2000)
      assert.equal(server.stats.timeouts, 1)
    })

    it('rejects with a retryable QueryUnreachableError when the service or the whole peer is stopped', async () => {
      const p = page('https://a.example/p', randomBytes(10))
      const { a, b, server } = await pair(new Store().add(p).init())
      assert.deepEqual((await queryPeer(a, b.peerId, p.record.url)).record, p.record)
      // the peer runs, but no longer serves queries
      await server.stop()
      await assert.rejects(queryPeer(a, b.peerId, p.record.url, { timeout: 5000 }), (err: any) => {
        assert.equal(err.name, 'QueryUnreachableError')
        assert.equal(err.retryable, true)
        assert.match(err.message, /cannot open a query stream/)
        return true
      })
      // the peer is gone
      await b.stop()
      const started = Date.now()
      await assert.rejects(queryPeer(a, b.peerId, p.record.url, { timeout: 5000 }), { name: 'QueryUnreachableError', retryable: true })
      assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`)
    })

    it('rejects with QueryUnreachableError when the service stops in the middle of a query', async () => {
      let lookups = 0
      const { a, b, server } = await pair({ lookup: async () => { lookups++; return await new Promise<Found>(() => {}) }, body: async () => undefined })
      const q = queryPeer(a, b.peerId, 'https://a.example/x', { timeout: 5000 })
      const settled = q.catch((err: Error) => err)
      await waitFor(() => lookups === 1, { message: 'the lookup' })
      const started = Date.now()
      await server.stop()
      const err: any = await settled
      assert.equal(err.name, 'QueryUnreachableError')
      assert.equal(err.retryable, true)
      assert.ok(Date.now() - started < 2000)
    })

    it('falls back to a replica when the owner is unreachable', async () => {
      const p = page('https://a.example/replicated', randomBytes(150_000))
      const [a, owner, replica] = await Promise.all([node(), node(), node()])
      await introduce(a, owner)
      await introduce(a, replica)
      await service(replica, new Store().add(p).init())
      await owner.stop()
      const ask = async (): Promise<Uint8Array | undefined> => {
        for (const peer of [owner.peerId, replica.peerId]) {
          try {
            return (await queryPeer(a, peer, p.record.url, { body: true, timeout: 3000 })).body
          } catch (err: any) {
            assert.equal(err.name, 'QueryUnreachableError')
          }
        }
      }
      const body = await ask()
      assert.equal(Buffer.compare(body!, p.body), 0)
    })

    it('serves several clients at once', async () => {
      const pages = Array.from({ length: 15 }, (_, i) => page(`https://a.example/${i}`, randomBytes(20_000 + i * 7_000)))
      const store = new Store()
      for (const p of pages) store.add(p)
      const [c1, c2, b] = await Promise.all([node(), node(), node()])
      await introduce(c1, b)
      await introduce(c2, b)
      const server = await service(b, store.init())
      // Connected first: yamux resets all but the first 10 streams opened while a connection is
      // still being set up on the other side (MaxEarlyStreamsError), a case the retryable
      // QueryUnreachableError covers.
      for (const c of [c1, c2]) {
        await c.dial(b.peerId)
        await waitFor(() => b.getConnections(c.peerId).length > 0, { message: 'the server to see the connection' })
      }
      const queries = [c1, c2].flatMap(c => pages.map(async p => {
        const res = await queryPeer(c, b.peerId, p.record.url, { body: true })
        assert.deepEqual(res.record, p.record)
        assert.equal(Buffer.compare(res.body!, p.body), 0)
      }))
      await Promise.all(queries)
      assert.equal(server.stats.bodiesSent, 30)
      assert.equal(server.stats.busy, 0)
    })

    it('refuses streams past maxInboundStreams with a retryable error', async () => {
      let release!: () => void
      const gate = new Promise<void>(resolve => { release = resolve })
      let lookups = 0
      const { a, b } = await pair({
        maxInboundStreams: 2,
        lookup: async () => { lookups++; await gate; return { verdict: 'never seen' } },
        body: async () => undefined
      })
      const held = [queryPeer(a, b.peerId, 'https://a.example/1'), queryPeer(a, b.peerId, 'https://a.example/2')]
      await waitFor(() => lookups === 2, { message: 'two lookups' })
      await assert.rejects(queryPeer(a, b.peerId, 'https://a.example/3'), { name: 'QueryUnreachableError', retryable: true })
      release()
      assert.deepEqual(await Promise.all(held), [{ verdict: 'never seen' }, { verdict: 'never seen' }])
      assert.deepEqual(await queryPeer(a, b.peerId, 'https://a.example/3'), { verdict: 'never seen' })
    })

    it('refuses with a retryable "busy" past maxConcurrent', async () => {
      let release!: () => void
      const gate = new Promise<void>(resolve => { release = resolve })
      let lookups = 0
      const { a, b, server } = await pair({
        maxConcurrent: 1,
        lookup: async () => { lookups++; await gate; return { verdict: 'never seen' } },
        body: async () => undefined
      })
      const first = queryPeer(a, b.peerId, 'https://a.example/1')
      await waitFor(() => lookups === 1, { message: 'the first lookup' })
      await assert.rejects(queryPeer(a, b.peerId, 'https://a.example/2'), { name: 'QueryRemoteError', retryable: true, message: /busy/ })
      release()
      assert.deepEqual(await first, { verdict: 'never seen' })
      assert.equal(server.stats.busy, 1)
    })

    it('rejects with AbortError when the caller aborts', async () => {
      const { a, b } = await pair({ lookup: async () => await new Promise<Found>(() => {}), body: async () => undefined })
      const controller = new AbortController()
      const q = queryPeer(a, b.peerId, 'https://a.example/x', { signal: controller.signal, timeout: 10_000 }).catch((err: Error) => err)
      setTimeout(() => { controller.abort() }, 100)
      const started = Date.now()
      const err: any = await q
      assert.equal(err.name, 'AbortError')
      assert.ok(Date.now() - started < 1000)
      await assert.rejects(queryPeer(a, b.peerId, 'https://a.example/x', { signal: AbortSignal.abort() }), { name: 'AbortError' })
    })

    it('closes an inbound stream that sends no request within timeout', async () => {
      const { a, b, server } = await pair({ ...new Store().init(), timeout: 200 })
      const log = captureLog()
      try {
        const raw = await a.dialProtocol(b.peerId, PROTOCOL)
        const started = Date.now()
        await assert.rejects(lpStream(raw).read({ signal: AbortSignal.timeout(5000) }), (err: any) => err.name !== 'AbortError' && err.name !== 'TimeoutError')
        assert.ok(Date.now() - started >= 150)
        assert.ok(log.lines.some(l => /took more than 200 ms/.test(l)), log.lines.join('\n'))
      } finally {
        log.restore()
      }
      assert.equal(server.stats.timeouts, 1)
      assert.equal(server.stats.malformedRequests, 0)
    })

    describe('a malformed request closes its stream, and the server goes on', () => {
      const cases: Array<[string, Uint8Array]> = [
        ['bytes that are not msgpack', Uint8Array.from([3, 0xc1, 0xc1, 0xc1])],
        ['an answer where a request belongs', frame({ t: 'record', id: 1, record: null, verdict: 'x' })],
        ['an unknown type', frame({ t: 'hello', id: 1 })],
        ['a URL over maxUrlLength', frame({ t: 'get', id: 1, url: 'https://a.example/' + 'x'.repeat(2048), body: false })],
        ['a body flag that is not a boolean', frame({ t: 'get', id: 1, url: 'https://a.example/', body: 1 })],
        ['a URL that is a number', frame({ t: 'get', id: 1, url: 42, body: false })],
        ['a frame over the request size', Uint8Array.from([...varint(1024 * 1024), 0x80])]
      ]

      for (const [what, bytes] of cases) {
        it(what, async () => {
          const p = page('https://a.example/ok', randomBytes(1000))
          const store = new Store().add(p)
          const { a, b, server } = await pair(store.init())
          const log = captureLog()
          try {
            const raw = await a.dialProtocol(b.peerId, PROTOCOL)
            const lp = lpStream(raw)
            raw.send(bytes)
            await assert.rejects(lp.read({ signal: AbortSignal.timeout(5000) }), (err: any) => {
              assert.notEqual(err.name, 'AbortError', 'the server did not close the stream')
              assert.notEqual(err.name, 'TimeoutError', 'the server did not close the stream')
              return true
            })
            await waitFor(() => server.stats.malformedRequests === 1, { message: 'the malformed request to be counted' })
            assert.ok(log.lines.some(l => l.includes('closing query stream from')), `logged: ${log.lines.join('\n')}`)
          } finally {
            log.restore()
          }
          assert.equal(store.lookups, 0)
          const res = await queryPeer(a, b.peerId, p.record.url, { body: true })
          assert.equal(Buffer.compare(res.body!, p.body), 0)
        })
      }
    })

    describe('a malformed answer rejects the query, by the caps', () => {
      const body = randomBytes(1000)
      const good = page('https://a.example/p', body)
      type Req = { id: number, url: string, body: boolean }
      const cases: Array<[string, (req: Req) => Uint8Array[], string, RegExp]> = [
        ['a length prefix claiming 100 MiB', () => [Uint8Array.from([...varint(100 * 1024 * 1024), 0x80])], 'QueryProtocolError', /malformed answer: Message length/],
        ['a chunk of 1,000,000 bytes', (req) => [frame({ t: 'record', id: req.id, record: good.record, verdict: '' }), frame({ t: 'chunk', id: req.id, data: Buffer.alloc(1_000_000) })], 'QueryProtocolError', /more than maxChunkBytes/],
        ['a record with a 1 MB string field', (req) => [frame({ t: 'record', id: req.id, record: { ...good.record, error: 'e'.repeat(1_000_000) }, verdict: '' })], 'QueryProtocolError', /record\.error is longer than 4096/],
        ['a record with a 1 MB extracted field', (req) => [frame({ t: 'record', id: req.id, record: { ...good.record, fields: { text: 'x'.repeat(1_000_000) } }, verdict: '' })], 'QueryProtocolError', /record\.fields\["text"\]/],
        ['not msgpack', () => [Uint8Array.from([3, 0xc1, 0xc1, 0xc1])], 'QueryProtocolError', /not a msgpack value/],
        ['a chunk before the record', (req) => [frame({ t: 'chunk', id: req.id, data: body })], 'QueryProtocolError', /a chunk message came before the record/],
        ['an answer to another query', (req) => [frame({ t: 'record', id: (req.id + 1) % 2 ** 32, record: null, verdict: '' })], 'QueryProtocolError', /an answer to query/],
        ['a request instead of an answer', (req) => [frame({ t: 'get', id: req.id, url: req.url, body: false })], 'QueryProtocolError', /a get message is not an answer/],
        ['an end that disagrees with the chunks', (req) => [frame({ t: 'record', id: req.id, record: good.record, verdict: '' }), frame({ t: 'chunk', id: req.id, data: body }), frame({ t: 'end', id: req.id, bytes: 999 })], 'QueryProtocolError', /ends at 1000 bytes, the end message says 999/],
        ['a second record in the body', (req) => [frame({ t: 'record', id: req.id, record: good.record, verdict: '' }), frame({ t: 'record', id: req.id, record: good.record, verdict: '' })], 'QueryProtocolError', /a record message in the body/],
        ['more chunks than maxBodyBytes', (req) => [frame({ t: 'record', id: req.id, record: { ...good.record, size: undefined }, verdict: '' }), ...Array.from({ length: 40 }, () => frame({ t: 'chunk', id: req.id, data: Buffer.alloc(60_000) }))], 'QueryBodyTooLargeError', /larger than maxBodyBytes \(2000000\)/],
        ['the stream closed before the body', (req) => [frame({ t: 'record', id: req.id, record: good.record, verdict: '' })], 'QueryUnreachableError', /closed the stream before the answer was complete/]
      ]

      for (const [what, answer, name, message] of cases) {
        it(what, async () => {
          const [a, b, c] = await Promise.all([node(), node(), node()])
          await introduce(a, b)
          await introduce(a, c)
          const requests: Req[] = []
          await b.handle(PROTOCOL, async (stream: Stream) => {
            try {
              const lp = lpStream(stream)
              const req = unpackr.unpack((await lp.read()).subarray()) as Req
              requests.push(req)
              for (const f of answer(req)) {
                if (!stream.send(f)) await stream.onDrain()
              }
              await stream.close()
            } catch {
              // the client aborted the stream
            }
          })
          await assert.rejects(queryPeer(a, b.peerId, good.record.url, { body: true, maxBodyBytes: 2_000_000, timeout: 5000 }), (err: any) => {
            assert.equal(err.name, name, err.stack)
            assert.match(err.message, message)
            assert.equal(err.peer, b.peerId.toString())
            return true
          })
          assert.equal(requests.length, 1)
          assert.deepEqual(requests[0], { t: 'get', id: requests[0].id, url: good.record.url, body: true })
          // the client goes on: an honest peer is asked next
          await service(c, new Store().add(good).init())
          const res = await queryPeer(a, c.peerId, good.record.url, { body: true })
          assert.equal(Buffer.compare(res.body!, body), 0)
        })
      }
    })
  })
})

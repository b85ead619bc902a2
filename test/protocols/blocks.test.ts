import '../../node/polyfills.js'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { format } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import debug from 'debug'
import { Packr } from 'msgpackr'
import { BlockStore, cidOf } from '../../node/blocks.js'
import { Store } from '../../node/db.js'
import {
  Assembly, BlockClient, BlockService, blockFrames, decodeMessage, encodeFrame, maxFrameBytes, PROTOCOL, validateMessage
} from '../../protocols/blocks/index.js'
import { tempDir } from '../utils/tmp.js'
import type { BlockClientInit, BlockMessage, BlockServiceInit, Message, PutMessage } from '../../protocols/blocks/index.js'
import type { TempDir } from '../utils/tmp.js'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { createNode, introduce, waitUntil as waitFor, deferred, track, type Deferred } from '../utils/protocol-nodes.js'

// ---- helpers ----

const KiB = 1024
const MiB = 1024 * KiB


/** Let `from` dial `to` by peer id. */



/** Settle state of a promise, for asserting that it is still pending. */

/** Captures what `shoal:blocks` logs while a test runs. */
function captureLog (): { lines: string[], restore: () => void } {
  const lines: string[] = []
  const saved = debug.disable()
  const savedLog = debug.log
  debug.enable(saved === '' ? 'shoal:blocks' : `${saved},shoal:blocks`)
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

const packr = new Packr({ useRecords: false, variableMapSize: true })
const varint = (n: number): number[] => {
  const out: number[] = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  out.push(n)
  return out
}
/** A frame of any value, valid or not. */
const frame = (value: unknown): Uint8Array => {
  const body = packr.pack(value)
  return Uint8Array.from([...varint(body.byteLength), ...body])
}
const bytesOf = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('protocols/blocks', function () {
  describe('messages and codec', () => {
    const limits = { maxBlockBytes: 10 * MiB, maxChunkBytes: 256 * KiB, maxHasCids: 1024 }
    const cid = cidOf(bytesOf('hello'))
    /** Decode a frame made by encodeFrame: skip its varint length. */
    const decodeFrame = (f: Uint8Array): Message => {
      let i = 0
      while (f[i] >= 0x80) i++
      return decodeMessage(f.subarray(i + 1), limits)
    }

    it('round-trips every message type', () => {
      const msgs: Message[] = [
        { t: 'put', id: 1, cid, data: bytesOf('hello') },
        { t: 'has', id: 2, cids: [cid, cidOf(bytesOf('x'))] },
        { t: 'get', id: 3, cid },
        { t: 'ok', id: 4 },
        { t: 'error', id: 5, error: 'disk full', retry: true },
        { t: 'have', id: 6, have: [true, false] },
        { t: 'block', id: 7, data: bytesOf('hello') },
        { t: 'missing', id: 8 },
        { t: 'chunk', id: 9, data: Uint8Array.from([1, 2, 3]) }
      ]
      for (const m of msgs) {
        const got = decodeFrame(encodeFrame(m)) as any
        assert.deepEqual({ ...got, ...('data' in got ? { data: new Uint8Array(got.data) } : {}) }, { ...m, ...('data' in m ? { data: new Uint8Array(m.data) } : {}) })
      }
    })

    it('cuts a 3 MB block into a head and chunks of at most maxChunkBytes, and puts it back together', () => {
      const data = randomBytes(3_000_000)
      const frames = [...blockFrames({ t: 'put', id: 42, cid: cidOf(data) }, data, 256 * KiB)]
      assert.equal(frames.length, Math.ceil(3_000_000 / (256 * KiB)))
      for (const f of frames) assert.ok(f.byteLength <= maxFrameBytes(limits) + 3, `a frame of ${f.byteLength} bytes`)
      const head = decodeFrame(frames[0]) as PutMessage
      assert.equal(head.t, 'put')
      assert.equal(head.size, 3_000_000)
      assert.equal(head.data.byteLength, 256 * KiB)
      const a = new Assembly(head, head.size as number)
      for (const f of frames.slice(1)) a.add(decodeFrame(f))
      assert.equal(a.complete, true)
      assert.equal(cidOf(a.bytes()), cidOf(data))
      // a block that fits in one frame carries no size
      const one = [...blockFrames({ t: 'block', id: 1 }, data.subarray(0, 1000), 256 * KiB)]
      assert.equal(one.length, 1)
      assert.equal((decodeFrame(one[0]) as BlockMessage).size, undefined)
    })

    it('refuses a message between a head and its chunks, and chunks past the size', () => {
      const head: PutMessage = { t: 'put', id: 1, cid, data: new Uint8Array(10), size: 25 }
      const a = new Assembly(head, 25)
      assert.throws(() => a.add({ t: 'get', id: 2, cid }), { name: 'InvalidMessageError', message: /before block 1 was complete/ })
      assert.throws(() => a.add({ t: 'chunk', id: 2, data: new Uint8Array(5) }), { name: 'InvalidMessageError', message: /chunk of 2/ })
      a.add({ t: 'chunk', id: 1, data: new Uint8Array(10) })
      assert.throws(() => a.add({ t: 'chunk', id: 1, data: new Uint8Array(6) }), { name: 'InvalidMessageError', message: /more than its size/ })
    })

    it('applies the caps instead of truncating', () => {
      const small = { maxBlockBytes: 1000, maxChunkBytes: 100, maxHasCids: 3 }
      const bin = (n: number): Uint8Array => new Uint8Array(n)
      assert.equal((validateMessage({ t: 'put', id: 1, cid, data: bin(100) }, small) as PutMessage).data.byteLength, 100)
      assert.throws(() => validateMessage({ t: 'put', id: 1, cid, data: bin(101) }, small), { name: 'InvalidMessageError', message: /^data holds 101 bytes, more than 100/ })
      assert.throws(() => validateMessage({ t: 'chunk', id: 1, data: bin(101) }, small), { name: 'InvalidMessageError', message: /^data holds 101 bytes/ })
      assert.equal((validateMessage({ t: 'put', id: 1, cid, data: bin(100), size: 1000 }, small) as PutMessage).size, 1000)
      assert.throws(() => validateMessage({ t: 'put', id: 1, cid, data: bin(100), size: 1001 }, small), { name: 'InvalidMessageError', message: /^size must be an integer from 100 to 1000/ })
      assert.throws(() => validateMessage({ t: 'block', id: 1, data: bin(100), size: 2 ** 40 }, small), { name: 'InvalidMessageError', message: /^size/ })
      assert.throws(() => validateMessage({ t: 'chunk', id: 1, data: bin(0) }, small), { name: 'InvalidMessageError', message: /at least one byte/ })
      assert.throws(() => validateMessage({ t: 'put', id: 1, cid, data: 'hello' }, small), { name: 'InvalidMessageError', message: /^data must be bytes/ })
      assert.throws(() => validateMessage({ t: 'put', id: 1, cid, data: [1, 2, 3] }, small), { name: 'InvalidMessageError', message: /^data must be bytes/ })
      assert.throws(() => validateMessage({ t: 'has', id: 1, cids: [cid, cid, cid, cid] }, small), { name: 'InvalidMessageError', message: /more than maxHasCids \(3\)/ })
      assert.throws(() => validateMessage({ t: 'has', id: 1, cids: [] }, small), { name: 'InvalidMessageError' })
      assert.throws(() => validateMessage({ t: 'has', id: 1, cids: [cid, 'b'.repeat(129)] }, small), { name: 'InvalidMessageError', message: /^cids\[1\]/ })
      assert.throws(() => validateMessage({ t: 'get', id: 1, cid: 'has space' }, small), { name: 'InvalidMessageError', message: /^cid/ })
      assert.throws(() => validateMessage({ t: 'have', id: 1, have: [true, 1] }, small), { name: 'InvalidMessageError', message: /^have\[1\]/ })
      assert.throws(() => validateMessage({ t: 'have', id: 1, have: [true, true, true, true] }, small), { name: 'InvalidMessageError', message: /maxHasCids/ })
      assert.throws(() => validateMessage({ t: 'error', id: 1, error: 'e'.repeat(1025), retry: true }, small), { name: 'InvalidMessageError', message: /^error/ })
      assert.throws(() => validateMessage({ t: 'error', id: 1, error: 'e', retry: 'yes' }, small), { name: 'InvalidMessageError', message: /^retry/ })
      assert.throws(() => validateMessage({ t: 'ok', id: -1 }, small), { name: 'InvalidMessageError', message: /^id/ })
      assert.throws(() => validateMessage({ t: 'ok', id: 2 ** 32 }, small), { name: 'InvalidMessageError', message: /^id/ })
      assert.throws(() => validateMessage({ t: 'toString' }, small), { name: 'InvalidMessageError', message: /unknown message type/ })
      assert.throws(() => validateMessage(new Uint8Array(3), small), { name: 'InvalidMessageError', message: /must be a map/ })
    })

    it('rejects a small frame that declares a huge array', () => {
      assert.throws(() => decodeMessage(Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff]), limits), { name: 'InvalidMessageError' })
      assert.throws(() => decodeMessage(Uint8Array.from([0xd6, 0x69, 0, 0, 0, 1, 0x90]), limits), { name: 'InvalidMessageError', message: /^not a msgpack value: Structured clone/ })
    })
  })

  describe('BlockService and BlockClient', function () {
    this.timeout(30_000)

    interface Peer {
      libp2p: Libp2p
      id: string
      /** The real block store behind the service. */
      blocks: BlockStore
      service: BlockService
      client: BlockClient
    }

    const cleanups: Array<() => Promise<void>> = []

    afterEach(async function () {
      this.timeout(20_000)
      for (const fn of cleanups.splice(0).reverse()) {
        try { await fn() } catch {}
      }
    })

    /** A real LevelDB and block store in a fresh temp dir, closed and removed after the test. */
    async function blockStore (): Promise<BlockStore> {
      const dir: TempDir = await tempDir('shoal-blocks-wire-')
      const store = new Store(join(dir.path, 'db'))
      await store.open()
      const blocks = new BlockStore(store, join(dir.path, 'blocks'))
      await blocks.open()
      cleanups.push(async () => {
        await blocks.close()
        await store.close()
        await dir.remove()
      })
      return blocks
    }

    async function node (privateKey?: PrivateKey): Promise<Libp2p> {
      const n = await createNode(privateKey)
      cleanups.push(async () => { await n.stop() })
      return n
    }

    async function service (libp2p: Libp2p, init: BlockServiceInit): Promise<BlockService> {
      const s = new BlockService({ libp2p }, init)
      await s.start()
      cleanups.push(async () => { await s.stop() })
      return s
    }

    async function client (libp2p: Libp2p, init: BlockClientInit = {}): Promise<BlockClient> {
      const c = new BlockClient({ libp2p }, init)
      await c.start()
      cleanups.push(async () => { await c.stop() })
      return c
    }

    /**
     * A peer with a real block store served on `/shoal/blocks/1.0.0`, and a client. `wrap` may put
     * something between the service and the store (a gate, a counter).
     */
    async function peer (opts: { service?: Partial<BlockServiceInit>, client?: BlockClientInit, wrap?: (b: BlockStore) => BlockServiceInit['store'], key?: PrivateKey } = {}): Promise<Peer> {
      const libp2p = await node(opts.key)
      const blocks = await blockStore()
      const store = opts.wrap?.(blocks) ?? blocks
      return {
        libp2p,
        id: libp2p.peerId.toString(),
        blocks,
        service: await service(libp2p, { store, ...opts.service }),
        client: await client(libp2p, opts.client)
      }
    }

    /** Two peers, `a` knowing `b`'s address. */
    async function pair (bOpts: Parameters<typeof peer>[0] = {}, aOpts: Parameters<typeof peer>[0] = {}): Promise<{ a: Peer, b: Peer }> {
      const [a, b] = await Promise.all([peer(aOpts), peer(bOpts)])
      await introduce(a.libp2p, b.libp2p)
      return { a, b }
    }

    /** A store in front of `blocks` whose puts wait for `gate`, counting those that run. */
    function gated (gate: Deferred, counter: { started: number, running: number, max: number } = { started: 0, running: 0, max: 0 }): (b: BlockStore) => BlockServiceInit['store'] {
      return (b) => ({
        put: async (bytes: Uint8Array) => {
          counter.started++
          counter.running++
          counter.max = Math.max(counter.max, counter.running)
          try {
            await gate.promise
            return await b.put(bytes)
          } finally {
            counter.running--
          }
        },
        get: async (cid: string) => await b.get(cid),
        has: async (cid: string) => await b.has(cid)
      })
    }

    it('validates its options, naming the one at fault', async () => {
      const libp2p = await node()
      const store = await blockStore()
      assert.throws(() => new BlockService({ libp2p }, { store, window: 0 }), { name: 'ConfigError', message: /^window must be an integer from 1/ })
      assert.throws(() => new BlockService({ libp2p }, { store, maxChunkBytes: 10 }), { name: 'ConfigError', message: /^maxChunkBytes must be an integer from 1024/ })
      assert.throws(() => new BlockService({ libp2p }, { store, maxBlockBytes: 1.5 }), { name: 'ConfigError', message: /^maxBlockBytes/ })
      assert.throws(() => new BlockService({ libp2p }, { store, readTimeout: Infinity }), { name: 'ConfigError', message: /^readTimeout/ })
      assert.throws(() => new BlockService({ libp2p }, {} as any), { name: 'ConfigError', message: /^store must be/ })
      assert.throws(() => new BlockClient({ libp2p }, { timeout: 0 }), { name: 'ConfigError', message: /^timeout/ })
      assert.throws(() => new BlockClient({ libp2p }, { maxHasCids: 0 }), { name: 'ConfigError', message: /^maxHasCids/ })
      assert.throws(() => new BlockClient({ libp2p }, { maxPendingBytes: -1 }), { name: 'ConfigError', message: /^maxPendingBytes/ })
    })

    it('puts then gets a small and a 3 MB block, stored on the remote under their CIDs', async () => {
      const { a, b } = await pair()
      const small = bytesOf('<html><body>hello</body></html>')
      const large = randomBytes(3_000_000)
      assert.equal(await a.client.put(b.id, small), cidOf(small))
      const messagesBefore = a.client.stats.messagesSent
      assert.equal(await a.client.put(b.id, large), cidOf(large))
      // the large block went as a head and chunks of at most 256 KiB
      assert.equal(a.client.stats.messagesSent - messagesBefore, Math.ceil(3_000_000 / (256 * KiB)))
      // durable on b: its own store has them
      assert.deepEqual(Buffer.from(await b.blocks.get(cidOf(small)) as Uint8Array), Buffer.from(small))
      assert.deepEqual(Buffer.from(await b.blocks.get(cidOf(large)) as Uint8Array), large)
      // and a reads them back
      assert.deepEqual(Buffer.from(await a.client.get(b.id, cidOf(small)) as Uint8Array), Buffer.from(small))
      const servedBefore = b.service.stats.messagesSent
      assert.deepEqual(Buffer.from(await a.client.get(b.id, cidOf(large)) as Uint8Array), large)
      assert.equal(b.service.stats.messagesSent - servedBefore, Math.ceil(3_000_000 / (256 * KiB)))
      assert.equal(await a.client.get(b.id, cidOf(bytesOf('never stored'))), undefined)
      assert.equal(await a.blocks.has(cidOf(large)), false, 'a get does not store on the asking peer')

      assert.equal(a.client.stats.blocksSent, 2)
      assert.equal(a.client.stats.blocksAcked, 2)
      assert.equal(a.client.stats.blockBytesSent, small.byteLength + 3_000_000)
      assert.equal(a.client.stats.blocksReceived, 2)
      assert.equal(a.client.stats.blockBytesReceived, small.byteLength + 3_000_000)
      assert.equal(a.client.stats.blocksMissing, 1)
      assert.equal(a.client.stats.streamsOpened, 1)
      assert.ok(a.client.stats.bytesSent > 3_000_000 && a.client.stats.bytesSent < 3_000_000 + 4 * KiB, `${a.client.stats.bytesSent} bytes sent`)
      assert.equal(b.service.stats.bytesReceived, a.client.stats.bytesSent)
      assert.equal(b.service.stats.bytesSent, a.client.stats.bytesReceived)
      assert.equal(b.service.stats.blocksStored, 2)
      assert.equal(b.service.stats.blocksServed, 2)
      assert.equal(b.service.stats.streamsInbound, 1)
    })

    it('takes a burst of large puts (regression: one 16 MiB yamux frame overflowed a 4 MiB read buffer)', async () => {
      const { a, b } = await pair()
      const bodies = Array.from({ length: 10 }, () => randomBytes(3_000_000))
      const cids = await Promise.all(bodies.map(async x => await a.client.put(b.id, x)))
      assert.deepEqual(cids, bodies.map(x => cidOf(x)))
      assert.equal(a.client.stats.streamsOpened, 1)
      assert.equal(b.service.stats.malformedMessages, 0)
      for (let i = 0; i < bodies.length; i++) assert.deepEqual(Buffer.from(await b.blocks.get(cids[i]) as Uint8Array), bodies[i])
    })

    it('answers has for present and absent blocks, in order, splitting long lists', async () => {
      const { a, b } = await pair({ service: { maxHasCids: 10 } }, { client: { maxHasCids: 10 } })
      // 25 CIDs, every third one stored on b
      const expected = Array.from({ length: 25 }, (_, i) => i % 3 === 0)
      const cids: string[] = []
      for (let i = 0; i < 25; i++) {
        const body = bytesOf(`page ${i}`)
        if (expected[i]) await b.blocks.put(body)
        cids.push(cidOf(body))
      }
      assert.deepEqual(await a.client.has(b.id, cids), expected)
      assert.equal(b.service.stats.hasRequests, 3)
      assert.equal(b.service.stats.cidsChecked, 25)
      assert.deepEqual(await a.client.has(b.id, []), [])
      await assert.rejects(a.client.has(b.id, ['not a cid']), { name: 'InvalidBlockRequestError', message: /cids\[0\]/ })
      await assert.rejects(a.client.get(b.id, ''), { name: 'InvalidBlockRequestError' })
    })

    it('refuses a put whose bytes do not match its CID, and does not store it', async () => {
      const { a, b } = await pair()
      const limits = { maxBlockBytes: 10 * MiB, maxChunkBytes: 256 * KiB, maxHasCids: 1024 }
      const raw = await a.libp2p.dialProtocol(b.libp2p.peerId, PROTOCOL)
      const lp = lpStream(raw)
      const claimed = cidOf(bytesOf('what the sender claims'))
      const sent = bytesOf('something else entirely')
      raw.send(encodeFrame({ t: 'put', id: 7, cid: claimed, data: sent }))
      assert.deepEqual(decodeMessage(await lp.read({ signal: AbortSignal.timeout(5000) }), limits), {
        t: 'error', id: 7, retry: false, error: `the ${sent.byteLength} bytes sent do not match ${claimed}`
      })
      // the same through the chunked path: 600 KB whose last byte was flipped
      const big = randomBytes(600_000)
      const bigCid = cidOf(big)
      big[big.length - 1] ^= 0xff
      for (const f of blockFrames({ t: 'put', id: 8, cid: bigCid }, big, 256 * KiB)) raw.send(f)
      const reply = decodeMessage(await lp.read({ signal: AbortSignal.timeout(5000) }), limits)
      assert.equal(reply.t, 'error')
      assert.equal((reply as any).retry, false)
      for (const cid of [claimed, cidOf(sent), bigCid, cidOf(big)]) assert.equal(await b.blocks.has(cid), false)
      assert.equal(b.service.stats.blocksRefused, 2)
      assert.equal(b.service.stats.blocksStored, 0)
      // the stream is still good: a put that matches is stored
      const good = bytesOf('honest bytes')
      raw.send(encodeFrame({ t: 'put', id: 9, cid: cidOf(good), data: good }))
      assert.deepEqual(decodeMessage(await lp.read({ signal: AbortSignal.timeout(5000) }), limits), { t: 'ok', id: 9 })
      assert.equal(await b.blocks.has(cidOf(good)), true)
      assert.equal(b.service.stats.malformedMessages, 0)
    })

    it('rejects a get whose bytes do not match the CID with BlockMismatchError', async () => {
      const wrong = bytesOf('not the block you asked for')
      const asked = cidOf(bytesOf('the block asked for'))
      const { a, b } = await pair({ wrap: (blocks) => ({ put: async (x) => await blocks.put(x), has: async () => true, get: async () => wrong }) })
      await assert.rejects(a.client.get(b.id, asked), (err: any) => {
        assert.equal(err.name, 'BlockMismatchError')
        assert.equal(err.retryable, false)
        assert.equal(err.peer, b.id)
        assert.equal(err.cid, asked)
        return true
      })
      assert.equal(a.client.stats.mismatches, 1)
      assert.equal(a.client.stats.blocksReceived, 0)
      // the stream survives
      assert.equal(await a.client.put(b.id, wrong), cidOf(wrong))
      assert.equal(a.client.stats.streamsOpened, 1)
    })

    it('acks a put only once the store has it', async () => {
      const gate = deferred()
      const counter = { started: 0, running: 0, max: 0 }
      const { a, b } = await pair({ wrap: gated(gate, counter) })
      const body = bytesOf('durable, then acked')
      const put = track(a.client.put(b.id, body))
      await waitFor(() => counter.started === 1, 'the store put to start')
      await new Promise(resolve => setTimeout(resolve, 50))
      assert.equal(put.settled, false)
      assert.equal(a.client.inFlight(b.id), 1)
      gate.resolve()
      assert.equal(await put.promise, cidOf(body))
      assert.equal(await b.blocks.has(cidOf(body)), true)
    })

    it('completes hundreds of concurrent puts from two peers, all readable, within the window', async () => {
      const gate = deferred()
      gate.resolve()
      const counter = { started: 0, running: 0, max: 0 }
      const b = await peer({ wrap: gated(gate, counter), service: { window: 16 } })
      const [a, c] = await Promise.all([peer({ client: { window: 16 } }), peer({ client: { window: 16 } })])
      await introduce(a.libp2p, b.libp2p)
      await introduce(c.libp2p, b.libp2p)
      const bodies = Array.from({ length: 600 }, (_, i) => Buffer.concat([bytesOf(`page ${i} `), randomBytes(500 + (i * 97) % 30_000)]))
      const cids = await Promise.all(bodies.map(async (body, i) => await (i % 2 === 0 ? a : c).client.put(b.id, body)))
      assert.deepEqual(cids, bodies.map(x => cidOf(x)))
      assert.equal(b.service.stats.blocksStored, 600)
      assert.ok(counter.max <= 32, `${counter.max} store puts ran at once (two streams, window 16)`)
      assert.ok(counter.max > 1, 'puts ran concurrently')
      assert.equal(a.client.stats.streamsOpened, 1)
      assert.equal(c.client.stats.streamsOpened, 1)
      assert.deepEqual(await a.client.has(b.id, cids), cids.map(() => true))
      const back = await Promise.all(cids.map(async cid => await c.client.get(b.id, cid)))
      for (let i = 0; i < bodies.length; i++) assert.deepEqual(Buffer.from(back[i] as Uint8Array), bodies[i])
      for (let i = 0; i < bodies.length; i += 37) assert.deepEqual(Buffer.from(await b.blocks.get(cids[i]) as Uint8Array), bodies[i])
    })

    it('holds requests beyond the window, and puts beyond maxPendingBytes, until answers come', async () => {
      const gate = deferred()
      const counter = { started: 0, running: 0, max: 0 }
      const { a, b } = await pair({ wrap: gated(gate, counter) }, { client: { window: 4, maxPendingBytes: 100 * KiB } })
      // 30 KB blocks: the byte budget lets three out, not the window's four
      const bodies = Array.from({ length: 10 }, () => randomBytes(30 * KiB))
      const puts = bodies.map(x => track(a.client.put(b.id, x)))
      await waitFor(() => counter.started === 3, 'three puts at the store')
      await new Promise(resolve => setTimeout(resolve, 50))
      assert.equal(counter.started, 3)
      assert.equal(a.client.inFlight(b.id), 3)
      assert.equal(a.client.queued(b.id), 7)
      // small requests still fill the window
      const has = track(a.client.has(b.id, [cidOf(bodies[0])]))
      await waitFor(() => has.settled, 'the has')
      assert.deepEqual(has.value, [false])
      assert.equal(puts.filter(p => p.settled).length, 0)
      gate.resolve()
      await Promise.all(puts.map(async p => await p.promise))
      assert.equal(counter.max, 3)
      assert.equal(a.client.inFlight(b.id), 0)
      assert.equal(a.client.queued(b.id), 0)
    })

    it('runs at most its own window, and its own byte budget, of puts per stream, whatever the client sends', async () => {
      const gate = deferred()
      const counter = { started: 0, running: 0, max: 0 }
      const { a, b } = await pair({ wrap: gated(gate, counter), service: { window: 2 } }, { client: { window: 8 } })
      const puts = Array.from({ length: 8 }, () => a.client.put(b.id, randomBytes(1000)))
      await waitFor(() => counter.started === 2 && a.client.inFlight(b.id) === 8, 'two puts at the store, eight in flight')
      await new Promise(resolve => setTimeout(resolve, 50))
      assert.equal(counter.started, 2)
      gate.resolve()
      await Promise.all(puts)
      assert.equal(counter.max, 2)

      // 30 KB puts against a budget of 64 KiB: the third takes it over, and reading stops there
      const gate2 = deferred()
      const counter2 = { started: 0, running: 0, max: 0 }
      const { a: c, b: d } = await pair({ wrap: gated(gate2, counter2), service: { maxPendingBytes: 64 * KiB } })
      const more = Array.from({ length: 20 }, () => c.client.put(d.id, randomBytes(30_000)))
      await waitFor(() => counter2.started === 3 && c.client.inFlight(d.id) === 20, 'three puts at the store, twenty in flight')
      await new Promise(resolve => setTimeout(resolve, 50))
      assert.equal(counter2.started, 3)
      gate2.resolve()
      await Promise.all(more)
      assert.equal(counter2.max, 3)
      assert.equal(d.service.stats.blocksStored, 20)
    })

    it('reads blocks for gets within maxPendingBytes, counting one being read as maxBlockBytes', async () => {
      const gate = deferred()
      let reading = 0
      let maxReading = 0
      const { a, b } = await pair({
        service: { maxBlockBytes: 64 * KiB, maxPendingBytes: 128 * KiB },
        wrap: (blocks) => ({
          put: async (x) => await blocks.put(x),
          has: async (c) => await blocks.has(c),
          get: async (c) => {
            reading++
            maxReading = Math.max(maxReading, reading)
            try {
              await gate.promise
              return await blocks.get(c)
            } finally {
              reading--
            }
          }
        })
      }, { client: { maxBlockBytes: 64 * KiB } })
      const bodies = Array.from({ length: 8 }, () => randomBytes(60 * KiB))
      for (const x of bodies) await b.blocks.put(x)
      const gets = bodies.map(async x => await a.client.get(b.id, cidOf(x)))
      await waitFor(() => reading === 2 && a.client.inFlight(b.id) === 8, 'two blocks being read, eight gets in flight')
      await new Promise(resolve => setTimeout(resolve, 50))
      assert.equal(reading, 2)
      gate.resolve()
      const got = await Promise.all(gets)
      for (let i = 0; i < bodies.length; i++) assert.deepEqual(Buffer.from(got[i] as Uint8Array), bodies[i])
      assert.equal(maxReading, 2)
    })

    it('rejects a put with a retryable BlocksRequestError when the store fails', async () => {
      const { a, b } = await pair({ wrap: (blocks) => ({ put: async () => { throw new Error('disk full') }, get: async (c) => await blocks.get(c), has: async (c) => await blocks.has(c) }) })
      await assert.rejects(a.client.put(b.id, bytesOf('x')), (err: any) => {
        assert.equal(err.name, 'BlocksRequestError')
        assert.equal(err.retryable, true)
        assert.equal(err.peer, b.id)
        assert.match(err.message, /disk full/)
        return true
      })
      assert.equal(b.service.stats.putErrors, 1)
      assert.equal(a.client.stats.errorReplies, 1)
      // the stream survives an error reply
      assert.equal(await a.client.get(b.id, cidOf(bytesOf('x'))), undefined)
      assert.equal(a.client.stats.streamsOpened, 1)
    })

    it('refuses requests the protocol cannot carry, sending nothing', async () => {
      const { a, b } = await pair({}, { client: { maxBlockBytes: 1 * MiB } })
      await assert.rejects(a.client.put(b.id, new Uint8Array(1 * MiB + 1)), { name: 'InvalidBlockRequestError', message: /larger than maxBlockBytes/ })
      await assert.rejects(a.client.put(b.id, 'text' as any), { name: 'InvalidBlockRequestError' })
      await assert.rejects(a.client.put('not-a-peer-id', bytesOf('x')), { name: 'BlocksRequestError', retryable: false })
      assert.equal(a.client.stats.messagesSent, 0)
    })

    it('closes the stream when a get answer is larger than its maxBlockBytes', async () => {
      const { a, b } = await pair({ service: { maxBlockBytes: 4 * MiB } }, { client: { maxBlockBytes: 1 * MiB } })
      const big = randomBytes(2 * MiB)
      await b.blocks.put(big)
      const log = captureLog()
      try {
        await assert.rejects(a.client.get(b.id, cidOf(big)), { name: 'BlocksRequestError', retryable: true, message: /size must be an integer from .* to 1048576/ })
        assert.ok(log.lines.some(l => l.includes('closing blocks stream to')), log.lines.join('\n'))
      } finally {
        log.restore()
      }
      assert.equal(a.client.stats.malformedMessages, 1)
      // a smaller block comes through on a new stream
      const small = randomBytes(1000)
      await b.blocks.put(small)
      assert.deepEqual(Buffer.from(await a.client.get(b.id, cidOf(small)) as Uint8Array), small)
      assert.equal(a.client.stats.streamsOpened, 2)
    })

    it('rejects pending requests promptly when the remote stops, and asks it again once it is back', async () => {
      const key = await generateKeyPair('Ed25519')
      const counter = { started: 0, running: 0, max: 0 }
      const { a, b } = await pair({ key, wrap: gated(deferred(), counter) })
      const puts = Array.from({ length: 3 }, (_, i) => track(a.client.put(b.id, randomBytes(1000 + i))))
      const big = track(a.client.put(b.id, randomBytes(3_000_000)))
      await waitFor(() => counter.started === 4, 'four puts at the store')
      const stopped = Date.now()
      await b.libp2p.stop()
      await waitFor(() => [...puts, big].every(p => p.settled), 'the puts to settle', 5000)
      assert.ok(Date.now() - stopped < 2000, `settled ${Date.now() - stopped} ms after the stop`)
      for (const p of [...puts, big]) {
        assert.equal(p.error?.name, 'BlocksRequestError')
        assert.equal(p.error?.retryable, true)
        assert.equal(p.error?.peer, b.id)
      }
      assert.equal(a.client.inFlight(b.id), 0)
      assert.equal(a.client.stats.requestsFailed, 4)

      // The same peer (same key) comes back on a new port, with a store that works.
      const b2 = await node(key)
      await service(b2, { store: b.blocks })
      await a.libp2p.peerStore.patch(b2.peerId, { multiaddrs: b2.getMultiaddrs() })
      const body = bytesOf('after the restart')
      assert.equal(await a.client.put(b.id, body), cidOf(body))
      assert.equal(a.client.stats.streamsOpened, 2)
    })

    it('rejects pending requests promptly when the remote service stops', async () => {
      const counter = { started: 0, running: 0, max: 0 }
      const { a, b } = await pair({ wrap: gated(deferred(), counter) })
      const put = track(a.client.put(b.id, bytesOf('never acked')))
      await waitFor(() => counter.started === 1, 'the put at the store')
      const stopped = Date.now()
      await b.service.stop()
      await waitFor(() => put.settled, 'the put to settle', 5000)
      assert.ok(Date.now() - stopped < 2000)
      assert.equal(put.error?.name, 'BlocksRequestError')
      assert.equal(put.error?.retryable, true)
    })

    it('rejects when no answer comes within timeout, then opens a new stream', async () => {
      let stall = true
      const { a, b } = await pair({
        wrap: (blocks) => ({
          put: async (x) => { if (stall) await new Promise(() => {}); return await blocks.put(x) },
          get: async (c) => await blocks.get(c),
          has: async (c) => await blocks.has(c)
        })
      }, { client: { timeout: 300 } })
      const started = Date.now()
      await assert.rejects(a.client.put(b.id, bytesOf('x')), { name: 'BlocksRequestError', retryable: true, message: /no answer .* to a put within 300 ms/ })
      assert.ok(Date.now() - started < 2000)
      stall = false
      assert.equal(await a.client.put(b.id, bytesOf('y')), cidOf(bytesOf('y')))
      assert.equal(a.client.stats.streamsOpened, 2)
    })

    it('gives up on a request when its signal aborts, leaving the others', async () => {
      const gate = deferred()
      const counter = { started: 0, running: 0, max: 0 }
      const { a, b } = await pair({ wrap: gated(gate, counter) }, { client: { window: 1 } })
      const first = track(a.client.put(b.id, bytesOf('first')))
      const controller = new AbortController()
      const second = track(a.client.put(b.id, bytesOf('second'), { signal: controller.signal }))
      const third = track(a.client.put(b.id, bytesOf('third')))
      await waitFor(() => counter.started === 1, 'the first put at the store')
      assert.equal(a.client.queued(b.id), 2)
      controller.abort()
      await waitFor(() => second.settled, 'the aborted put')
      assert.equal(second.error?.name, 'AbortError')
      assert.equal(a.client.queued(b.id), 1)
      gate.resolve()
      assert.equal(await first.promise, cidOf(bytesOf('first')))
      assert.equal(await third.promise, cidOf(bytesOf('third')))
      assert.equal(await b.blocks.has(cidOf(bytesOf('second'))), false)
    })

    it('rejects pending requests with a clear error when it stops', async () => {
      const counter = { started: 0, running: 0, max: 0 }
      const { a, b } = await pair({ wrap: gated(deferred(), counter) })
      const put = track(a.client.put(b.id, bytesOf('x')))
      await waitFor(() => a.client.inFlight(b.id) === 1, 'a put in flight')
      await a.client.stop()
      await waitFor(() => put.settled, 'the put to settle')
      assert.equal(put.error?.name, 'BlocksRequestError')
      assert.equal(put.error?.retryable, false)
      assert.match(put.error?.message, /stopped/)
      await assert.rejects(a.client.get(b.id, cidOf(bytesOf('x'))), { name: 'BlocksRequestError', message: /not running/ })
    })

    it('closes an idle outbound stream, and the next request opens a new one', async () => {
      const { a, b } = await pair({}, { client: { idleTimeout: 100 } })
      await a.client.put(b.id, bytesOf('x'))
      await waitFor(() => (a.client as any).channels.size === 0, 'the idle stream to close')
      assert.equal(await a.client.get(b.id, cidOf(bytesOf('x'))) != null, true)
      assert.equal(a.client.stats.streamsOpened, 2)
      assert.equal(b.service.stats.malformedMessages, 0)
      assert.equal(a.client.stats.requestsFailed, 0)
    })

    it('closes an inbound stream that stays silent past readTimeout', async () => {
      const { a, b } = await pair({ service: { readTimeout: 200 } })
      const log = captureLog()
      try {
        const raw = await a.libp2p.dialProtocol(b.libp2p.peerId, PROTOCOL)
        const started = Date.now()
        await assert.rejects(lpStream(raw).read({ signal: AbortSignal.timeout(5000) }), (err: any) => err.name !== 'AbortError' && err.name !== 'TimeoutError')
        assert.ok(Date.now() - started >= 150)
        assert.ok(log.lines.some(l => /no progress on the stream from .* for 200 ms/.test(l)), log.lines.join('\n'))
      } finally {
        log.restore()
      }
      assert.equal(b.service.stats.malformedMessages, 0)
    })

    describe('a malformed message closes its stream, and only that one', () => {
      const cid = cidOf(bytesOf('x'))
      const chunkCap = 4 * KiB
      /** A good block, held at the store so that its id stays in flight. */
      const held = randomBytes(2 * chunkCap)
      const cases: Array<[string, Uint8Array[]]> = [
        ['bytes that are not msgpack', [Uint8Array.from([3, 0xc1, 0xc1, 0xc1])]],
        ['a reply where a request belongs', [frame({ t: 'ok', id: 1 })]],
        ['an unknown type', [frame({ t: 'hello', id: 1 })]],
        ['a chunk with no block open', [frame({ t: 'chunk', id: 1, data: new Uint8Array(10) })]],
        ['a chunk over maxChunkBytes', [frame({ t: 'put', id: 1, cid, data: new Uint8Array(chunkCap), size: 3 * chunkCap }), frame({ t: 'chunk', id: 1, data: new Uint8Array(chunkCap + 1) })]],
        ['a put head over maxChunkBytes', [frame({ t: 'put', id: 1, cid, data: new Uint8Array(chunkCap + 1) })]],
        ['a block over maxBlockBytes', [frame({ t: 'put', id: 1, cid, data: new Uint8Array(chunkCap), size: 64 * KiB + 1 })]],
        ['chunks adding up past the size', [frame({ t: 'put', id: 1, cid, data: new Uint8Array(chunkCap), size: chunkCap + 10 }), frame({ t: 'chunk', id: 1, data: new Uint8Array(11) })]],
        ['a request between a head and its chunks', [frame({ t: 'put', id: 1, cid, data: new Uint8Array(chunkCap), size: 2 * chunkCap }), frame({ t: 'get', id: 2, cid })]],
        ['a has over maxHasCids', [frame({ t: 'has', id: 1, cids: Array.from({ length: 11 }, () => cid) })]],
        ['data that is a string', [frame({ t: 'put', id: 1, cid, data: 'hello' })]],
        ['a request id already in flight', [...blockFrames({ t: 'put', id: 1, cid: cidOf(held) }, held, chunkCap), frame({ t: 'get', id: 1, cid })]],
        ['a frame over maxDataLength', [Uint8Array.from([...varint(chunkCap + 64 * KiB), 0x80])]]
      ]

      for (const [what, frames] of cases) {
        it(what, async function () {
          const gate = deferred()
          const { a, b } = await pair({
            wrap: (blocks) => ({
              put: async (x) => { if (cidOf(x) === cidOf(held)) await gate.promise; return await blocks.put(x) },
              get: async (c) => await blocks.get(c),
              has: async (c) => await blocks.has(c)
            }),
            service: { maxChunkBytes: chunkCap, maxBlockBytes: 64 * KiB, maxHasCids: 10 }
          }, { client: { maxChunkBytes: chunkCap, maxBlockBytes: 64 * KiB, maxHasCids: 10 } })
          // a healthy stream first
          const before = bytesOf('before')
          await a.client.put(b.id, before)
          const log = captureLog()
          try {
            const raw = await a.libp2p.dialProtocol(b.libp2p.peerId, PROTOCOL)
            const lp = lpStream(raw)
            for (const f of frames) raw.send(f)
            await assert.rejects(lp.read({ signal: AbortSignal.timeout(5000) }), (err: any) => {
              assert.notEqual(err.name, 'AbortError', 'the service did not close the stream')
              assert.notEqual(err.name, 'TimeoutError', 'the service did not close the stream')
              return true
            })
            await waitFor(() => b.service.stats.malformedMessages === 1, 'the malformed message to be counted')
            assert.ok(log.lines.some(l => l.includes('closing blocks stream from')), `logged: ${log.lines.join('\n')}`)
          } finally {
            log.restore()
            gate.resolve()
          }
          // nothing of the bad stream was stored, and the healthy stream still serves
          assert.equal(await b.blocks.has(cid), false)
          const after = randomBytes(3 * chunkCap)
          assert.equal(await a.client.put(b.id, after), cidOf(after))
          assert.deepEqual(await a.client.has(b.id, [cidOf(before), cidOf(after), cid]), [true, true, false])
          assert.equal(a.client.stats.streamsOpened, 1)
          // the held put was whole and good: stored once let go, though its stream is gone
          const heldToo = frames.length > 1 && what.includes('already in flight') ? 1 : 0
          await waitFor(() => b.service.stats.blocksStored === 2 + heldToo, 'the good puts to be stored')
        })
      }
    })
  })
})

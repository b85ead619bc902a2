/**
 * `/shoal/blocks/1.0.0` on the wire: blocks/s and MB/s over one stream on loopback.
 *
 *   node --import tsx bench/blocks-wire.ts [--blocks N] [--size BYTES] [--concurrency C] [--window W] [--pending BYTES] [--runs R]
 *
 * Two libp2p nodes (TCP on 127.0.0.1, noise, yamux) in this process, so both peers share one event
 * loop and one core's worth of JavaScript: a peer's own cost is about half of what is measured.
 * One client puts N distinct blocks of BYTES (default 30 KB, a typical page) to the other peer, C
 * calls in flight, then gets them all back, each checked against its CID. Three receivers:
 *
 *   - memory:     the service over a store that keeps no bytes (the wire, framing and hashing only);
 *   - BlockStore: the service over the real block store (pack file + LevelDB) in a temp dir, so a
 *                 put's ack waits for the index write, as in replication;
 *   - raw floor:  the same bytes as bare length-prefixed frames on one stream with a 1-byte ack per
 *                 frame and the same window: no msgpack, no CIDs, no store.
 *
 * Figures are medians of R runs; MB = 10^6 bytes of block data (frame overhead excluded).
 */
import '../node/polyfills.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { BlockStore, cidOf } from '../node/blocks.js'
import { Store } from '../node/db.js'
import { BlockClient, BlockService } from '../protocols/blocks/index.js'
import type { BlockServiceInit } from '../protocols/blocks/index.js'
import type { Libp2p } from '@libp2p/interface'

const { values } = parseArgs({
  options: {
    blocks: { type: 'string', default: '10000' },
    size: { type: 'string', default: '30000' },
    concurrency: { type: 'string', default: '256' },
    window: { type: 'string', default: '32' },
    pending: { type: 'string', default: String(32 * 1024 * 1024) },
    runs: { type: 'string', default: '3' }
  }
})
const BLOCKS = Number(values.blocks)
const SIZE = Number(values.size)
const CONCURRENCY = Number(values.concurrency)
const WINDOW = Number(values.window)
const PENDING = Number(values.pending)
const RUNS = Number(values.runs)

async function createNode (): Promise<Libp2p> {
  return await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() },
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] }
  })
}

/** Block `i`: the same random bytes with `i` written over the first 8, so every CID differs. */
function blockSource (size: number): (i: number) => Buffer {
  const base = Buffer.alloc(size)
  for (let o = 0; o < size; o += 4) base.writeUInt32LE((Math.imul(o + 1, 2654435761) >>> 0), o)
  return (i) => {
    const b = Buffer.from(base)
    b.writeDoubleLE(i, 0)
    return b
  }
}

/**
 * A store that keeps no bytes: it notes which block (by the number in its first 8 bytes) a CID is
 * and makes the block again on get. Holding 300 MB of received views would measure the GC.
 */
function memoryStore (source: (i: number) => Buffer): BlockServiceInit['store'] {
  const m = new Map<string, number>()
  return {
    put: async (bytes) => { const cid = cidOf(bytes); m.set(cid, Buffer.from(bytes.buffer, bytes.byteOffset, 8).readDoubleLE(0)); return cid },
    get: async (cid) => { const i = m.get(cid); return i === undefined ? undefined : source(i) },
    has: async (cid) => m.has(cid)
  }
}

/** Run `count` calls of `fn`, `concurrency` at a time; seconds taken. */
async function timed (count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<number> {
  let next = 0
  const started = process.hrtime.bigint()
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) await fn(next++)
  }))
  return Number(process.hrtime.bigint() - started) / 1e9
}

interface Result { put: number, get: number }

async function shoalRun (kind: 'memory' | 'blockstore'): Promise<Result> {
  const source = blockSource(SIZE)
  const [a, b] = await Promise.all([createNode(), createNode()])
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-blocks-'))
  let store: Store | undefined
  let blocks: BlockStore | undefined
  try {
    if (kind === 'blockstore') {
      store = new Store(join(dir, 'db'))
      await store.open()
      blocks = new BlockStore(store, join(dir, 'blocks'))
      await blocks.open()
    }
    const service = new BlockService({ libp2p: b }, { store: blocks ?? memoryStore(source), window: WINDOW, maxPendingBytes: PENDING })
    await service.start()
    const client = new BlockClient({ libp2p: a }, { window: WINDOW, maxPendingBytes: PENDING })
    await client.start()
    await a.peerStore.merge(b.peerId, { multiaddrs: b.getMultiaddrs() })
    const peer = b.peerId.toString()
    // warm up: the stream, the JIT, the pack file
    await Promise.all(Array.from({ length: 200 }, async (_, i) => { await client.put(peer, source(BLOCKS + i)) }))
    const cids: string[] = new Array(BLOCKS)
    const putSeconds = await timed(BLOCKS, CONCURRENCY, async (i) => { cids[i] = await client.put(peer, source(i)) })
    const getSeconds = await timed(BLOCKS, CONCURRENCY, async (i) => {
      const got = await client.get(peer, cids[i])
      if (got?.byteLength !== SIZE) throw new Error(`block ${i} came back as ${got?.byteLength} bytes`)
    })
    if (client.stats.streamsOpened !== 1 || service.stats.streamsInbound !== 1) throw new Error('more than one stream')
    if (client.stats.blocksAcked !== BLOCKS + 200 || client.stats.blocksReceived !== BLOCKS) throw new Error('blocks lost')
    await client.stop()
    await service.stop()
    return { put: BLOCKS / putSeconds, get: BLOCKS / getSeconds }
  } finally {
    await Promise.all([a.stop(), b.stop()])
    await blocks?.close()
    await store?.close()
    await rm(dir, { recursive: true, force: true })
  }
}

const RAW_PROTOCOL = '/shoal-bench/raw-blocks/1.0.0'

/** The floor: bare length-prefixed frames of SIZE bytes, a 1-byte ack each, WINDOW in flight. */
async function rawRun (): Promise<number> {
  const source = blockSource(SIZE)
  const [a, b] = await Promise.all([createNode(), createNode()])
  try {
    await b.handle(RAW_PROTOCOL, (stream) => {
      void (async () => {
        // Room for a whole frame of a large block and all the muxer lets arrive meanwhile (its window, 16 MiB at most).
        const lp = lpStream(stream, { maxDataLength: 16 * 1024 * 1024, maxBufferSize: 64 * 1024 * 1024 })
        try {
          while (true) {
            await lp.read()
            if (!stream.send(Uint8Array.from([1, 1]))) await stream.onDrain()
          }
        } catch { stream.abort(new Error('done')) }
      })()
    })
    await a.peerStore.merge(b.peerId, { multiaddrs: b.getMultiaddrs() })
    const stream = await a.dialProtocol(b.peerId, RAW_PROTOCOL)
    const lp = lpStream(stream)
    let acked = 0
    let sent = 0
    let wake: (() => void) | undefined
    const reader = (async () => {
      while (acked < BLOCKS) {
        await lp.read()
        acked++
        wake?.()
      }
    })()
    // Seen by `await reader` below; a failure meanwhile must not crash the process first.
    reader.catch(() => {})
    const started = process.hrtime.bigint()
    while (sent < BLOCKS) {
      while (sent - acked >= WINDOW) await new Promise<void>(resolve => { wake = resolve })
      const body = source(sent)
      const frame = new Uint8Array(4 + body.byteLength)
      frame.set([0x80 | (body.byteLength & 0x7f), 0x80 | ((body.byteLength >> 7) & 0x7f), 0x80 | ((body.byteLength >> 14) & 0x7f), body.byteLength >> 21])
      frame.set(body, 4)
      sent++
      if (!stream.send(frame)) await stream.onDrain()
    }
    await reader
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    stream.abort(new Error('done'))
    return BLOCKS / seconds
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
}

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
/** The median as blocks/s and MB/s, then every run's blocks/s: on a shared machine they drift. */
const fmt = (xs: number[]): string => {
  const m = median(xs)
  return `${Math.round(m).toLocaleString('en').padStart(7)} blocks/s  ${(m * SIZE / 1e6).toFixed(1).padStart(6)} MB/s  (runs: ${xs.map(x => Math.round(x).toLocaleString('en')).join(', ')})`
}

const raw: number[] = []
const memory: Result[] = []
const disk: Result[] = []
for (let r = 0; r < RUNS; r++) {
  raw.push(await rawRun())
  memory.push(await shoalRun('memory'))
  disk.push(await shoalRun('blockstore'))
}
console.log(`/shoal/blocks/1.0.0 over one stream on loopback, both peers in this process: ${BLOCKS.toLocaleString('en')} blocks of ${SIZE.toLocaleString('en')} bytes,`)
console.log(`${CONCURRENCY} calls in flight, window ${WINDOW}, maxPendingBytes ${PENDING.toLocaleString('en')}; medians of ${RUNS} runs; load average ${loadavg()[0].toFixed(1)} on ${availableParallelism()} CPUs`)
console.log(`  raw floor (bare frames, 1-byte acks)  ${fmt(raw)}`)
console.log(`  put, service over memory              ${fmt(memory.map(x => x.put))}`)
console.log(`  get, service over memory              ${fmt(memory.map(x => x.get))}`)
console.log(`  put, service over BlockStore          ${fmt(disk.map(x => x.put))}`)
console.log(`  get, service over BlockStore          ${fmt(disk.map(x => x.get))}`)
process.exit(0)

/**
 * `/shoal/links/1.0.0` on the wire: bytes per routed link, and links per second over one stream.
 *
 *   node --import tsx bench/links-wire.ts [--links N] [--concurrency C] [--pages P] [--runs R]
 *
 * 1. Bytes per link for realistic pages (150 links of 60–90 characters, one referrer, one host),
 *    compared with the URLs' own bytes, for three encodings: one map per link `{u, d, r}`; links
 *    grouped by referrer; and shoal's wire form (grouped, with the shared URL prefix hoisted). The
 *    last line sends the same pages through two real libp2p nodes and counts what the transport
 *    wrote (batches and acks, length prefixes included; yamux, noise and TCP headers excluded).
 * 2. Throughput: N links as pages of 150 from one peer to another over TCP on 127.0.0.1, C sends
 *    in flight, `onLinks` resolving at once: links/s over one stream, end to end (acks included).
 *    Both peers share this process (one event loop), so a peer's own cost is about half. Next to
 *    it, run for run, the floor: bare msgpack arrays of 1000 URL strings on one pipelined stream —
 *    on a shared machine the absolute figures drift, the ratio much less.
 */
import '../node/polyfills.js'
import { availableParallelism, loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { Packr } from 'msgpackr'
import { BatchBuilder, encodeFrame, LinksTransport } from '../protocols/links/index.js'
import type { Link } from '../node/types.js'
import type { Libp2p } from '@libp2p/interface'

const LINKS_PER_PAGE = 150

const WORDS = ['world', 'politics', 'economy', 'climate', 'science', 'sport', 'culture', 'travel', 'health', 'opinion',
  'election', 'market', 'energy', 'storm', 'football', 'museum', 'review', 'interview', 'budget', 'summit', 'research']

/** A deterministic pseudo-random generator (mulberry32), so runs compare. */
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * One page's links: 60–90 characters each, the shapes a news site has; on the page's host, or with
 * `others`, each link on a host picked from them (links to other sites the same peer owns).
 */
function page (host: string, n: number, rand: () => number, others?: string[]): Link[] {
  const word = (): string => WORDS[Math.floor(rand() * WORDS.length)]
  const slug = (): string => Array.from({ length: 3 + Math.floor(rand() * 3) }, word).join('-')
  const referrer = `https://${host}/news/2024/05/${slug()}-${100000 + n}.html`
  const links: Link[] = []
  const pageHost = host
  while (links.length < LINKS_PER_PAGE) {
    host = others == null ? pageHost : others[Math.floor(rand() * others.length)]
    const r = rand()
    let url: string
    if (r < 0.6) url = `https://${host}/news/2024/${String(1 + Math.floor(rand() * 12)).padStart(2, '0')}/${slug()}-${Math.floor(rand() * 900000 + 100000)}.html`
    else if (r < 0.75) url = `https://${host}/section/${word()}/${word()}-${word()}/page-${Math.floor(rand() * 40)}`
    else if (r < 0.85) url = `https://${host}/tag/${word()}-${word()}?page=${Math.floor(rand() * 20)}&sort=recent`
    else if (r < 0.95) url = `https://${host}/author/${word()}-${word()}-${word()}/articles/${Math.floor(rand() * 9999)}`
    else url = `https://${host}/video/${slug()}/${Math.floor(rand() * 1e9).toString(36)}`
    if (url.length < 60) url += `/${slug()}`.slice(0, 60 - url.length + 8)
    if (url.length > 90) url = url.slice(0, 90)
    links.push({ url, depth: 3, referrer })
  }
  return links
}

const HOSTS = ['www.example-news.com', 'blog.example.org', 'www.example-shop.co.uk', 'docs.example.dev']
const MANY_HOSTS = Array.from({ length: 20 }, (_, i) => `site-${i}.example-${i % 3 === 0 ? 'media.net' : 'press.com'}`)

function pages (count: number, seed = 1, mixed = false): Link[][] {
  const rand = rng(seed)
  return Array.from({ length: count }, (_, i) => page(HOSTS[i % HOSTS.length], i, rand, mixed ? MANY_HOSTS : undefined))
}

const packr = new Packr({ useRecords: false, variableMapSize: true })

/** Encode pages as batches of ≤ 1000 links the way `encode` groups them; returns total frame bytes. */
function encodeAll (batches: Link[][], encode: (links: Link[], id: number) => Uint8Array): number {
  let bytes = 0
  batches.forEach((links, i) => { bytes += encode(links, i).byteLength + 3 })
  return bytes
}

/** Cut a stream of pages into batches of at most 1000 links, as the transport does for one peer. */
function batchesOf (ps: Link[][]): Link[][] {
  const out: Link[][] = []
  let cur: Link[] = []
  for (const p of ps) {
    for (const l of p) {
      cur.push(l)
      if (cur.length === 1000) { out.push(cur); cur = [] }
    }
  }
  if (cur.length > 0) out.push(cur)
  return out
}

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

async function twoPeers (): Promise<{ a: Libp2p, b: Libp2p, ta: LinksTransport, tb: LinksTransport, stop: () => Promise<void> }> {
  const [a, b] = await Promise.all([createNode(), createNode()])
  await a.peerStore.merge(b.peerId, { multiaddrs: b.getMultiaddrs() })
  const tb = new LinksTransport({ libp2p: b }, { onLinks: async (_from, links) => links.length })
  const ta = new LinksTransport({ libp2p: a }, { onLinks: async (_from, links) => links.length })
  await tb.start()
  await ta.start()
  return {
    a,
    b,
    ta,
    tb,
    stop: async () => {
      await ta.stop()
      await tb.stop()
      await Promise.all([a.stop(), b.stop()])
    }
  }
}

async function wireCost (pageCount: number, mixed: boolean): Promise<void> {
  const ps = pages(pageCount, 1, mixed)
  const links = ps.flat()
  const urlBytes = links.reduce((s, l) => s + Buffer.byteLength(l.url), 0)
  const batches = batchesOf(ps)
  const perLink = (bytes: number): string => `${(bytes / links.length).toFixed(1)} B/link, ${(100 * bytes / urlBytes).toFixed(1)} % of URL bytes`

  const naive = encodeAll(batches, (ls, id) => packr.pack({ t: 'links', id, hops: 0, links: ls.map(l => ({ u: l.url, d: l.depth, r: l.referrer })) }))
  const byReferrer = encodeAll(batches, (ls, id) => {
    const groups = new Map<string, { r?: string, d: number, u: string[] }>()
    for (const l of ls) {
      const key = `${l.depth}|${l.referrer ?? ''}`
      let g = groups.get(key)
      if (g == null) groups.set(key, g = { r: l.referrer, d: l.depth, u: [] })
      g.u.push(l.url)
    }
    return packr.pack({ t: 'links', id, hops: 0, g: [...groups.values()] })
  })
  const shoal = encodeAll(batches, (ls, id) => {
    const b = new BatchBuilder(0)
    for (const l of ls) b.tryAdd(l, 1 << 20)
    return encodeFrame(b.toMessage(id))
  })

  const { b, ta, tb, stop } = await twoPeers()
  try {
    await Promise.all(ps.map(async p => { await ta.send(b.peerId.toString(), p) }))
    const wire = ta.stats.bytesSent + tb.stats.bytesSent
    console.log(`wire cost: ${pageCount} pages × ${LINKS_PER_PAGE} links, URLs ${(urlBytes / links.length).toFixed(1)} bytes on average, one referrer a page, ` +
      (mixed ? `each link on one of ${MANY_HOSTS.length} hosts` : 'all links on the page\'s host'))
    console.log(`  one map per link {u,d,r}       ${perLink(naive)}`)
    console.log(`  grouped by referrer            ${perLink(byReferrer)}`)
    console.log(`  shoal (grouped, prefix hoisted) ${perLink(shoal)}`)
    console.log(`  shoal over libp2p, acks incl.  ${perLink(wire)} (${ta.stats.batchesSent} batches, ${ta.stats.messagesSent + tb.stats.messagesSent} messages)`)
  } finally {
    await stop()
  }
}

/** Pages of fresh link objects, as a parser would hand them over, from a fixed sample. */
function pageSource (): (i: number) => Link[] {
  const sample = pages(400, 7)
  return i => sample[i % sample.length].map(l => ({ url: l.url, depth: l.depth, referrer: l.referrer }))
}

/** Links/s through the transport: `concurrency` sends of one page each in flight. */
async function shoalRun (total: number, concurrency: number): Promise<number> {
  const source = pageSource()
  const { b, ta, tb, stop } = await twoPeers()
  const peer = b.peerId.toString()
  try {
    await Promise.all(Array.from({ length: 100 }, async (_, i) => { await ta.send(peer, source(i)) })) // warm up
    const before = ta.stats.linksSent
    const pagesToSend = Math.ceil(total / LINKS_PER_PAGE)
    let next = 0
    const started = process.hrtime.bigint()
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < pagesToSend) await ta.send(peer, source(next++))
    }))
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    if (ta.stats.streamsOpened !== 1 || tb.stats.linksReceived !== ta.stats.linksSent) throw new Error('links lost or stream reopened')
    return (ta.stats.linksSent - before) / seconds
  } finally {
    await stop()
  }
}

const RAW_PROTOCOL = '/shoal-bench/raw-links/1.0.0'

/**
 * The floor to compare with: the same URLs as bare msgpack arrays of 1000 strings on one
 * pipelined stream (window 16, a one-byte ack per batch), no grouping, validation or Link objects.
 */
async function rawRun (total: number): Promise<number> {
  const source = pageSource()
  const [a, b] = await Promise.all([createNode(), createNode()])
  try {
    await b.handle(RAW_PROTOCOL, (stream) => {
      void (async () => {
        const lp = lpStream(stream, { maxDataLength: 4 * 1024 * 1024 })
        try {
          while (true) {
            const urls = packr.unpack((await lp.read()).subarray()) as string[]
            if (!stream.send(Uint8Array.from([1, urls.length > 0 ? 1 : 0]))) await stream.onDrain()
          }
        } catch { stream.abort(new Error('done')) }
      })()
    })
    await a.peerStore.merge(b.peerId, { multiaddrs: b.getMultiaddrs() })
    const stream = await a.dialProtocol(b.peerId, RAW_PROTOCOL)
    const lp = lpStream(stream)
    const batches = Math.ceil(total / 1000)
    let acked = 0
    let sent = 0
    let wake: (() => void) | undefined
    const reader = (async () => {
      while (acked < batches) {
        await lp.read()
        acked++
        wake?.()
      }
    })()
    const started = process.hrtime.bigint()
    let page = 0
    while (sent < batches) {
      while (sent - acked >= 16) await new Promise<void>(resolve => { wake = resolve })
      const urls: string[] = []
      while (urls.length < 1000) for (const l of source(page++)) urls.push(l.url)
      const body = packr.pack(urls)
      const frame = new Uint8Array(4 + body.byteLength)
      frame.set([0x80 | (body.byteLength & 0x7f), 0x80 | ((body.byteLength >> 7) & 0x7f), 0x80 | ((body.byteLength >> 14) & 0x7f), body.byteLength >> 21])
      frame.set(body, 4)
      sent++
      if (!stream.send(frame)) await stream.onDrain()
    }
    await reader
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    stream.abort(new Error('done'))
    return batches * 1000 / seconds
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
}

async function throughput (total: number, concurrency: number, runs: number): Promise<void> {
  const shoal: number[] = []
  const raw: number[] = []
  for (let r = 0; r < runs; r++) {
    raw.push(await rawRun(total))
    shoal.push(await shoalRun(total, concurrency))
  }
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
  const fmt = (x: number): string => Math.round(x).toLocaleString('en')
  console.log(`throughput over one stream, both peers in this process (${runs} runs of ${total.toLocaleString('en')} links, medians; load average ${loadavg()[0].toFixed(1)} on ${availableParallelism()} CPUs):`)
  console.log(`  bare msgpack string arrays     ${fmt(median(raw))} links/s  (runs: ${raw.map(fmt).join(', ')})`)
  console.log(`  shoal LinksTransport           ${fmt(median(shoal))} links/s  (runs: ${shoal.map(fmt).join(', ')}; ${concurrency} sends of ${LINKS_PER_PAGE} links in flight)`)
}

const { values } = parseArgs({
  options: {
    links: { type: 'string', default: '2000000' },
    concurrency: { type: 'string', default: '256' },
    pages: { type: 'string', default: '2000' },
    runs: { type: 'string', default: '3' }
  }
})

await wireCost(Number(values.pages), false)
await wireCost(Number(values.pages), true)
await throughput(Number(values.links), Number(values.concurrency), Number(values.runs))
process.exit(0)

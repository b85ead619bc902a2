/**
 * `npm run bench:peers`: what the cluster costs.
 *
 *   node --import tsx bench/peers.ts [--pages 12000] [--hosts 24] [--peers 1,2,4] [--runs 3]
 *
 * 1. pages/s of 1, 2 and 4 local peers (separate processes, libp2p over TCP on 127.0.0.1) crawling
 *    the same generated web, median of the runs, and the time from spawning the peers to every peer
 *    seeing the whole ring (owning its share);
 * 2. the router's CPU per 1000 links (scope check, owner lookup on a 10-peer ring, grouping), in
 *    this process, with a transport that acknowledges at once;
 * 3. bytes and messages on the wire per routed link, from the peers' own counters.
 * Writes bench/results/peers.json.
 */
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { LocalCluster } from '../node/local-cluster.js'
import { Ring } from '../node/ring.js'
import { Router } from '../node/router.js'
import { Scope } from '../node/scope.js'
import type { Frontier } from '../node/frontier.js'
import type { Link } from '../node/types.js'
import { startSyntheticWeb } from '../sim/web.js'

const { values } = parseArgs({ options: { pages: { type: 'string' }, hosts: { type: 'string' }, peers: { type: 'string' }, runs: { type: 'string' } } })
const pages = Number(values.pages ?? 12000)
const hosts = Number(values.hosts ?? 24)
const peerCounts = (values.peers ?? '1,2,4').split(',').map(Number)
const runs = Number(values.runs ?? 3)

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

// --- 2. router CPU per 1000 links -------------------------------------------------------------
function routerCpu (): number {
  const peers = Array.from({ length: 10 }, (_, i) => `12D3KooWpeer${i}`)
  const ring = Ring.of(peers)
  const origins = Array.from({ length: 500 }, (_, i) => `http://host${i}.example`)
  const links: Link[] = []
  for (let i = 0; i < 150_000; i++) links.push({ url: `${origins[i % 500]}/section/${i % 97}/page-${i}.html`, depth: 2, referrer: `${origins[i % 500]}/` })
  const scope = new Scope({ mode: 'any' })
  const frontier = { add: async (b: Link[]) => b.length } as unknown as Frontier
  const router = new Router({ frontier, scope, ownership: { self: peers[0], owner: (h) => ring.owner(h) as string }, transport: { send: async () => {} } }, { allowPrivate: true })
  // Warm up, then measure pages of 150 links.
  for (let i = 0; i < 100; i++) void router.route(links.slice(i * 150, i * 150 + 150))
  const t = process.cpuUsage()
  for (let i = 0; i < 1000; i++) void router.route(links.slice(i * 150, i * 150 + 150))
  const used = process.cpuUsage(t)
  return (used.user + used.system) / 1000 / 150 // ms per 1000 links
}

// --- 1 and 3. local clusters -----------------------------------------------------------------
interface RunResult { peers: number, pagesPerSecond: number, joinSeconds: number, pagesFetched: number, bytesPerLink: number, messagesPerKLinks: number, urlBytesPerLink: number }

async function clusterRun (n: number): Promise<RunResult> {
  const web = await startSyntheticWeb({ seed: 9, hosts, pages, profile: 'small', cacheBytes: 2 ** 30 })
  web.warm()
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-peers-'))
  const cluster = new LocalCluster({ peers: n, dataDir: dir, config: { allowPrivate: true, delay: 0, hostConcurrency: 4 } })
  try {
    const t0 = performance.now()
    await cluster.start()
    const joinSeconds = (performance.now() - t0) / 1000
    const t1 = performance.now()
    await cluster.seed([...web.rootUrls])
    const statuses = await cluster.waitIdle()
    const secs = (performance.now() - t1) / 1000
    const sum = (k: string): number => statuses.reduce((a, s) => a + (s.local[k] ?? 0), 0)
    const linksSent = sum('linksSent')
    const expected = web.expectedUrls()
    const urlBytes = expected.reduce((a, u) => a + u.length, 0) / expected.length
    return {
      peers: n,
      pagesPerSecond: Math.round(web.summary().pagesFetched / secs),
      joinSeconds: +joinSeconds.toFixed(2),
      pagesFetched: web.summary().pagesFetched,
      bytesPerLink: linksSent === 0 ? 0 : +(sum('bytesRouted') / linksSent).toFixed(1),
      messagesPerKLinks: linksSent === 0 ? 0 : +(sum('messagesRouted') / linksSent * 1000).toFixed(2),
      urlBytesPerLink: +urlBytes.toFixed(1)
    }
  } finally {
    await cluster.stop()
    await web.close()
    await rm(dir, { recursive: true, force: true })
  }
}

const results: RunResult[] = []
for (let r = 0; r < runs; r++) {
  for (const n of peerCounts) {
    const res = await clusterRun(n)
    results.push(res)
    console.error(`run ${r + 1}: ${n} peers: ${res.pagesPerSecond} pages/s, joined in ${res.joinSeconds} s, ${res.bytesPerLink} B/link`)
  }
}
const routerMsPer1000 = median([routerCpu(), routerCpu(), routerCpu()])
const table = peerCounts.map((n) => {
  const rs = results.filter(r => r.peers === n)
  return {
    peers: n,
    pagesPerSecond: median(rs.map(r => r.pagesPerSecond)),
    joinSeconds: median(rs.map(r => r.joinSeconds)),
    bytesPerLink: median(rs.map(r => r.bytesPerLink)),
    messagesPerKLinks: median(rs.map(r => r.messagesPerKLinks)),
    urlBytesPerLink: rs[0].urlBytesPerLink
  }
})
console.log('peers  pages/s  join s  bytes/link  (URL bytes)  messages/1000 links')
for (const t of table) console.log(`${String(t.peers).padStart(5)}  ${String(t.pagesPerSecond).padStart(7)}  ${String(t.joinSeconds).padStart(6)}  ${String(t.bytesPerLink).padStart(10)}  ${String(t.urlBytesPerLink).padStart(11)}  ${t.messagesPerKLinks}`)
console.log(`router CPU: ${routerMsPer1000.toFixed(2)} ms per 1000 links`)
await mkdir(new URL('./results/', import.meta.url), { recursive: true })
await writeFile(new URL('./results/peers.json', import.meta.url), JSON.stringify({
  benchmark: 'peers', at: new Date().toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  options: { pages, hosts, peers: peerCounts, runs }, table, routerMsPer1000, runs: results
}, null, 2))

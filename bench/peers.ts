/**
 * `npm run bench:peers`: what the cluster costs.
 *
 *   node --import tsx bench/peers.ts [--pages 48000] [--hosts 96] [--peers 1,2,4] [--runs 3]
 *                                    [--replicas 1] [--profile DIR] [--parse-workers 0] [--out FILE]
 *
 * The web is large enough (48,000 small pages, ~25 s for one peer here) that each process's fixed
 * costs (starting, JIT-compiling the same code, joining) do not dominate the comparison, and has
 * enough hosts (96) for the ring to split it evenly between 4 peers (24 hosts split 8/6/5/5).
 * The peers run with r = 1 (`--replicas 1`) unless told otherwise: the "Fast and lean" aim compares
 * one peer with N peers whose only extra work is the cluster's own (routing, acks), not copies.
 * `--profile DIR` starts every peer with SHOAL_PROFILE, one `.cpuprofile` a peer and run in DIR
 * (bucket them with `bench/cpu-breakdown.ts`). Every run also reports each peer's CPU seconds
 * (utime + stime from /proc, read before the peers are stopped) and this process's (the web server).
 *
 * 1. pages/s of 1, 2 and 4 local peers (separate processes, libp2p over TCP on 127.0.0.1) crawling
 *    the same generated web, median of the runs, and the time from spawning the peers to every peer
 *    seeing the whole ring (owning its share);
 * 2. the router's CPU per 1000 links (scope check, owner lookup on a 10-peer ring, grouping), in
 *    this process, with a transport that acknowledges at once;
 * 3. bytes and messages on the wire per routed link, from the peers' own counters.
 * Writes bench/results/peers.json (or --out FILE).
 */
import { mkdtemp, rm, mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { LocalCluster } from '../node/local-cluster.js'
import { Ring } from '../node/ring.js'
import { Router } from '../node/router.js'
import { Scope } from '../node/scope.js'
import type { Frontier } from '../node/frontier.js'
import type { Link } from '../node/types.js'
import { startSyntheticWeb } from '../sim/web.js'

const { values } = parseArgs({ options: { pages: { type: 'string' }, hosts: { type: 'string' }, peers: { type: 'string' }, runs: { type: 'string' }, replicas: { type: 'string' }, profile: { type: 'string' }, 'parse-workers': { type: 'string' }, out: { type: 'string' } } })
/** Parse worker threads of each peer (a local cluster's default is 0: the peers share the cores). */
const parseWorkers = Number(values['parse-workers'] ?? 0)
const pages = Number(values.pages ?? 48000)
const hosts = Number(values.hosts ?? 96)
const peerCounts = (values.peers ?? '1,2,4').split(',').map(Number)
const runs = Number(values.runs ?? 3)
const replicas = Number(values.replicas ?? 1)
const profileDir = values.profile === undefined ? undefined : resolve(values.profile)
if (profileDir !== undefined) await mkdir(profileDir, { recursive: true })

/**
 * A process's CPU seconds so far (user + system, all threads), or with `mainThread` its main
 * thread's only, from /proc (Linux); undefined elsewhere.
 */
async function cpuSecondsOf (pid: number | undefined, mainThread = false): Promise<number | undefined> {
  if (pid === undefined) return undefined
  try {
    const stat = await readFile(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces): utime and stime are fields 14 and 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / 100
  } catch { return undefined }
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

/** CPU seconds so far of each thread of a process, summed by thread name (`node`, `libuv-worker`, `V8 DefaultWorke`…). */
async function threadCpuOf (pid: number | undefined): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  if (pid === undefined) return out
  try {
    for (const tid of await readdir(`/proc/${pid}/task`)) {
      try {
        const comm = (await readFile(`/proc/${pid}/task/${tid}/comm`, 'utf8')).trim()
        const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8')
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        const name = tid === String(pid) ? 'main' : comm
        out[name] = (out[name] ?? 0) + (Number(f[11]) + Number(f[12])) / 100
      } catch {}
    }
  } catch {}
  return out
}

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
interface RunResult {
  peers: number, pagesPerSecond: number, joinSeconds: number, pagesFetched: number, bytesPerLink: number, messagesPerKLinks: number, urlBytesPerLink: number
  /** CPU seconds of each peer process from seeding to idle (start-up not included). */
  peerCpuSeconds: number[]
  /** CPU seconds each peer spent starting (spawn to seeding: loading, libp2p, joining). */
  peerStartCpuSeconds: number[]
  /** CPU seconds of this process during the crawl: the web server, plus the status polls. */
  serverCpuSeconds: number
}

async function clusterRun (n: number, run: number): Promise<RunResult> {
  const web = await startSyntheticWeb({ seed: 9, hosts, pages, profile: 'small', cacheBytes: 2 ** 30 })
  web.warm()
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-peers-'))
  const cluster = new LocalCluster({
    peers: n,
    dataDir: dir,
    replicas,
    // One profile file a peer and run, written when the peer is stopped (SIGTERM).
    // From the TypeScript sources (SHOAL_NO_BUNDLE), so that the profiles name each module and
    // bench/cpu-breakdown.ts can tell them apart (the launcher's bundle is one file).
    peerEnv: profileDir === undefined ? undefined : (i) => ({ SHOAL_PROFILE: join(profileDir, `peers${n}-run${run}-peer${i}.cpuprofile`), SHOAL_NO_BUNDLE: '1' }),
    config: { allowPrivate: true, delay: 0, hostConcurrency: 4, parseWorkers }
  })
  try {
    const t0 = performance.now()
    await cluster.start()
    const joinSeconds = (performance.now() - t0) / 1000
    const cpuOfPeers = async (mainThread = false): Promise<number[]> => (await Promise.all(cluster.peers.map(async p => await cpuSecondsOf(p.process.pid, mainThread)))).map(c => c ?? 0)
    const peerStartCpuSeconds = await cpuOfPeers()
    const peerStartMainCpu = await cpuOfPeers(true)
    const threadsBefore = await Promise.all(cluster.peers.map(async p => await threadCpuOf(p.process.pid)))
    const t1 = performance.now()
    const cpu0 = process.cpuUsage()
    await cluster.seed([...web.rootUrls])
    const statuses = await cluster.waitIdle()
    const secs = (performance.now() - t1) / 1000
    const cpu = process.cpuUsage(cpu0)
    const peerCpuSeconds = (await cpuOfPeers()).map((c, i) => +(c - peerStartCpuSeconds[i]).toFixed(2))
    const peerMainCpuSeconds = (await cpuOfPeers(true)).map((c, i) => +(c - peerStartMainCpu[i]).toFixed(2))
    // Threads of every peer by name, summed (threads that ended during the crawl are missed).
    const threadCpuSeconds: Record<string, number> = {}
    const threadsAfter = await Promise.all(cluster.peers.map(async p => await threadCpuOf(p.process.pid)))
    threadsAfter.forEach((t, i) => { for (const [k, v] of Object.entries(t)) threadCpuSeconds[k] = +((threadCpuSeconds[k] ?? 0) + v - (threadsBefore[i][k] ?? 0)).toFixed(2) })
    if (profileDir !== undefined) {
      // For bench/cpu-breakdown.ts: which profiles, how many pages, and the CPU to scale them to.
      await writeFile(join(profileDir, `peers${n}-run${run}.json`), JSON.stringify({
        peers: n, run, pages: web.summary().pagesFetched, seconds: secs, peerCpuSeconds, peerMainCpuSeconds, peerStartCpuSeconds, serverCpuSeconds: (cpu.user + cpu.system) / 1e6,
        threadCpuSeconds,
        counters: statuses.map(s => s.local),
        profiles: cluster.peers.map(p => `peers${n}-run${run}-peer${p.index}.cpuprofile`)
      }, null, 2))
    }
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
      urlBytesPerLink: +urlBytes.toFixed(1),
      peerCpuSeconds,
      peerStartCpuSeconds,
      serverCpuSeconds: +((cpu.user + cpu.system) / 1e6).toFixed(2)
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
    const res = await clusterRun(n, r + 1)
    results.push(res)
    console.error(`run ${r + 1}: ${n} peers: ${res.pagesPerSecond} pages/s, joined in ${res.joinSeconds} s, ${res.bytesPerLink} B/link, ` +
      `crawl CPU s: peers ${res.peerCpuSeconds.join(' + ')}, server ${res.serverCpuSeconds} (start-up: ${res.peerStartCpuSeconds.join(' + ')})`)
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
    urlBytesPerLink: rs[0].urlBytesPerLink,
    peerCpuSeconds: median(rs.map(r => r.peerCpuSeconds.reduce((a, b) => a + b, 0))),
    serverCpuSeconds: median(rs.map(r => r.serverCpuSeconds))
  }
})
console.log(`replicas: ${replicas}`)
console.log('peers  pages/s  join s  bytes/link  (URL bytes)  messages/1000 links  peers CPU s  server CPU s')
for (const t of table) console.log(`${String(t.peers).padStart(5)}  ${String(t.pagesPerSecond).padStart(7)}  ${String(t.joinSeconds).padStart(6)}  ${String(t.bytesPerLink).padStart(10)}  ${String(t.urlBytesPerLink).padStart(11)}  ${String(t.messagesPerKLinks).padStart(19)}  ${t.peerCpuSeconds.toFixed(1).padStart(11)}  ${t.serverCpuSeconds.toFixed(1).padStart(12)}`)
console.log(`router CPU: ${routerMsPer1000.toFixed(2)} ms per 1000 links`)
await mkdir(new URL('./results/', import.meta.url), { recursive: true })
await writeFile(values.out ?? new URL('./results/peers.json', import.meta.url), JSON.stringify({
  benchmark: 'peers', at: new Date().toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  options: { pages, hosts, peers: peerCounts, runs, replicas, parseWorkers }, table, routerMsPer1000, runs: results
}, null, 2))

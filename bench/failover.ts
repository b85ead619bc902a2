/**
 * `npm run bench:failover`: what replication costs and how fast a dead peer's hosts come back.
 *
 *   node --import tsx bench/failover.ts [--runs 3]
 *
 * 1. Time from a SIGKILL to the dead peer's hosts being fetched again by the others (5 peers,
 *    r = 2, default heartbeat and silence settings), per host, median over hosts and runs.
 * 2. Replication traffic per stored page (bytes over /shoal/meta and /shoal/blocks) for r = 2, 3.
 * 3. Throughput of 4 peers with r = 1, 2, 3 on the same generated web.
 * Writes bench/results/failover.json.
 */
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { LocalCluster } from '../node/local-cluster.js'
import { Ring } from '../node/ring.js'
import { hostKeyFast } from '../node/router.js'
import { startSyntheticWeb } from '../sim/web.js'
import { peerOfUserAgent } from '../sim/verdict.js'

const { values } = parseArgs({ options: { runs: { type: 'string' } } })
const runs = Number(values.runs ?? 3)
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const peerOf = peerOfUserAgent

async function failoverRun (): Promise<number[]> {
  const web = await startSyntheticWeb({ seed: 11, hosts: 12, pages: 1200, profile: 'small', log: true })
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-failover-'))
  const cluster = new LocalCluster({ peers: 5, replicas: 2, dataDir: dir, config: { allowPrivate: true, delay: 100, hostConcurrency: 1 } })
  try {
    await cluster.start()
    await cluster.seed([...web.rootUrls])
    while (web.summary().pagesFetched < 300) await new Promise(resolve => setTimeout(resolve, 50))
    const victim = cluster.peers[2]
    const ring = Ring.of(cluster.peers.map(p => p.peerId))
    const hosts = web.origins.map((o, i) => [i, ring.owner(hostKeyFast(o + '/'))] as const).filter(([, p]) => p === victim.peerId).map(([i]) => i)
    const killedAt = Date.now()
    victim.process.kill('SIGKILL')
    await cluster.waitIdle(300_000)
    const short = victim.peerId.slice(-8)
    const log = web.stats().log ?? []
    return hosts.map((h) => {
      const first = log.find(e => e.host === h && e.at > killedAt && peerOf(e.userAgent) !== short && e.target !== '/robots.txt')
      return first == null ? NaN : (first.at - killedAt) / 1000
    }).filter(x => !Number.isNaN(x))
  } finally {
    await cluster.stop()
    await web.close()
    await rm(dir, { recursive: true, force: true })
  }
}

async function replicasRun (r: number): Promise<{ r: number, pagesPerSecond: number, replicationBytesPerPage: number, pagesStored: number }> {
  const web = await startSyntheticWeb({ seed: 9, hosts: 24, pages: 6000, profile: 'small', cacheBytes: 2 ** 30 })
  web.warm()
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-replicas-'))
  const cluster = new LocalCluster({ peers: 4, replicas: r, dataDir: dir, config: { allowPrivate: true, delay: 0, hostConcurrency: 4 } })
  try {
    await cluster.start()
    const t = performance.now()
    await cluster.seed([...web.rootUrls])
    const statuses = await cluster.waitIdle()
    const secs = (performance.now() - t) / 1000
    const stored = statuses.reduce((a, s) => a + (s.local.stored ?? 0), 0)
    const bytes = statuses.reduce((a, s) => a + (s.local.replicationBytes ?? 0), 0)
    return { r, pagesPerSecond: Math.round(web.summary().pagesFetched / secs), replicationBytesPerPage: Math.round(bytes / Math.max(1, stored)), pagesStored: stored }
  } finally {
    await cluster.stop()
    await web.close()
    await rm(dir, { recursive: true, force: true })
  }
}

const failover: number[] = []
const byR: Array<Awaited<ReturnType<typeof replicasRun>>> = []
for (let i = 0; i < runs; i++) {
  const times = await failoverRun()
  failover.push(...times)
  console.error(`run ${i + 1}: dead peer's hosts fetched again after ${times.map(t => t.toFixed(1)).join(', ')} s`)
  for (const r of [1, 2, 3]) {
    const res = await replicasRun(r)
    byR.push(res)
    console.error(`run ${i + 1}: 4 peers, r = ${r}: ${res.pagesPerSecond} pages/s, ${res.replicationBytesPerPage} replication bytes per stored page`)
  }
}
const table = [1, 2, 3].map(r => {
  const rs = byR.filter(x => x.r === r)
  return { r, pagesPerSecond: median(rs.map(x => x.pagesPerSecond)), replicationBytesPerPage: median(rs.map(x => x.replicationBytesPerPage)) }
})
console.log(`SIGKILL → the dead peer's hosts fetched again: median ${median(failover).toFixed(1)} s, max ${Math.max(...failover).toFixed(1)} s (${failover.length} hosts)`)
console.log('r  pages/s (4 peers)  replication bytes / stored page')
for (const t of table) console.log(`${t.r}  ${String(t.pagesPerSecond).padStart(17)}  ${t.replicationBytesPerPage}`)
await mkdir(new URL('./results/', import.meta.url), { recursive: true })
await writeFile(new URL('./results/failover.json', import.meta.url), JSON.stringify({
  benchmark: 'failover', at: new Date().toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  runs, failoverSeconds: { median: median(failover), max: Math.max(...failover), samples: failover }, table, all: byR
}, null, 2))

/**
 * What a cluster costs when it has nothing to crawl: the per-second background of each peer
 * (membership heartbeats over gossipsub, gossipsub's own heartbeat, kad-dht discovery rounds,
 * identify, connection pings).
 *
 *   node --import tsx bench/idle.ts [--peers 4] [--seconds 20] [--settle 5] [--heartbeat MS]
 *
 * Starts N `shoal start` processes on 127.0.0.1 (a local cluster, r = 1), waits until every peer
 * sees the whole ring and `--settle` seconds more (the joins' own work), then reads each peer's CPU
 * seconds from /proc before and after `--seconds` seconds of nothing. Prints one JSON line.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { LocalCluster } from '../node/local-cluster.js'

const { values } = parseArgs({ options: { peers: { type: 'string' }, seconds: { type: 'string' }, settle: { type: 'string' }, heartbeat: { type: 'string' } } })
const peers = Number(values.peers ?? 4)
const seconds = Number(values.seconds ?? 20)
const settle = Number(values.settle ?? 5)

/** utime + stime of a process, seconds (Linux /proc). */
async function cpuSeconds (pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

const sleep = async (s: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, s * 1000)) }

const dir = await mkdtemp(join(tmpdir(), 'shoal-idle-'))
const cluster = new LocalCluster({
  peers, replicas: 1, dataDir: dir, config: { allowPrivate: true },
  // A longer heartbeat needs a longer silence timeout (5 heartbeats, as the defaults).
  extraArgs: values.heartbeat === undefined ? [] : ['--heartbeat', values.heartbeat, '--silence', String(5 * Number(values.heartbeat))]
})
try {
  await cluster.start()
  await cluster.waitForRing(peers)
  await sleep(settle)
  const pids = cluster.peers.map(p => p.process.pid as number)
  const before = await Promise.all(pids.map(cpuSeconds))
  await sleep(seconds)
  const after = await Promise.all(pids.map(cpuSeconds))
  const perPeer = after.map((a, i) => +(a - before[i]).toFixed(2))
  const share = perPeer.map(s => s / seconds)
  console.log(JSON.stringify({
    peers,
    seconds,
    cpuSecondsPerPeer: perPeer,
    coreSharePerPeer: share.map(x => +x.toFixed(3)),
    cpuMsPerSecondAllPeers: Math.round(share.reduce((a, b) => a + b, 0) * 1000)
  }))
} finally {
  await cluster.stop()
  await rm(dir, { recursive: true, force: true })
}

import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { CrawlConfig } from './config.js'
import type { CrawlReport } from './crawl.js'
import { second } from './constants.js'
import { launcherPath } from './paths.js'
import { TEST_GATE_ENV } from './test-gate.js'

const GATE_FILE = 'test-gate.json'
const BIN = launcherPath(import.meta.url)

/** One `shoal start` process of a local cluster. */
export interface LocalPeer {
  index: number
  peerId: string
  multiaddrs: string[]
  api: string
  dataDir: string
  process: ChildProcess
  /** Its stderr, kept for error messages. */
  log: string[]
}

export interface LocalClusterInit {
  peers: number
  dataDir: string
  config?: CrawlConfig
  /** Cluster name; a random one by default, so two local clusters never mix. */
  cluster?: string
  /** Extra `shoal start` flags for every peer. */
  extraArgs?: string[]
  /** Ms to wait for every peer to start and see the whole ring. @default 60000 */
  startTimeout?: number
  /** Extra environment for the peers (e.g. DEBUG). */
  env?: Record<string, string>
  /** Extra environment for peer `index` only, over `env` (e.g. its own SHOAL_PROFILE file). */
  peerEnv?: (index: number) => Record<string, string>
  /** Replication factor of every peer. @default the peers' default (2) */
  replicas?: number
  /**
   * Start every peer with a test-only connection gater (`SHOAL_TEST_GATE`, node/test-gate.ts), so
   * `partition` can cut the cluster in two with real sockets. @default false
   */
  testGate?: boolean
}

/** `--flag value` pairs for `shoal start` from a crawl config. */
export function configArgs (config: CrawlConfig = {}): string[] {
  const args: string[] = []
  const flag: Partial<Record<keyof CrawlConfig, string>> = {
    delay: '--delay',
    hostConcurrency: '--host-concurrency',
    concurrency: '--concurrency',
    maxDepth: '--max-depth',
    maxPages: '--max-pages',
    maxPagesPerHost: '--max-pages-per-host',
    scope: '--scope',
    maxBodySize: '--max-body-size',
    requestTimeout: '--timeout',
    contact: '--contact',
    parseWorkers: '--parse-workers',
    heapGrowth: '--heap-growth'
  }
  for (const [key, name] of Object.entries(flag)) {
    const v = (config as Record<string, unknown>)[key]
    if (v !== undefined && v !== Infinity) args.push(name as string, String(v))
  }
  if (config.allowPrivate === true) args.push('--allow-private')
  if (config.ignoreCrawlDelay === true) args.push('--ignore-crawl-delay')
  for (const re of config.include ?? []) args.push('--include', re)
  for (const re of config.exclude ?? []) args.push('--exclude', re)
  return args
}

export async function getJson (api: string, path: string, init?: RequestInit): Promise<any> {
  const res = await fetch(`http://${api}${path}`, { ...init, signal: AbortSignal.timeout(10 * second) })
  const body = await res.json()
  if (!res.ok) throw new Error(`${api}${path}: HTTP ${res.status}: ${JSON.stringify(body)}`)
  return body
}

async function until<T> (what: string, deadline: number, fn: () => Promise<T | undefined>, interval = 100): Promise<T> {
  while (true) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, interval))
  }
}

/**
 * N real peers on 127.0.0.1, each its own `shoal start` process with its own data dir, joined
 * through the first one's address (the others learn each other through the DHT).
 */
export class LocalCluster {
  readonly peers: LocalPeer[] = []
  readonly cluster: string
  private readonly init: LocalClusterInit

  constructor (init: LocalClusterInit) {
    this.init = init
    this.cluster = init.cluster ?? `local-${randomBytes(4).toString('hex')}`
  }

  /** Start one more peer (bootstrapping through peer 0 when there is one); resolves when its API answers. */
  async startPeer (index = this.peers.length, extra: string[] = []): Promise<LocalPeer> {
    const dataDir = join(this.init.dataDir, `peer-${index}`)
    await mkdir(dataDir, { recursive: true })
    // Peers sharing one machine already use its cores as processes: each parses on its main thread
    // unless told otherwise (a parse worker each would only add threads competing for the cores).
    const config = { ...this.init.config, parseWorkers: this.init.config?.parseWorkers ?? 0 }
    const args = [BIN, 'start', '--data', dataDir, '--cluster', this.cluster, '--api', '127.0.0.1:0',
      '--listen', '/ip4/127.0.0.1/tcp/0', ...configArgs(config), ...(this.init.extraArgs ?? []), ...extra]
    if (this.init.replicas != null) args.push('--replicas', String(this.init.replicas))
    const boot = this.peers.find(p => p.index !== index && p.process.exitCode === null)
    if (boot != null) args.push('--bootstrap', boot.multiaddrs[0])
    const env: Record<string, string | undefined> = { ...process.env, ...this.init.env, ...this.init.peerEnv?.(index) }
    if (this.init.testGate === true) {
      env[TEST_GATE_ENV] = join(dataDir, GATE_FILE)
      await writeFile(env[TEST_GATE_ENV] as string, '[]')
    }
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env })
    const peer: LocalPeer = { index, peerId: '', multiaddrs: [], api: '', dataDir, process: child, log: [] }
    createInterface({ input: child.stderr! }).on('line', (line) => {
      peer.log.push(line)
      if (peer.log.length > 200) peer.log.shift()
    })
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! })
      const onExit = (code: number | null): void => { reject(new Error(`peer ${index} exited (${code}) before starting: ${peer.log.slice(-5).join(' | ')}`)) }
      child.once('exit', onExit)
      lines.on('line', (line) => {
        const [word, rest] = [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)]
        if (word === 'peer') peer.peerId = rest
        else if (word === 'listening') peer.multiaddrs.push(rest)
        else if (word === 'api') {
          peer.api = rest.replace('http://', '')
          child.off('exit', onExit)
          resolve()
        }
      })
    })
    const existing = this.peers.findIndex(p => p.index === index)
    if (existing >= 0) this.peers[existing] = peer
    else this.peers.push(peer)
    // peers[i] is peer i, whichever order they finished starting in.
    this.peers.sort((a, b) => a.index - b.index)
    return peer
  }

  async start (): Promise<void> {
    await this.startPeer(0)
    await Promise.all(Array.from({ length: this.init.peers - 1 }, async (_, i) => await this.startPeer(i + 1)))
    await this.waitForRing(this.init.peers)
  }

  live (): LocalPeer[] {
    return this.peers.filter(p => p.process.exitCode === null && p.process.signalCode === null)
  }

  /** Wait until every live peer's ring has `n` peers. */
  async waitForRing (n: number): Promise<void> {
    await waitForRing(this.live().map(p => p.api), n, this.init.startTimeout ?? 60 * second)
  }

  async seed (urls: string[], via = 0): Promise<{ accepted: string[], rejected: Array<{ url: string, reason: string }> }> {
    return await getJson(this.peers[via].api, '/v1/seeds', {
      method: 'POST', body: JSON.stringify({ urls }), headers: { 'content-type': 'application/json' }
    })
  }

  async statuses (): Promise<any[]> {
    return await statusesOf(this.live().map(p => p.api))
  }

  /** Wait until the crawl is over (see `waitIdle`), over the peers alive at each poll. */
  async waitIdle (timeout = 30 * 60 * second, onPoll?: (statuses: any[]) => void): Promise<any[]> {
    return await waitIdle(() => this.live().map(p => p.api), timeout, onPoll)
  }

  /**
   * Cut the cluster in two (needs `testGate`): every peer of `a` refuses the peers of `b` and the
   * other way round, and open connections between them close. `heal` lifts it.
   */
  async partition (a: number[], b: number[]): Promise<void> {
    if (this.init.testGate !== true) throw new Error('partition needs a cluster started with testGate: true')
    const ids = (side: number[]): string[] => side.map(i => this.peers.find(p => p.index === i)?.peerId).filter((id): id is string => id != null)
    await Promise.all(this.peers.map(async p => {
      const block = a.includes(p.index) ? ids(b) : b.includes(p.index) ? ids(a) : []
      await writeFile(join(p.dataDir, GATE_FILE), JSON.stringify(block))
    }))
  }

  async heal (): Promise<void> {
    await Promise.all(this.peers.map(async p => { await writeFile(join(p.dataDir, GATE_FILE), '[]') }))
  }

  /** SIGTERM every peer and wait for them to exit (SIGKILL after `grace` ms). */
  async stop (grace = 10 * second): Promise<void> {
    await Promise.all(this.peers.map(async p => await stopProcess(p.process, grace)))
  }
}

/** Every API's status. */
export async function statusesOf (apis: string[]): Promise<any[]> {
  return await Promise.all(apis.map(async api => await getJson(api, '/v1/status')))
}

/**
 * Wait until every API's peer sees a ring of `n` peers. Either may be a function, read again on
 * every poll: a moving target (peers started or killed while we wait).
 */
export async function waitForRing (apis: string[] | (() => string[]), n: number | (() => number), timeout = 60 * second): Promise<void> {
  const deadline = Date.now() + timeout
  const apisNow = typeof apis === 'function' ? apis : () => apis
  const nNow = typeof n === 'function' ? n : () => n
  let seen = ''
  try {
    await until('every peer to see the live ring', deadline, async () => {
      const want = nNow()
      const list = apisNow()
      const rings = await Promise.all(list.map(async api => (await getJson(api, '/v1/status')).ring.peers as number))
      seen = list.map((api, i) => `${api}: ${rings[i]}`).join(', ')
      return rings.every(peers => peers === want) ? true : undefined
    })
  } catch (err: any) {
    throw new Error(`timed out waiting for every peer to see ${nNow()} peers (last seen: ${seen === '' ? 'no answer' : seen})`, { cause: err })
  }
}

/**
 * Wait until a crawl is over: on every peer nothing queued, in flight or in transit, and the
 * totals unchanged between two polls (so no batch was on the wire between them).
 */
export async function waitIdle (apis: string[] | (() => string[]), timeout = 30 * 60 * second, onPoll?: (statuses: any[]) => void): Promise<any[]> {
  const deadline = Date.now() + timeout
  let previous = ''
  while (true) {
    const list = typeof apis === 'function' ? apis() : apis
    const settled = await Promise.allSettled(list.map(async api => await getJson(api, '/v1/status')))
    if (settled.some(r => r.status === 'rejected')) {
      // A peer that is dying (or just died) does not answer: poll again.
      if (Date.now() > deadline) throw new Error('timed out waiting for the crawl to finish')
      previous = ''
      await new Promise(resolve => setTimeout(resolve, 250))
      continue
    }
    const statuses = settled.map(r => (r as PromiseFulfilledResult<any>).value)
    onPoll?.(statuses)
    const quiet = statuses.every(s => s.local.queued === 0 && s.local.inflight === 0 && s.local.inTransit === 0)
    const totals = JSON.stringify(statuses.map(s => [s.peerId, s.local.admitted, s.local.done, s.local.linksReceived]))
    if (quiet && totals === previous) return statuses
    previous = quiet ? totals : ''
    if (Date.now() > deadline) throw new Error('timed out waiting for the crawl to finish')
    await new Promise(resolve => setTimeout(resolve, 250))
  }
}

export async function stopProcess (child: ChildProcess, grace: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), grace)
  await exited
  clearTimeout(timer)
}

/** `shoal crawl --peers N`: start N local peers, seed, wait until the cluster is idle, report, stop. */
export async function crawlWithPeers (opts: { seeds: string[], peers: number, dataDir: string, config: CrawlConfig, onProgress?: (line: string) => void }): Promise<CrawlReport> {
  const cluster = new LocalCluster({ peers: opts.peers, dataDir: opts.dataDir, config: opts.config })
  const started = performance.now()
  try {
    await cluster.start()
    const seeded = await cluster.seed(opts.seeds)
    if (seeded.accepted.length === 0) {
      throw new Error(`no valid seed URL (${seeded.rejected.map(r => `${r.url}: ${r.reason}`).join('; ')})`)
    }
    const crawlStart = performance.now()
    const statuses = await cluster.waitIdle(undefined, opts.onProgress == null
      ? undefined
      : (ss) => {
          const fetched = ss.reduce((a, s) => a + s.local.fetched, 0)
          const queued = ss.reduce((a, s) => a + s.local.queued, 0)
          const secs = (performance.now() - crawlStart) / 1000
          opts.onProgress?.(`${secs.toFixed(1)}s  fetched ${fetched}  queued ${queued}  peers ${ss.length}  ${(fetched / Math.max(secs, 0.001)).toFixed(0)} pages/s`)
        })
    const wallSeconds = (performance.now() - started) / 1000
    const crawlSeconds = (performance.now() - crawlStart) / 1000
    const sum = (k: string): number => statuses.reduce((a, s) => a + (s.local[k] ?? 0), 0)
    const admitted = sum('admitted')
    const done = sum('done')
    const queued = sum('queued')
    const byStatus: Record<string, number> = {}
    for (const s of statuses) for (const [k, v] of Object.entries(s.local.byStatus ?? {})) byStatus[k] = (byStatus[k] ?? 0) + (v as number)
    const lost = admitted - done - queued
    return {
      peers: opts.peers,
      pagesExpected: admitted,
      pagesFetched: sum('fetched'),
      coverage: admitted === 0 ? 1 : done / admitted,
      duplicateFetches: 0,
      lostUrls: lost,
      queued,
      wallSeconds: Math.round(wallSeconds * 1000) / 1000,
      pagesPerSecond: Math.round(sum('fetched') / crawlSeconds * 10) / 10,
      bytesRouted: sum('bytesRouted'),
      messagesRouted: sum('messagesRouted'),
      requests: sum('requests'),
      wireBytes: 0,
      byStatus,
      dropped: {},
      outOfScope: {},
      invariants: { noLostUrls: lost === 0, frontierDrained: queued === 0 },
      perPeer: statuses.map(s => ({ peerId: s.peerId, api: s.api, ...s.local }))
    }
  } finally {
    await cluster.stop()
  }
}

import { existsSync } from 'node:fs'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { loadClusterFile, loadConfigFile, validateConfig, type CrawlConfig } from './config.js'
import { parseHostPort } from './api.js'
import { crawl, readStored, type CrawlReport } from './crawl.js'
import { ConfigError } from './errors.js'
import { VERSION } from './constants.js'
import type { PeerStats } from './peer.js'
import { applyHeapGrowth } from './gc-tuning.js'
import { startCpuProfile, takeProfileOption, type CpuProfiler } from './profile.js'

/** Exit codes: 0 done, 1 the crawl or command failed, 2 bad arguments or config. */
const EXIT_USAGE = 2

const USAGE = `shoal ${VERSION} — a leaderless peer-to-peer web crawler

Usage:
  shoal start [options]           run a peer: join the cluster, crawl the hosts it owns, serve the API
  shoal seed URL… [--api HOST:PORT]
                                  add seed URLs through any peer's API
  shoal status [--api HOST:PORT] [--json]
                                  the cluster as one peer sees it
  shoal crawl URL… [options]      crawl from the seed URLs with local peers, then print a report
  shoal get URL (--data DIR | --api HOST:PORT) [--body] [--json]
                                  print the stored record of URL (and its body)
  shoal sim [options]             the demo: crawl a generated local web and report
  shoal help | --help             this text
  shoal version | --version

Options of start:
  --listen MULTIADDR      where to listen (repeatable; default /ip4/127.0.0.1/tcp/0)
  --bootstrap MULTIADDR   a peer to join through, with /p2p/<id> (repeatable)
  --api HOST:PORT         the HTTP API (default 127.0.0.1:0)
  --cluster NAME          cluster name (default shoal)
  --replicas R            peers holding each host's queue, records and bodies (default 2)
  --heartbeat MS          membership heartbeat interval (default 2000)
  --silence MS            a peer not heard from for this long leaves the ring (default 10000)
  --seed URL              seed URL (repeatable)
  --data, --config and the crawl options below

Options of crawl:
  --peers N               local peers, each its own process (default 1: in this process)
  --data DIR              where the crawl is kept (default ./shoal-data); run again to resume
  --config FILE           a YAML file whose crawl: map holds any crawl option (see cluster.yml)
  --allow-private         allow private and loopback targets (needed for 127.0.0.1)
  --delay MS              ms between two requests to one host (default 1000)
  --host-concurrency N    connections per host (default 1)
  --concurrency N         requests in flight over all hosts (default 64)
  --ignore-crawl-delay    ignore robots.txt Crawl-delay
  --max-depth N           link hops from a seed (default 20)
  --max-pages N           URLs admitted in all (default unlimited)
  --max-pages-per-host N  URLs admitted per host (default 100000)
  --scope host|domain|any what to crawl beyond the seeds (default host)
  --include REGEX         crawl only URLs matching (repeatable)
  --exclude REGEX         never crawl URLs matching (repeatable)
  --max-body-size BYTES   per response (default 10 MiB)
  --timeout MS            whole-request timeout (default 60000)
  --contact URL           contact URL in the User-Agent
  --parse-workers N       threads that parse pages (default cores − 1, at most 4; 0: on the main thread)
  --heap-growth PERCENT   how far the JS heap grows past its live data before a full collection
                          (default 100; 0: V8's own rule, up to 4×; node --heap-growing-percent=N wins)
  --json                  print the report as one JSON object on the last line
  --quiet                 no progress lines
  --profile [FILE]        write a CPU profile of this process when it ends (or SHOAL_PROFILE=1|FILE);
                          open it in Chrome DevTools or speedscope (see README, Profiling)
`

const crawlOptions = {
  peers: { type: 'string' },
  data: { type: 'string' },
  config: { type: 'string' },
  'allow-private': { type: 'boolean' },
  delay: { type: 'string' },
  'host-concurrency': { type: 'string' },
  concurrency: { type: 'string' },
  'ignore-crawl-delay': { type: 'boolean' },
  'max-depth': { type: 'string' },
  'max-pages': { type: 'string' },
  'max-pages-per-host': { type: 'string' },
  scope: { type: 'string' },
  include: { type: 'string', multiple: true },
  exclude: { type: 'string', multiple: true },
  'max-body-size': { type: 'string' },
  timeout: { type: 'string' },
  contact: { type: 'string' },
  'parse-workers': { type: 'string' },
  'heap-growth': { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean' }
} satisfies ParseArgsConfig['options']

/** A flag's value as an integer ≥ min, or a ConfigError that names the flag. */
function intFlag (name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value.trim()) || Number(value) < min) {
    throw new ConfigError(`--${name} must be ${min === 0 ? 'a non-negative' : 'a positive'} integer, got "${value}"`)
  }
  return Number(value)
}

function parse (args: string[], options: ParseArgsConfig['options']): ReturnType<typeof parseArgs> {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true })
  } catch (err: any) {
    throw new ConfigError(String(err.message).replace(/\. To specify a positional argument.*$/, ''))
  }
}

async function crawlConfigFrom (values: Record<string, any>): Promise<CrawlConfig> {
  let fromFile: CrawlConfig = {}
  if (values.config !== undefined) fromFile = (await loadConfigFile(values.config)).crawl
  const flags: CrawlConfig = {
    allowPrivate: values['allow-private'],
    delay: intFlag('delay', values.delay, 0),
    hostConcurrency: intFlag('host-concurrency', values['host-concurrency'], 1),
    concurrency: intFlag('concurrency', values.concurrency, 1),
    ignoreCrawlDelay: values['ignore-crawl-delay'],
    maxDepth: intFlag('max-depth', values['max-depth'], 0),
    maxPages: intFlag('max-pages', values['max-pages'], 1),
    maxPagesPerHost: intFlag('max-pages-per-host', values['max-pages-per-host'], 1),
    scope: values.scope,
    include: values.include,
    exclude: values.exclude,
    maxBodySize: intFlag('max-body-size', values['max-body-size'], 1),
    requestTimeout: intFlag('timeout', values.timeout, 1),
    contact: values.contact,
    parseWorkers: intFlag('parse-workers', values['parse-workers'], 0),
    heapGrowth: intFlag('heap-growth', values['heap-growth'], 0)
  }
  if (flags.scope !== undefined && !['host', 'domain', 'any'].includes(flags.scope)) {
    throw new ConfigError(`--scope must be one of host, domain, any; got "${String(flags.scope)}"`)
  }
  const merged: Record<string, unknown> = { ...fromFile }
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v
  const config = validateConfig(merged, 'options')
  // Process-wide, so set here (before any page is fetched), not by the Peer a library user creates.
  applyHeapGrowth(config.heapGrowth)
  return config
}

function progressLine (s: PeerStats, started: number): string {
  const secs = (performance.now() - started) / 1000
  const fetched = s.done - (s.byStatus.blocked ?? 0)
  const errors = (s.byStatus.failed ?? 0) + (s.byStatus['http-error'] ?? 0)
  return `${secs.toFixed(1)}s  fetched ${fetched}  queued ${s.queued}  in flight ${s.inflight}  hosts ${s.hosts}  errors ${errors}  ${(fetched / Math.max(secs, 0.001)).toFixed(0)} pages/s`
}

function summary (r: CrawlReport): string {
  const statuses = Object.entries(r.byStatus).map(([k, v]) => `${k} ${v}`).join(', ')
  const dropped = Object.entries({ ...r.dropped, ...r.outOfScope }).map(([k, v]) => `${k} ${v}`).join(', ')
  const inv = Object.entries(r.invariants).map(([k, v]) => `${k} ${v ? 'ok' : 'FAILED'}`).join(', ')
  return [
    `crawl ${r.queued === 0 ? 'complete' : 'stopped'}: ${r.pagesFetched} pages fetched of ${r.pagesExpected} admitted in ${r.wallSeconds}s (${r.pagesPerSecond} pages/s)`,
    `  records: ${statuses || 'none'}`,
    `  not admitted: ${dropped || 'none'}`,
    `  requests ${r.requests}, ${(r.wireBytes / 1048576).toFixed(1)} MiB received; queued ${r.queued}; lost ${r.lostUrls}`,
    `  invariants: ${inv}`
  ].join('\n')
}

async function cmdCrawl (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, crawlOptions)
  if (positionals.length === 0) throw new ConfigError('crawl needs at least one seed URL: shoal crawl URL… (see shoal --help)')
  const config = await crawlConfigFrom(values)
  const dataDir = (values.data as string | undefined) ?? 'shoal-data'
  const json = values.json === true
  const quiet = values.quiet === true || json || !process.stderr.isTTY
  const ac = new AbortController()
  const onSignal = (): void => { ac.abort() }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const started = performance.now()
  const peers = intFlag('peers', values.peers as string | undefined, 1) ?? 1
  try {
    const report = peers > 1
      // Loaded only here: the local cluster's modules (and libp2p's peer ids) cost a one-peer crawl
      // start-up time for nothing.
      ? await (await import('./local-cluster.js')).crawlWithPeers({ seeds: positionals, peers, dataDir, config,
          onProgress: quiet ? undefined : (line) => { process.stderr.write(`\r${line}   `) } })
      : await crawl({
      ...config,
      seeds: positionals,
      dataDir,
      signal: ac.signal,
      onProgress: quiet ? undefined : (s) => { process.stderr.write(`\r${progressLine(s, started)}   `) }
    })
    if (!quiet) process.stderr.write('\n')
    if (json) process.stdout.write(JSON.stringify(report) + '\n')
    else process.stdout.write(summary(report) + '\n')
    return Object.values(report.invariants).every(Boolean) ? 0 : 1
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

const startOptions = {
  ...crawlOptions,
  listen: { type: 'string', multiple: true },
  bootstrap: { type: 'string', multiple: true },
  api: { type: 'string' },
  cluster: { type: 'string' },
  seed: { type: 'string', multiple: true },
  replicas: { type: 'string' },
  heartbeat: { type: 'string' },
  silence: { type: 'string' }
} satisfies ParseArgsConfig['options']

async function cmdStart (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, startOptions)
  if (positionals.length > 0) throw new ConfigError(`start takes no positional arguments (got "${positionals[0]}"); seeds go with --seed URL`)
  const file = values.config !== undefined ? await loadClusterFile(values.config as string) : {}
  const config = await crawlConfigFrom(values)
  const api = (values.api as string | undefined) ?? file.api
  if (api !== undefined) parseHostPort(api)
  const bootstrap = (values.bootstrap as string[] | undefined) ?? file.bootstrap ?? []
  await checkBootstrap(bootstrap)
  const { Daemon } = await import('./daemon.js')
  const daemon = new Daemon({
    dataDir: (values.data as string | undefined) ?? file.data ?? 'shoal-data',
    listen: (values.listen as string[] | undefined) ?? file.listen,
    bootstrap,
    cluster: (values.cluster as string | undefined) ?? file.cluster,
    replicas: intFlag('replicas', values.replicas as string | undefined, 1) ?? file.replicas,
    heartbeatInterval: intFlag('heartbeat', values.heartbeat as string | undefined, 1),
    silenceTimeout: intFlag('silence', values.silence as string | undefined, 1),
    api,
    seeds: [...(file.seeds ?? []), ...((values.seed as string[] | undefined) ?? [])],
    config,
    log: (line) => { process.stderr.write(`${line}\n`) }
  })
  try {
    await daemon.start()
  } catch (err) {
    // Whatever started (the network, timers) must not keep the process alive.
    await daemon.stop().catch(() => {})
    throw err
  }
  // Listening for the signals before saying where the peer is: a script that stops it as soon as it
  // reads the address must get a clean stop (and the --profile written), not a killed process.
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  process.stdout.write(`peer ${daemon.peerId}\n`)
  for (const ma of daemon.network.multiaddrs()) process.stdout.write(`listening ${ma}\n`)
  process.stdout.write(`api http://${daemon.api.address}\n`)
  await stopped
  await daemon.stop()
  return 0
}

/** Each bootstrap address must be a multiaddr ending in /p2p/<a valid peer id>. */
async function checkBootstrap (addrs: string[]): Promise<void> {
  const { multiaddr } = await import('@multiformats/multiaddr')
  const { peerIdFromString } = await import('@libp2p/peer-id')
  for (const a of addrs) {
    let id: string | undefined
    try {
      id = /\/p2p\/([^/]+)$/.exec(multiaddr(a).toString())?.[1]
    } catch (err: any) {
      throw new ConfigError(`bootstrap address "${a}" is not a multiaddr: ${err.message}`)
    }
    if (id == null) throw new ConfigError(`bootstrap address "${a}" must end in /p2p/<peer id> (the peer prints its full address when it starts)`)
    try {
      peerIdFromString(id)
    } catch {
      throw new ConfigError(`bootstrap address "${a}": "${id}" is not a peer id`)
    }
  }
}

async function apiRequest (api: string, path: string, init?: { method?: string, body?: string, headers?: Record<string, string> }): Promise<Response> {
  const { host, port } = parseHostPort(api)
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}${path}`
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) })
  } catch (err: any) {
    throw new Error(`cannot reach the peer API at ${api}: ${err.cause?.code ?? err.message}`)
  }
}

async function cmdSeed (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { api: { type: 'string' } })
  if (positionals.length === 0) throw new ConfigError('seed needs at least one URL: shoal seed URL… --api HOST:PORT')
  const res = await apiRequest((values.api as string | undefined) ?? DEFAULT_API, '/v1/seeds', {
    method: 'POST', body: JSON.stringify({ urls: positionals }), headers: { 'content-type': 'application/json' }
  })
  const body = await res.json() as any
  if (!res.ok) throw new Error(`the peer refused the seeds: ${body.error ?? res.status}`)
  for (const u of body.accepted) process.stdout.write(`seeded ${u}\n`)
  for (const r of body.rejected) process.stderr.write(`rejected ${r.url}: ${r.reason}\n`)
  return body.rejected.length > 0 ? 1 : 0
}

async function cmdStatus (args: string[]): Promise<number> {
  const { values } = parse(args, { api: { type: 'string' }, json: { type: 'boolean' } })
  const res = await apiRequest((values.api as string | undefined) ?? DEFAULT_API, '/v1/status')
  const s = await res.json() as any
  if (values.json === true) {
    process.stdout.write(JSON.stringify(s) + '\n')
    return 0
  }
  process.stdout.write(`peer ${s.peerId} (shoal ${s.version}), ring of ${s.ring.peers} peers, ${s.idle ? 'idle' : 'busy'}\n`)
  for (const p of s.peers) {
    const c = p.counters ?? {}
    process.stdout.write(`  ${String(p.peer).slice(-8)}  share ${(p.share * 100).toFixed(1).padStart(5)} %  queued ${c.queued ?? '?'}  in flight ${c.inflight ?? '?'}  fetched ${c.fetched ?? '?'}  stored ${c.stored ?? '?'}  under-replicated ${c.underReplicated ?? '?'}  api ${p.api ?? '?'}${p.self === true ? '  (this peer)' : ''}\n`)
  }
  return 0
}

const DEFAULT_API = '127.0.0.1:8080'

async function cmdGet (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    data: { type: 'string' },
    api: { type: 'string' },
    body: { type: 'boolean' },
    json: { type: 'boolean' }
  })
  if (positionals.length !== 1) throw new ConfigError('get needs exactly one URL: shoal get URL --data DIR [--body] [--json]')
  if (values.api !== undefined) return await getThroughApi(values.api as string, positionals[0], values.body === true, values.json === true)
  const dataDir = (values.data as string | undefined) ?? 'shoal-data'
  if (!existsSync(dataDir)) throw new ConfigError(`--data ${dataDir}: no such directory`)
  const { url, record, body } = await readStored(dataDir, positionals[0], { body: values.body === true })
  if (record == null) {
    if (values.json === true) process.stdout.write(JSON.stringify({ url, found: false }) + '\n')
    else process.stderr.write(`${url}: never seen in ${dataDir}\n`)
    return 1
  }
  if (values.body === true && values.json !== true) {
    if (body == null) {
      process.stderr.write(`${url}: no stored body (status ${record.status})\n`)
      return 1
    }
    process.stdout.write(body)
    return 0
  }
  if (values.json === true) {
    const out: Record<string, unknown> = { ...record }
    if (body != null) out.body = Buffer.from(body).toString('base64')
    process.stdout.write(JSON.stringify(out) + '\n')
  } else {
    for (const [k, v] of Object.entries(record)) process.stdout.write(`${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`)
  }
  return 0
}

async function getThroughApi (api: string, url: string, body: boolean, json: boolean): Promise<number> {
  const res = await apiRequest(api, `/v1/url?u=${encodeURIComponent(url)}${body ? '&body=1' : ''}`)
  if (body && res.ok) {
    process.stdout.write(Buffer.from(await res.arrayBuffer()))
    return 0
  }
  const data = await res.json() as any
  if (!res.ok) {
    if (json) process.stdout.write(JSON.stringify(data) + '\n')
    else process.stderr.write(`${data.url ?? url}: ${data.verdict ?? data.error}\n`)
    return 1
  }
  if (json) process.stdout.write(JSON.stringify(data) + '\n')
  else for (const [k, v] of Object.entries(data)) process.stdout.write(`${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`)
  return 0
}

export async function main (argv: string[]): Promise<number> {
  const [cmd, ...args] = argv
  let rest = args
  let profiler: CpuProfiler | undefined
  try {
    // --profile [FILE] or SHOAL_PROFILE: a CPU profile of the whole command, written when it ends
    // (for start: after SIGINT or SIGTERM has stopped the peer).
    if (cmd === 'crawl' || cmd === 'start' || cmd === 'sim') {
      const asked = takeProfileOption(cmd, args)
      rest = asked.args
      if (asked.file !== undefined) profiler = await startCpuProfile(asked.file)
    }
    return await run(cmd, rest)
  } catch (err: any) {
    return reportError(cmd, err)
  } finally {
    if (profiler != null) {
      try {
        const file = await profiler.stop()
        process.stderr.write(`shoal ${cmd}: CPU profile written to ${file} (open it in Chrome DevTools › Performance, or https://www.speedscope.app)\n`)
      } catch (err: any) {
        process.stderr.write(`shoal ${cmd}: could not write the CPU profile: ${err?.message ?? String(err)}\n`)
      }
    }
  }
}

async function run (cmd: string | undefined, rest: string[]): Promise<number> {
  try {
    switch (cmd) {
      case 'crawl': return await cmdCrawl(rest)
      case 'get': return await cmdGet(rest)
      case 'sim': {
        const { runDemo } = await import('../sim/demo.js')
        return await runDemo(rest)
      }
      case 'version': case '--version': case '-v':
        process.stdout.write(`shoal ${VERSION}\n`)
        return 0
      case undefined: case 'help': case '--help': case '-h':
        process.stdout.write(USAGE)
        return cmd === undefined ? EXIT_USAGE : 0
      case 'start': return await cmdStart(rest)
      case 'seed': return await cmdSeed(rest)
      case 'status': return await cmdStatus(rest)
      case 'export':
        process.stderr.write('shoal: "export" is not in this version yet; see shoal --help\n')
        return EXIT_USAGE
      default:
        process.stderr.write(`shoal: unknown command "${cmd}"; see shoal --help\n`)
        return EXIT_USAGE
    }
  } catch (err: any) {
    return reportError(cmd, err)
  }
}

function reportError (cmd: string | undefined, err: any): number {
  if (err?.name === 'ConfigError') {
    process.stderr.write(`shoal ${cmd}: ${err.message}\n`)
    return EXIT_USAGE
  }
  process.stderr.write(`shoal ${cmd}: ${err?.message ?? String(err)}\n`)
  if (process.env.DEBUG != null) process.stderr.write(`${err?.stack}\n`)
  return 1
}

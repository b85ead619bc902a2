import { spawn } from 'node:child_process'
import { parseArgs } from 'node:util'
import { getHeapStatistics } from 'node:v8'
import { ConfigError } from '../node/errors.js'
import { launcherPath } from '../node/paths.js'
import { FAULT_KINDS, parseFault, type Fault, type FaultKind } from './faults.js'
import { runReal, type SimReport } from './run.js'

const HELP = `shoal sim — crawl a generated local web with real peers, stage faults, check the invariants

Usage: shoal sim [options] [--kill K@T] [--restart K@T] [--join K@T] [--pause K@T[..T]] [--partition A|B@T[..T]]

  --peers N            real peers at the start, each its own process on 127.0.0.1 (default 4)
  --hosts H            hosts of the synthetic web, each its own server on 127.0.0.1 (default 12)
  --pages P            pages in all (default 3000)
  --seed S             the web is generated from this seed: same seed, same web (default 1)
  --profile P          small (~5 KB, ~20 links a page) or large (~30 KB, ~150 links) (default small)
  --realistic          the web's every feature on: 5–100 KB pages with 10–300 links, robots.txt groups
                       and Crawl-delay, redirect chains, 404/410, transient 5xx/429 with Retry-After,
                       slow and stalled answers, over-cap and compressed bodies, non-UTF-8 charsets,
                       malformed HTML, spider traps, aliases, offsite hosts (peers time out after 2 s)
  --replicas R         copies of every record and body (default: the peers' default, 2)
  --delay MS           per-host delay between requests (default 50)
  --host-concurrency N connections per host (default 1)
  --heartbeat MS       membership heartbeat of the peers (default 2000)
  --silence MS         a peer not heard from this long leaves the ring (default 10000)
  --sample N           URLs asked of every peer at the end (default 50)
  --json               print the report as one JSON object on the last line

Faults (repeat a flag for more; K is a peer index: 0 … N−1 from the start, N, N+1 … for joiners):
  --kill K@T           SIGKILL peer K
  --restart K@T        SIGKILL peer K if it runs, then start it again on its data dir
  --join K@T           start a new peer K, which joins through a live one
  --pause K@T[..T]     SIGSTOP peer K, SIGCONT at the end (default: silence + 5 s later)
  --partition A|B@T[..T]
                       cut peers A (e.g. 0,1) off from peers B (default: all others) until the end
                       (default: 10 s later), through a test-only connection gater
  --no-faults          no faults (by default, with 3 or more peers: --kill 1@30% --join N@50%)
  T is seconds after the seeds (12s) or a share of the expected pages fetched (30%).

Model mode (one process, a virtual clock, a simulated network and web; seeded and deterministic):
  --model              run the model instead of real peers (defaults: 50 peers, 50,000 pages, hosts
                       pages/100, 1 s per-host delay); --peers, --pages, --hosts, --seed, --replicas,
                       --delay apply; same seed and options, byte-identical report (--json, less "wall")
  --fault SPEC         a fault of the model: KIND[:AMOUNT]@START[..END], KIND one of kill, restart,
                       join, pause, partition, rolling-restart, mass-kill; AMOUNT a count (kill:3),
                       a share of the peers (mass-kill:20%) or peers by index (kill:#2, partition:#0,1);
                       START a virtual time (30s) or a share of the pages fetched (20%); END the same
                       or +8s. E.g. --fault mass-kill:20%@30% --fault 'partition:50%@10s..+30s'
  A large model (over 1 M pages) re-runs itself with a 4 GB heap.

Exit code 0 when every invariant holds, 1 when one fails, 2 on a bad option.
`

function int (name: string, v: string | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt
  if (!/^\d+$/.test(v) || Number(v) < min) throw new ConfigError(`--${name} must be ${min === 0 ? 'a whole number' : 'a positive integer'}, got "${v}"`)
  return Number(v)
}

/** `shoal sim` and `npm start`. */
export async function runDemo (args: string[]): Promise<number> {
  let values
  try {
    values = parseArgs({
      args,
      options: {
        peers: { type: 'string' },
        hosts: { type: 'string' },
        pages: { type: 'string' },
        seed: { type: 'string' },
        profile: { type: 'string' },
        realistic: { type: 'boolean' },
        replicas: { type: 'string' },
        delay: { type: 'string' },
        'host-concurrency': { type: 'string' },
        heartbeat: { type: 'string' },
        silence: { type: 'string' },
        sample: { type: 'string' },
        kill: { type: 'string', multiple: true },
        restart: { type: 'string', multiple: true },
        join: { type: 'string', multiple: true },
        pause: { type: 'string', multiple: true },
        partition: { type: 'string', multiple: true },
        'no-faults': { type: 'boolean' },
        model: { type: 'boolean' },
        fault: { type: 'string', multiple: true },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' }
      },
      strict: true,
      allowPositionals: false
    }).values
  } catch (err: any) {
    throw new ConfigError(err.message)
  }
  if (values.help === true) {
    process.stdout.write(HELP)
    return 0
  }
  if (values.model === true) return await runModelCli(args, values)
  if (values.fault !== undefined) throw new ConfigError('--fault is for the model mode (--model); real peers take --kill, --restart, --join, --pause, --partition')
  const profile = values.profile ?? 'small'
  if (profile !== 'small' && profile !== 'large') throw new ConfigError(`--profile must be small or large, got "${profile}"`)
  const peers = int('peers', values.peers, 4)
  const hosts = int('hosts', values.hosts, 12)
  const pages = int('pages', values.pages, 3000)
  const seed = int('seed', values.seed, 1)
  const replicas = values.replicas === undefined ? undefined : int('replicas', values.replicas, 2)
  const faults: Fault[] = []
  for (const kind of FAULT_KINDS) for (const v of (values[kind] as string[] | undefined) ?? []) faults.push(parseFault(kind as FaultKind, v))
  if (values['no-faults'] === true && faults.length > 0) throw new ConfigError('--no-faults and a fault flag: choose one')
  if (faults.length === 0 && values['no-faults'] !== true && peers >= 3) {
    faults.push(parseFault('kill', '1@30%'), parseFault('join', `${peers}@50%`))
  }
  const json = values.json === true
  const tty = process.stderr.isTTY && !json

  if (!json) {
    process.stdout.write(`synthetic web: ${hosts} hosts, ${pages} pages (seed ${seed}, ${values.realistic === true ? 'realistic' : `${profile} pages`}); ${peers} peer${peers === 1 ? '' : 's'}` +
      `${faults.length > 0 ? `; faults: ${faults.map(f => f.spec).join(', ')}` : ''}\n`)
  }
  const report = await runReal({
    peers,
    hosts,
    pages,
    seed,
    profile,
    replicas,
    faults,
    delay: int('delay', values.delay, 50, 0),
    hostConcurrency: int('host-concurrency', values['host-concurrency'], 1),
    heartbeat: values.heartbeat === undefined ? undefined : int('heartbeat', values.heartbeat, 2000),
    silence: values.silence === undefined ? undefined : int('silence', values.silence, 10000),
    sample: int('sample', values.sample, 50, 0),
    web: values.realistic === true ? { realistic: true } : undefined,
    requestTimeout: values.realistic === true ? 2000 : undefined,
    onProgress: tty ? (line) => { process.stderr.write(`\r\x1b[K${line}`) } : undefined,
    onEvent: json ? undefined : (line) => { process.stderr.write(`${tty ? '\r\x1b[K' : ''}${line}\n`) }
  })
  if (tty) process.stderr.write('\r\x1b[K')
  const ok = Object.values(report.invariants).every(Boolean)
  process.stdout.write(json ? JSON.stringify(report) + '\n' : formatReport(report))
  return ok ? 0 : 1
}

/** The report as a table a person reads. */
export function formatReport (r: SimReport): string {
  const lines: string[] = []
  const rows: Array<[string, string | number]> = [
    ['peers (start → end)', `${r.peers} → ${r.peersAtEnd}${r.replicas != null ? `, r = ${r.replicas}` : ''}`],
    ['pages expected (ground truth)', r.pagesExpected],
    ['pages fetched', r.pagesFetched],
    ['coverage', `${(r.coverage * 100).toFixed(1)} %`],
    ['lost URLs', r.lostUrls],
    ['duplicate fetches', `${r.duplicateFetches} (${r.duplicates.atFault} in flight at a fault, ${r.duplicates.duringPartition} during a partition, ${r.duplicates.unexplained} unexplained)`],
    ['politeness violations', `${r.politeness.violations} (${r.politeness.excused} during a hand-off)`],
    ['disallowed requests', r.disallowedRequests],
    ['under-replicated', r.underReplicated],
    ['same answer from every peer', `${r.sample.urls - r.sample.mismatches} of ${r.sample.urls} URLs × ${r.sample.peers} peers`],
    ['links routed between peers', `${r.messagesRouted} messages, ${(r.bytesRouted / 1024).toFixed(0)} KiB`],
    ['replication traffic', `${(r.replicationBytes / 1024).toFixed(0)} KiB`],
    ['crawl time', `${r.crawlSeconds} s (${r.wallSeconds} s with start and checks)`],
    ['pages/s', r.pagesPerSecond]
  ]
  for (const [k, v] of rows) lines.push(`  ${k.padEnd(30)} ${v}`)
  if (r.faults.length > 0) {
    lines.push('faults:')
    for (const f of r.faults) {
      const bits = [`at ${f.firedAt} s (${(f.firedAtShare * 100).toFixed(0)} % fetched)`]
      if (f.endedAt !== undefined) bits.push(`ended ${f.endedAt} s`)
      if (f.settleSeconds !== undefined) bits.push(`ring settled in ${f.settleSeconds} s`)
      if (f.recoverySeconds !== undefined) bits.push(`${f.spec.startsWith('kill') || f.spec.startsWith('pause') ? 'its hosts fetched again' : 'fetching'} after ${f.recoverySeconds} s`)
      bits.push(`${f.duplicates} duplicate${f.duplicates === 1 ? '' : 's'}`)
      lines.push(`  ${f.spec.padEnd(30)} ${bits.join(', ')}${f.note != null ? ` (${f.note})` : ''}`)
    }
  }
  lines.push('invariants:')
  for (const [k, v] of Object.entries(r.invariants)) lines.push(`  ${k.padEnd(30)} ${v ? 'ok' : 'FAILED'}`)
  for (const e of [...r.duplicates.examples, ...r.politeness.examples, ...r.sample.examples]) lines.push(`  ! ${e}`)
  lines.push(Object.values(r.invariants).every(Boolean) ? 'all invariants hold' : 'SOME INVARIANTS FAILED')
  return lines.join('\n') + '\n'
}

/** Model mode's heap: a large model re-runs itself with room (its young generation too: fewer GCs). */
const MODEL_NODE_FLAGS = ['--max-old-space-size=4096', '--max-semi-space-size=256']
const BIN = launcherPath(import.meta.url)

async function runModelCli (args: string[], values: Record<string, unknown>): Promise<number> {
  for (const k of ['kill', 'restart', 'join', 'pause', 'partition', 'realistic', 'profile', 'host-concurrency', 'heartbeat', 'silence', 'sample']) {
    if (values[k] !== undefined) throw new ConfigError(`--${k} is for real peers; the model takes --fault SPEC (see shoal sim --help)`)
  }
  const pages = values.pages === undefined ? undefined : int('pages', values.pages as string, 50_000)
  if ((pages ?? 0) > 1_000_000 && getHeapStatistics().heap_size_limit < 3.5 * 2 ** 30 && process.env.SHOAL_SIM_CHILD !== '1') {
    const child = spawn(process.execPath, [...MODEL_NODE_FLAGS, BIN, 'sim', ...args], { stdio: 'inherit', env: { ...process.env, SHOAL_SIM_CHILD: '1' } })
    return await new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 1)))
  }
  const { runModel } = await import('./model/index.js')
  const json = values.json === true
  if (!json) process.stdout.write('model mode: every peer in this process, on a virtual clock\n')
  const report = await runModel({
    peers: values.peers === undefined ? undefined : int('peers', values.peers as string, 50),
    pages,
    hosts: values.hosts === undefined ? undefined : int('hosts', values.hosts as string, 500),
    seed: values.seed === undefined ? undefined : int('seed', values.seed as string, 1),
    replicas: values.replicas === undefined ? undefined : int('replicas', values.replicas as string, 2),
    delay: values.delay === undefined ? undefined : int('delay', values.delay as string, 1000, 0),
    faults: (values.fault as string[] | undefined) ?? []
  })
  const ok = Object.values(report.invariants).every(Boolean)
  if (json) {
    process.stdout.write(JSON.stringify({ ...report, wallSeconds: report.wall?.wallSeconds, pagesPerSecond: report.wall?.pagesPerSecond }) + '\n')
    return ok ? 0 : 1
  }
  const pct = (x: number): string => `${(x * 100).toFixed(1)} %`
  const rows: Array<[string, string | number]> = [
    ['peers (start → end)', `${report.peers} → ${report.peersAtEnd}, r = ${report.replicas}`],
    ['hosts, pages', `${report.hosts}, ${report.pages}`],
    ['pages expected (ground truth)', report.pagesExpected],
    ['pages fetched', report.pagesFetched],
    ['coverage', pct(report.coverage)],
    ['lost URLs', report.lostUrls],
    ['duplicate fetches (violations)', report.duplicateFetches],
    ['re-fetched: in flight at a fault', report.inFlightAtFault],
    ['re-fetched: during a partition', report.duplicatesDuringPartition],
    ['re-fetched: all r copies down', report.duplicatesAfterDataLoss],
    ['politeness violations', report.politenessViolations],
    ['under-replicated records', report.underReplicated],
    ['ring: busiest share / mean', report.ring.shareMaxOverMean],
    ['links routed', `${report.linksRouted} in ${report.messagesRouted} messages, ${report.bytesPerLink} bytes a link`],
    ['replication per stored page', `${report.replication.bytesPerStoredPage} bytes`],
    ['virtual time', `${report.virtualSeconds} s (${report.pagesPerVirtualSecond} pages per virtual s)`],
    ['wall time', `${report.wall?.wallSeconds} s, peak RSS ${report.wall?.peakRssMB} MB`]
  ]
  const lines = rows.map(([k, v]) => `  ${k.padEnd(34)} ${v}`)
  if (report.faults.length > 0) {
    lines.push('faults:')
    for (const f of report.faults) {
      const fo = f.failoverMedianSeconds === undefined ? '' : `, hosts fetched again after ${f.failoverMedianSeconds} s (median), ${f.failoverMaxSeconds} s (max)`
      lines.push(`  ${f.spec.padEnd(34)} ${f.at < 0 ? 'never struck' : `at ${f.at} s`}, ${f.peerCount} peers${fo}`)
    }
  }
  lines.push('invariants:')
  for (const [k, v] of Object.entries(report.invariants)) lines.push(`  ${k.padEnd(34)} ${v ? 'ok' : 'FAILED'}`)
  for (const x of report.samples.slice(0, 10)) lines.push(`  ! page ${x.page} of host ${x.host}, peer ${x.peer} at ${x.at} s: ${x.note}`)
  lines.push(ok ? 'all invariants hold' : 'SOME INVARIANTS FAILED')
  process.stdout.write(lines.join('\n') + '\n')
  return ok ? 0 : 1
}

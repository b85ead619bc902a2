import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { crawl } from '../node/crawl.js'
import { crawlWithPeers } from '../node/local-cluster.js'
import { ConfigError } from '../node/errors.js'
import { startSyntheticWeb } from './web.js'

const HELP = `shoal sim — crawl a generated local web and check the result against its ground truth

Usage: shoal sim [--peers N] [--hosts H] [--pages P] [--seed S] [--profile small|large] [--json]

  --peers N      real peers, each its own process, joined over libp2p on 127.0.0.1 (default 4)
  --hosts H      hosts of the synthetic web, each its own server on 127.0.0.1 (default 12)
  --pages P      pages in all (default 3000)
  --seed S       the web is generated from this seed: same seed, same web (default 1)
  --profile      small (~5 KB, ~20 links a page) or large (~30 KB, ~150 links) (default small)
  --json         print the report as one JSON object on the last line

Faults (kill, join, pause, partition) and the deterministic model mode come with replication.
`

function int (name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new ConfigError(`--${name} must be a positive integer, got "${v}"`)
  return Number(v)
}

/** `npm start`: serve a synthetic web on loopback, crawl it, compare with the ground truth. */
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
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' }
      },
      strict: true
    }).values
  } catch (err: any) {
    throw new ConfigError(err.message)
  }
  if (values.help === true) {
    process.stdout.write(HELP)
    return 0
  }
  const profile = values.profile ?? 'small'
  if (profile !== 'small' && profile !== 'large') throw new ConfigError(`--profile must be small or large, got "${profile}"`)
  const peers = int('peers', values.peers, 4)
  const hosts = int('hosts', values.hosts, 12)
  const pages = int('pages', values.pages, 3000)
  const seed = int('seed', values.seed, 1)
  const json = values.json === true
  const tty = process.stderr.isTTY && !json

  const web = await startSyntheticWeb({ seed, hosts, pages, profile })
  const dir = await mkdtemp(join(tmpdir(), 'shoal-sim-'))
  try {
    if (!json) process.stdout.write(`synthetic web: ${hosts} hosts, ${web.expectedUrls().length} reachable pages (seed ${seed}, ${profile} pages); ${peers} peer${peers === 1 ? '' : 's'}\n`)
    const started = performance.now()
    const progress = (line: string): void => { process.stderr.write(`\r${line}   `) }
    const report = peers === 1
      ? await crawl({
        seeds: [...web.rootUrls],
        dataDir: join(dir, 'peer-0'),
        allowPrivate: true,
        delay: 0,
        hostConcurrency: 4,
        onProgress: tty
          ? (s) => {
              const secs = (performance.now() - started) / 1000
              const done = s.done - (s.byStatus.blocked ?? 0)
              progress(`${secs.toFixed(1)}s  fetched ${done}  queued ${s.queued}  peers 1  errors ${(s.byStatus.failed ?? 0) + (s.byStatus['http-error'] ?? 0)}  ${(done / secs).toFixed(0)} pages/s`)
            }
          : undefined,
        progressInterval: 250
      })
      : await crawlWithPeers({
        seeds: [...web.rootUrls],
        peers,
        dataDir: dir,
        config: { allowPrivate: true, delay: 0, hostConcurrency: 4 },
        onProgress: tty ? progress : undefined
      })
    if (tty) process.stderr.write('\n')
    const truth = web.summary()
    report.pagesExpected = truth.pagesExpected
    report.coverage = truth.coverage
    report.duplicateFetches = truth.duplicateFetches
    report.invariants = {
      ...report.invariants,
      fullCoverage: truth.coverage === 1,
      noDuplicateFetches: truth.duplicateFetches === 0,
      robotsObeyed: truth.disallowedRequests === 0
    }
    const ok = Object.values(report.invariants).every(Boolean)
    if (json) {
      process.stdout.write(JSON.stringify(report) + '\n')
    } else {
      const rows: Array<[string, string | number]> = [
        ['peers', report.peers],
        ['links routed between peers', `${report.messagesRouted} messages, ${(report.bytesRouted / 1024).toFixed(0)} KiB`],
        ['pages expected (ground truth)', truth.pagesExpected],
        ['pages fetched', truth.pagesFetched],
        ['coverage', `${(truth.coverage * 100).toFixed(1)} %`],
        ['duplicate fetches', truth.duplicateFetches],
        ['lost URLs', report.lostUrls],
        ['robots.txt requests', truth.robotsRequests],
        ['disallowed requests', truth.disallowedRequests],
        ['wall time', `${report.wallSeconds} s`],
        ['pages/s', report.pagesPerSecond]
      ]
      for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(30)} ${v}\n`)
      process.stdout.write('invariants:\n')
      for (const [k, v] of Object.entries(report.invariants)) process.stdout.write(`  ${k.padEnd(30)} ${v ? 'ok' : 'FAILED'}\n`)
      process.stdout.write(ok ? 'all invariants hold\n' : 'SOME INVARIANTS FAILED\n')
    }
    return ok ? 0 : 1
  } finally {
    await web.close()
    await rm(dir, { recursive: true, force: true })
  }
}

import { existsSync } from 'node:fs'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { loadConfigFile, validateConfig, type CrawlConfig } from './config.js'
import { crawl, readStored, type CrawlReport } from './crawl.js'
import { ConfigError } from './errors.js'
import { VERSION } from './constants.js'
import type { PeerStats } from './peer.js'

/** Exit codes: 0 done, 1 the crawl or command failed, 2 bad arguments or config. */
const EXIT_USAGE = 2

const USAGE = `shoal ${VERSION} — a leaderless peer-to-peer web crawler

Usage:
  shoal crawl URL… [options]      crawl from the seed URLs with a local peer, then print a report
  shoal get URL --data DIR [--body] [--json]
                                  print the stored record of URL (and its body) from a data dir
  shoal sim [options]             the demo: crawl a generated local web and report
  shoal help | --help             this text
  shoal version | --version

Options of crawl:
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
  --json                  print the report as one JSON object on the last line
  --quiet                 no progress lines
`

const crawlOptions = {
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
    contact: values.contact
  }
  if (flags.scope !== undefined && !['host', 'domain', 'any'].includes(flags.scope)) {
    throw new ConfigError(`--scope must be one of host, domain, any; got "${String(flags.scope)}"`)
  }
  const merged: Record<string, unknown> = { ...fromFile }
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v
  return validateConfig(merged, 'options')
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
  try {
    const report = await crawl({
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

async function cmdGet (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    data: { type: 'string' },
    api: { type: 'string' },
    body: { type: 'boolean' },
    json: { type: 'boolean' }
  })
  if (positionals.length !== 1) throw new ConfigError('get needs exactly one URL: shoal get URL --data DIR [--body] [--json]')
  if (values.api !== undefined) throw new ConfigError('--api needs a running peer (shoal start), which this version does not have yet; use --data DIR')
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

export async function main (argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
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
      case 'start': case 'seed': case 'status': case 'export':
        process.stderr.write(`shoal: "${cmd}" is part of the cluster and is not in this version yet; see shoal --help\n`)
        return EXIT_USAGE
      default:
        process.stderr.write(`shoal: unknown command "${cmd}"; see shoal --help\n`)
        return EXIT_USAGE
    }
  } catch (err: any) {
    if (err?.name === 'ConfigError') {
      process.stderr.write(`shoal ${cmd}: ${err.message}\n`)
      return EXIT_USAGE
    }
    process.stderr.write(`shoal ${cmd}: ${err?.message ?? String(err)}\n`)
    if (process.env.DEBUG != null) process.stderr.write(`${err?.stack}\n`)
    return 1
  }
}

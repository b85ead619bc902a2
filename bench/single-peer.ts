/**
 * Single-peer benchmark: shoal against `wget --recursive` and Crawlee's CheerioCrawler, crawling the
 * same generated site side by side in the same run.
 *
 *   node --import tsx bench/single-peer.ts [--pages 20000] [--profile large|small] [--runs 3]
 *        [--tools shoal,wget,crawlee] [--seed 1] [--hosts 1] [--timeout 1800]
 *        [--crawlee-concurrency 64] [--crawlee-args='--header-generator']
 *        [--shoal-host-concurrency 64] [--shoal-args='…'] [--no-cache] [--warmup 2000] [--out FILE]
 *
 * The synthetic web (sim/web.ts) runs in this process on 127.0.0.1; each tool runs as its own child
 * process, one after the other, in the same order every run (shoal, wget, crawlee, shoal, wget, …),
 * and crawls the whole site from its root URL. The server's counters say what each crawl fetched.
 * Per tool and run: wall seconds, pages/s (distinct expected pages the server served / wall),
 * CPU seconds (user + sys of the tool and its children), CPU s per 1000 pages, peak RSS, coverage
 * and duplicate fetches. Prints medians and shoal/other ratios, and writes everything to
 * bench/results/single-peer-<profile>.json.
 *
 * Before the first run the server answers `--warmup` of the site's pages (8 at a time, this
 * process's own client): V8 compiles the server's code on its first few thousand requests, and
 * without this the tool that crawls first in the first run pays for it (it was often that run's
 * slowest).
 *
 * A tool that is missing or fails is reported (with the tail of its stderr) and skipped; the others
 * go on. Crawlee lives in bench/'s own package: `npm ci --prefix bench` first.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { cpus, freemem, loadavg, release, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { startSyntheticWeb } from '../sim/web.js'
import type { CrawlSummary, SiteProfile, SyntheticWeb } from '../sim/web.js'
import { ensureDebianPackage, hasGnuTime, measure } from './measure.js'
import type { RunResult } from './measure.js'

const BENCH_DIR = dirname(fileURLToPath(import.meta.url))
const ROOT_DIR = resolve(BENCH_DIR, '..')
const second = 1000
const MiB = 1024 * 1024

type ToolName = 'shoal' | 'wget' | 'crawlee'
const TOOL_NAMES: ToolName[] = ['shoal', 'wget', 'crawlee']

interface Options {
  pages: number
  profile: SiteProfile
  runs: number
  tools: ToolName[]
  seed: number
  hosts: number
  timeoutMs: number
  crawleeConcurrency: number
  crawleeArgs: string[]
  shoalHostConcurrency: number
  shoalArgs: string[]
  cache: boolean
  warmup: number
  out: string
}

interface Tool {
  name: ToolName
  /** Why it cannot run here, or undefined when it can. */
  unavailable: () => string | undefined
  /** Version string for the record. */
  version: () => string
  command: (roots: readonly string[], scratch: string) => { command: string, args: string[], cwd: string }
  /** Exit codes that mean the crawl completed (wget exits 8 when any URL answered an error). */
  okExitCodes: number[]
}

/** One crawl by one tool. */
interface RunRecord {
  tool: ToolName
  run: number
  ok: boolean
  error?: string
  wallSeconds: number
  pagesFetched: number
  pagesPerSecond: number
  cpuSeconds?: number
  userSeconds?: number
  sysSeconds?: number
  cpuSecondsPer1000Pages?: number
  peakRssMB?: number
  peakTreeRssMB: number
  coverage: number
  duplicateFetches: number
  requests: number
  connections: number
  robotsRequests: number
  disallowedRequests: number
  notFound: number
  /** First to last request seen by the server. */
  activeSeconds: number
  /** CPU the server (this process) spent while the tool ran. */
  serverCpuSeconds: number
  /** 1-minute load average just before the run: other work on the machine skews the figures. */
  loadAverageBefore: number
  /**
   * CPU the whole machine spent during the run, and what is left of it after the tool and the server:
   * other processes competing for the cores (from /proc/stat).
   */
  machineCpuSeconds?: number
  otherCpuSeconds?: number
  userAgents: string[]
  exitCode: number | null
  /** The tool's own last-line JSON report, if it printed one. */
  selfReport?: unknown
}

interface Medians {
  runs: number
  wallSeconds: number
  pagesPerSecond: number
  cpuSeconds?: number
  cpuSecondsPer1000Pages?: number
  peakRssMB?: number
  peakTreeRssMB: number
  coverage: number
  duplicateFetches: number
  /** CPU seconds other processes took during the run: high means the wall figures are skewed. */
  otherCpuSeconds?: number
}

function log (s: string): void {
  process.stderr.write(s + '\n')
}

function parseOptions (argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      pages: { type: 'string', default: '20000' },
      profile: { type: 'string', default: 'large' },
      runs: { type: 'string', default: '3' },
      tools: { type: 'string', default: TOOL_NAMES.join(',') },
      seed: { type: 'string', default: '1' },
      hosts: { type: 'string', default: '1' },
      timeout: { type: 'string', default: '1800' },
      'crawlee-concurrency': { type: 'string', default: '64' },
      'crawlee-args': { type: 'string', default: '' },
      'shoal-host-concurrency': { type: 'string', default: '64' },
      'shoal-args': { type: 'string', default: '' },
      'no-cache': { type: 'boolean', default: false },
      warmup: { type: 'string', default: '2000' },
      out: { type: 'string' },
      help: { type: 'boolean', default: false }
    },
    strict: true
  })
  if (values.help) {
    process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0] + '*/\n')
    process.exit(0)
  }
  const int = (name: string, v: string, min: number): number => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${v}`)
    return n
  }
  const profile = values.profile as SiteProfile
  if (profile !== 'small' && profile !== 'large') throw new Error(`--profile must be small or large, got ${values.profile}`)
  const tools = values.tools.split(',').map(s => s.trim()).filter(s => s !== '')
  for (const t of tools) if (!TOOL_NAMES.includes(t as ToolName)) throw new Error(`--tools: unknown tool ${t} (known: ${TOOL_NAMES.join(', ')})`)
  return {
    pages: int('pages', values.pages, 1),
    profile,
    runs: int('runs', values.runs, 1),
    tools: tools as ToolName[],
    seed: int('seed', values.seed, 0),
    hosts: int('hosts', values.hosts, 1),
    timeoutMs: int('timeout', values.timeout, 1) * second,
    crawleeConcurrency: int('crawlee-concurrency', values['crawlee-concurrency'], 1),
    crawleeArgs: values['crawlee-args'].split(' ').filter(a => a !== ''),
    shoalHostConcurrency: int('shoal-host-concurrency', values['shoal-host-concurrency'], 1),
    shoalArgs: values['shoal-args'].split(' ').filter(a => a !== ''),
    cache: !values['no-cache'],
    warmup: int('warmup', values.warmup, 0),
    out: values.out ?? join(BENCH_DIR, 'results', `single-peer-${profile}.json`)
  }
}

/** GET each URL (8 at a time, kept-alive connections) and read its body: the server's code warms up. */
async function warmServer (urls: string[]): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 })
  let next = 0
  const loop = async (): Promise<void> => {
    while (next < urls.length) {
      const url = urls[next++]
      await new Promise<void>((resolve, reject) => {
        http.get(url, { agent }, (res) => { res.resume(); res.on('end', resolve); res.on('error', reject) }).on('error', reject)
      })
    }
  }
  try {
    await Promise.all(Array.from({ length: 8 }, loop))
  } finally {
    agent.destroy()
  }
}

/** Busy CPU seconds of the whole machine since boot (/proc/stat, all cores), or undefined off Linux. */
function machineBusySeconds (): number | undefined {
  try {
    const f = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal …: all but idle and iowait are busy. USER_HZ is 100 on Linux.
    return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)) / 100
  } catch {
    return undefined
  }
}

function firstLine (cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  return r.status === 0 ? (r.stdout.split('\n')[0] ?? '').trim() : 'unknown'
}

function tools (opts: Options): Record<ToolName, Tool> {
  const hasWget = (): boolean => spawnSync('wget', ['--version'], { encoding: 'utf8' }).status === 0
  return {
    shoal: {
      name: 'shoal',
      unavailable: () => existsSync(join(ROOT_DIR, 'bin', 'shoal.js')) ? undefined : 'bin/shoal.js not found',
      version: () => {
        const pkg = JSON.parse(readFileSync(join(ROOT_DIR, 'package.json'), 'utf8')) as { version: string }
        return `${pkg.version} (${firstLine('git', ['-C', ROOT_DIR, 'rev-parse', '--short', 'HEAD'])})`
      },
      command: (roots, scratch) => ({
        command: process.execPath,
        args: [
          join(ROOT_DIR, 'bin', 'shoal.js'), 'crawl', ...roots,
          '--data', join(scratch, 'data'), '--allow-private', '--delay', '0',
          '--host-concurrency', String(opts.shoalHostConcurrency), '--max-pages', '1000000', '--json',
          ...opts.shoalArgs
        ],
        cwd: ROOT_DIR
      }),
      okExitCodes: [0]
    },
    wget: {
      name: 'wget',
      unavailable: () => ensureDebianPackage('wget', hasWget, log) ? undefined : 'wget is not installed (apt-get install wget)',
      version: () => firstLine('wget', ['--version']),
      command: (roots, scratch) => ({
        command: 'wget',
        // robots=on is wget's default; said here so that the comparison is explicit.
        args: ['--recursive', '--level=inf', '--no-parent', '--no-verbose', '--delete-after', '-e', 'robots=on',
          '--directory-prefix', join(scratch, 'wget'), ...roots],
        cwd: scratch
      }),
      okExitCodes: [0, 8]
    },
    crawlee: {
      name: 'crawlee',
      unavailable: () => existsSync(join(BENCH_DIR, 'node_modules', 'crawlee', 'package.json'))
        ? undefined
        : 'Crawlee is not installed in bench/: run `npm ci --prefix bench`',
      version: () => (JSON.parse(readFileSync(join(BENCH_DIR, 'node_modules', 'crawlee', 'package.json'), 'utf8')) as { version: string }).version,
      command: (roots, scratch) => ({
        command: process.execPath,
        args: [join(BENCH_DIR, 'crawlee-crawl.mjs'), '--concurrency', String(opts.crawleeConcurrency), ...opts.crawleeArgs, ...roots],
        // Crawlee may create ./storage even in memory mode: keep it in the scratch directory.
        cwd: scratch
      }),
      okExitCodes: [0]
    }
  }
}

function lastJsonLine (stdout: string): unknown {
  const lines = stdout.trim().split('\n')
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i].trim()
    if (!l.startsWith('{')) continue
    try { return JSON.parse(l) } catch { return undefined }
  }
  return undefined
}

function tailLines (s: string, n: number): string {
  return s.trimEnd().split('\n').slice(-n).map(l => '    | ' + l).join('\n')
}

async function crawlOnce (tool: Tool, run: number, web: SyntheticWeb, opts: Options, gnuTime: boolean): Promise<RunRecord> {
  const scratch = mkdtempSync(join(tmpdir(), `shoal-bench-${tool.name}-`))
  web.reset()
  const loadAverageBefore = loadavg()[0]
  const cpuBefore = process.cpuUsage()
  const machineBefore = machineBusySeconds()
  let result: RunResult
  try {
    const cmd = tool.command(web.rootUrls, scratch)
    result = await measure({ ...cmd, timeoutMs: opts.timeoutMs }, gnuTime)
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
  const cpu = process.cpuUsage(cpuBefore)
  const machineAfter = machineBusySeconds()
  const machineCpuSeconds = machineBefore !== undefined && machineAfter !== undefined ? machineAfter - machineBefore : undefined
  const serverCpuSeconds = (cpu.user + cpu.system) / 1e6
  const s: CrawlSummary = web.summary()
  const pagesPerSecond = s.pagesFetched / result.wallSeconds
  let error: string | undefined
  if (result.timedOut) error = `timed out after ${opts.timeoutMs / second} s`
  else if (result.exitCode === null || !tool.okExitCodes.includes(result.exitCode)) error = `exited with ${result.exitCode ?? result.signal}`
  else if (s.pagesFetched === 0) error = 'fetched no page'
  return {
    tool: tool.name,
    run,
    ok: error === undefined,
    error,
    wallSeconds: result.wallSeconds,
    pagesFetched: s.pagesFetched,
    pagesPerSecond,
    cpuSeconds: result.cpuSeconds,
    userSeconds: result.userSeconds,
    sysSeconds: result.sysSeconds,
    cpuSecondsPer1000Pages: result.cpuSeconds !== undefined && s.pagesFetched > 0 ? result.cpuSeconds / s.pagesFetched * 1000 : undefined,
    peakRssMB: result.peakRssMiB,
    peakTreeRssMB: result.peakTreeRssMiB,
    coverage: s.coverage,
    duplicateFetches: s.duplicateFetches,
    requests: s.requests,
    connections: s.connections,
    robotsRequests: s.robotsRequests,
    disallowedRequests: s.disallowedRequests,
    notFound: s.notFound,
    activeSeconds: s.activeSeconds,
    serverCpuSeconds,
    loadAverageBefore,
    machineCpuSeconds,
    otherCpuSeconds: machineCpuSeconds !== undefined && result.cpuSeconds !== undefined
      ? Math.max(0, machineCpuSeconds - result.cpuSeconds - serverCpuSeconds)
      : undefined,
    userAgents: Object.keys(s.byUserAgent),
    exitCode: result.exitCode,
    selfReport: lastJsonLine(result.stdoutTail),
    ...(error !== undefined ? { stderrTail: tailLines(result.stderrTail, 20) } : {})
  }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

function medians (records: RunRecord[]): Medians | undefined {
  const ok = records.filter(r => r.ok)
  if (ok.length === 0) return undefined
  const opt = (f: (r: RunRecord) => number | undefined): number | undefined => {
    const xs = ok.map(f).filter((x): x is number => x !== undefined)
    return xs.length === 0 ? undefined : median(xs)
  }
  return {
    runs: ok.length,
    wallSeconds: median(ok.map(r => r.wallSeconds)),
    pagesPerSecond: median(ok.map(r => r.pagesPerSecond)),
    cpuSeconds: opt(r => r.cpuSeconds),
    cpuSecondsPer1000Pages: opt(r => r.cpuSecondsPer1000Pages),
    peakRssMB: opt(r => r.peakRssMB),
    peakTreeRssMB: median(ok.map(r => r.peakTreeRssMB)),
    coverage: median(ok.map(r => r.coverage)),
    duplicateFetches: median(ok.map(r => r.duplicateFetches)),
    otherCpuSeconds: opt(r => r.otherCpuSeconds)
  }
}

function fmt (x: number | undefined, digits = 1): string {
  return x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits)
}

function table (rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)))
  return rows.map(r => r.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join('  ')).join('\n')
}

export async function main (argv: string[]): Promise<number> {
  const opts = parseOptions(argv)
  const all = tools(opts)
  const gnuTime = hasGnuTime() || ensureDebianPackage('time', hasGnuTime, log)
  if (!gnuTime) log('GNU time unavailable: CPU from bash `times`, peak RSS from /proc polling')

  const active: Tool[] = []
  const skipped: Record<string, string> = {}
  for (const name of opts.tools) {
    const why = all[name].unavailable()
    if (why === undefined) active.push(all[name])
    else { skipped[name] = why; log(`skipping ${name}: ${why}`) }
  }
  const versions: Record<string, string> = {}
  for (const t of active) versions[t.name] = t.version()

  log(`generating the site: ${opts.pages} pages, profile ${opts.profile}, ${opts.hosts} host(s), seed ${opts.seed}…`)
  const pageBytes = opts.profile === 'large' ? 30 * 1024 : 5 * 1024
  const web = await startSyntheticWeb({
    seed: opts.seed,
    hosts: opts.hosts,
    pages: opts.pages,
    profile: opts.profile,
    // Render every body once, up front, so no crawl pays for rendering and the server stays fast.
    cacheBytes: opts.cache ? Math.ceil(opts.pages * pageBytes * 1.5) : 0
  })
  const t0 = performance.now()
  if (opts.cache) web.warm()
  const expected = web.expectedUrls()
  let siteBytes = 0
  let siteLinks = 0
  for (let h = 0; h < opts.hosts; h++) {
    for (let p = 0; p < web.site.hostPages(h); p++) siteLinks += web.site.links(h, p).length
  }
  for (const u of expected) siteBytes += web.body(u)?.length ?? 0
  log(`site ready in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${expected.length} pages, ` +
    `${(siteBytes / MiB).toFixed(0)} MiB, ${(siteBytes / expected.length / 1024).toFixed(1)} KiB and ` +
    `${(siteLinks / expected.length).toFixed(0)} links a page; root ${web.rootUrls.join(' ')}`)

  if (opts.warmup > 0) {
    const t1 = performance.now()
    await warmServer(expected.slice(0, opts.warmup))
    log(`server warmed up: ${Math.min(opts.warmup, expected.length)} pages in ${((performance.now() - t1) / 1000).toFixed(1)} s`)
  }

  const records: RunRecord[] = []
  const failed = new Set<ToolName>()
  const startedAt = new Date().toISOString()
  try {
    for (let run = 1; run <= opts.runs; run++) {
      for (const tool of active) {
        if (failed.has(tool.name)) continue
        log(`run ${run}/${opts.runs}: ${tool.name}…`)
        const r = await crawlOnce(tool, run, web, opts, gnuTime)
        records.push(r)
        if (r.ok) {
          log(`  ${fmt(r.wallSeconds)} s, ${fmt(r.pagesPerSecond, 0)} pages/s, CPU ${fmt(r.cpuSeconds)} s, ` +
            `peak RSS ${fmt(r.peakRssMB, 0)} MB, coverage ${fmt(r.coverage * 100, 2)} %, ${r.duplicateFetches} duplicate fetches` +
            `; other processes used ${fmt(r.otherCpuSeconds)} CPU s meanwhile`)
        } else {
          log(`  ${tool.name} failed: ${r.error}; skipping it from now on. stderr tail:\n${(r as RunRecord & { stderrTail?: string }).stderrTail ?? ''}`)
          failed.add(tool.name)
        }
      }
    }
  } finally {
    await web.close()
  }

  const summary: Partial<Record<ToolName, Medians>> = {}
  for (const t of active) {
    const m = medians(records.filter(r => r.tool === t.name))
    if (m !== undefined) summary[t.name] = m
  }
  const ratios: Record<string, { pagesPerSecond: number, cpuSecondsPer1000Pages?: number, peakRssMB?: number }> = {}
  const shoal = summary.shoal
  if (shoal !== undefined) {
    for (const [name, m] of Object.entries(summary)) {
      if (name === 'shoal') continue
      ratios[`shoal/${name}`] = {
        pagesPerSecond: shoal.pagesPerSecond / m.pagesPerSecond,
        cpuSecondsPer1000Pages: shoal.cpuSecondsPer1000Pages !== undefined && m.cpuSecondsPer1000Pages !== undefined
          ? shoal.cpuSecondsPer1000Pages / m.cpuSecondsPer1000Pages
          : undefined,
        peakRssMB: shoal.peakRssMB !== undefined && m.peakRssMB !== undefined ? shoal.peakRssMB / m.peakRssMB : undefined
      }
    }
  }

  const rows = [['tool', 'runs', 'wall s', 'pages/s', 'CPU s', 'CPU s/1000 p', 'peak RSS MB', 'coverage %', 'dup fetches', 'others\' CPU s']]
  for (const [name, m] of Object.entries(summary)) {
    rows.push([name, String(m.runs), fmt(m.wallSeconds), fmt(m.pagesPerSecond, 0), fmt(m.cpuSeconds), fmt(m.cpuSecondsPer1000Pages, 2),
      fmt(m.peakRssMB, 0), fmt(m.coverage * 100, 2), fmt(m.duplicateFetches, 0), fmt(m.otherCpuSeconds)])
  }
  for (const [name, r] of Object.entries(ratios)) {
    rows.push([name, '', '', fmt(r.pagesPerSecond, 2), '', fmt(r.cpuSecondsPer1000Pages, 2), fmt(r.peakRssMB, 2), '', '', ''])
  }
  process.stdout.write(`\nsingle peer, ${expected.length} pages (${opts.profile}), median of ${opts.runs} run(s):\n${table(rows)}\n`)
  for (const [name, why] of Object.entries(skipped)) process.stdout.write(`${name}: skipped (${why})\n`)
  for (const name of failed) process.stdout.write(`${name}: failed (see above)\n`)

  const cpuInfo = cpus()
  const result = {
    benchmark: 'single-peer',
    startedAt,
    finishedAt: new Date().toISOString(),
    options: { ...opts, out: undefined, timeoutSeconds: opts.timeoutMs / second, timeoutMs: undefined },
    machine: {
      cpus: cpuInfo.length,
      cpuModel: cpuInfo[0]?.model,
      memoryGiB: totalmem() / 1024 ** 3,
      freeMemoryGiB: freemem() / 1024 ** 3,
      kernel: release(),
      node: process.version
    },
    measurement: {
      cpu: gnuTime ? 'GNU time: user + sys of the tool and its children (rusage)' : 'bash times: user + sys of the tool and its children',
      peakRssMB: gnuTime ? 'GNU time %M: largest resident set of one process of the tree, MiB' : '/proc VmHWM polled every 500 ms, largest process, MiB',
      peakTreeRssMB: 'sum of VmRSS over the process tree, polled every 500 ms, MiB',
      pagesPerSecond: 'distinct expected pages the server served / wall seconds (spawn to exit)',
      duplicateFetches: 'requests beyond the first per URL, from the server counters'
    },
    versions,
    site: {
      seed: opts.seed,
      hosts: opts.hosts,
      profile: opts.profile,
      pagesExpected: expected.length,
      bytes: siteBytes,
      meanPageBytes: siteBytes / expected.length,
      meanLinksPerPage: siteLinks / expected.length
    },
    skipped,
    failed: [...failed],
    summary,
    ratios,
    runs: records
  }
  mkdirSync(dirname(opts.out), { recursive: true })
  writeFileSync(opts.out, JSON.stringify(result, null, 2) + '\n')
  process.stdout.write(`results: ${opts.out}\n`)
  return failed.size > 0 && Object.keys(summary).length === 0 ? 1 : 0
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2))
}

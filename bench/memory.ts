/**
 * Memory over a long crawl: one shoal peer discovers millions of URLs while its resident memory is
 * sampled every second. The aim ("Fast and lean"): RSS stays flat, under 400 MB, up to 5,000,000
 * discovered URLs.
 *
 *   npm run bench:memory                                  # 5,000,000 URLs, 400 links a page, 200 hosts
 *   node --import tsx bench/memory.ts --urls 500000 --label quick --out /tmp/m.json --svg /tmp/m.svg
 *   node --import tsx bench/memory.ts --compare bench/results/memory-before.json   # both curves in the SVG
 *   node --import tsx bench/memory.ts --replot --compare bench/results/memory-before.json \
 *     --compare bench/results/memory-v8-capped.json                               # the plot in BENCHMARKS.md
 *
 * | option | default | meaning |
 * | --- | --- | --- |
 * | `--urls N` | 5000000 | stop once the peer has discovered (admitted) this many URLs (also its `maxPages`) |
 * | `--links L` | 400 | new, unique links a page carries |
 * | `--repeats R` | 8 | links a page carries to URLs already discovered (root, parent, earlier pages) |
 * | `--hosts H` | 200 | hosts (one port each on 127.0.0.1); page k lives on host k mod H |
 * | `--interval MS` | 1000 | sampling interval |
 * | `--every N` | 500000 | a table row every N URLs |
 * | `--timeout S` | 7200 | give up after S seconds |
 * | `--config JSON` | | extra crawl options for the peer, e.g. `'{"seenCacheSize":50000}'` |
 * | `--node-args='…'` | | extra flags for the peer's node process, e.g. `'--max-old-space-size=128'` |
 * | `--label S` | after | the name of this run in the JSON and the plot |
 * | `--out FILE` | bench/results/memory.json | the samples, the table and the peer's report |
 * | `--svg FILE` | bench/results/memory.svg | the plot (hand-written SVG) |
 * | `--compare FILE…` | | earlier results to draw in the same plot (repeatable) |
 * | `--replot` | | run nothing: redraw `--svg` from `--compare` files and `--out` |
 *
 * The web: page k (`/a/<k>/item-<k>.html` on host k mod H) links to pages k·L+1 … k·L+L, so every
 * page brings L URLs never seen before and the server needs no memory: a page is a function of its
 * number. Each page also links to R pages already discovered (the root, its parent, earlier pages),
 * which exercises the seen set's memory caches and its disk reads.
 *
 * The peer: this file run with `--child`, as its own process, calling crawl() exactly as
 * `shoal crawl ROOT --allow-private --delay 0 --scope any --max-pages N` does (real HTTP through
 * undici, real LevelDB). It reports its counters and heap every second over IPC; this process reads
 * its VmRSS and VmHWM from /proc/<pid>/status at the same pace. "Discovered" is the number of URLs
 * the peer admitted (queued or done): with unique links, every URL found.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { cpus, release, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const BENCH_FILE = fileURLToPath(import.meta.url)
const ROOT_DIR = resolve(dirname(BENCH_FILE), '..')
const MiB = 1024 * 1024
const second = 1000

export interface MemoryOptions {
  urls: number
  links: number
  repeats: number
  hosts: number
  intervalMs: number
  every: number
  timeoutMs: number
  config: Record<string, unknown>
  nodeArgs: string[]
  label: string
  out: string
  svg: string
  compare: string[]
  replot: boolean
}

export interface Sample {
  /** Seconds since the peer was started. */
  t: number
  /** URLs discovered (admitted), queued, fetched (done). */
  urls: number
  queued: number
  fetched: number
  rssMB: number
  /** Peak RSS so far (VmHWM). */
  hwmMB: number
  /** Of the RSS: anonymous memory (heaps, malloc), and mapped files (LevelDB's tables, the binary). */
  anonMB: number
  fileMB: number
  /** CPU seconds (user + system) the peer has used so far. */
  cpuS: number
  /** The peer's JavaScript heap in use. */
  heapMB?: number
  /** What V8 holds for its heap (used or not), and external (ArrayBuffer, native-backed) memory. */
  heapTotalMB?: number
  externalMB?: number
}

export interface MemoryResult {
  label: string
  options: Omit<MemoryOptions, 'out' | 'svg' | 'compare' | 'label' | 'replot'>
  machine: { cores: number, totalMemGiB: number, node: string, kernel: string }
  startedAt: string
  wallSeconds: number
  discovered: number
  fetched: number
  peakRssMB: number
  finalRssMB: number
  /** CPU seconds (user + system) of the peer over the whole run. */
  cpuSeconds: number
  table: Array<{ urls: number, rssMB: number, heapMB?: number, seconds: number }>
  samples: Sample[]
  report?: unknown
  error?: string
}

// --- the web -----------------------------------------------------------------------------------

/** Page k's path: long enough to look like a real URL (~60 bytes with the host). */
const pagePath = (k: number): string => `/a/${k}/item-${k}.html`

/**
 * Serve the tree web on `hosts` ports of 127.0.0.1. Pages are rendered on request from their
 * number: nothing is kept.
 */
async function startTreeWeb (opts: { hosts: number, links: number, repeats: number }): Promise<{ origins: string[], close: () => Promise<void> }> {
  const servers: Server[] = []
  const origins: string[] = []
  const url = (k: number): string => origins[k % origins.length] + pagePath(k)
  const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
    const m = /^\/a\/(\d+)\/item-\d+\.html$/.exec(req.url ?? '')
    if (m == null) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
      return
    }
    const k = Number(m[1])
    const parts: string[] = [`<!doctype html><html><head><title>page ${k}</title></head><body><h1>Page ${k}</h1><ul>`]
    for (let i = 1; i <= opts.links; i++) {
      const c = k * opts.links + i
      parts.push(`<li><a href="${url(c)}">item ${c}</a></li>`)
    }
    parts.push('</ul><nav>')
    // Links to pages already discovered: the root, the parent, then earlier pages spread over the
    // crawl so far (most not in any recent-answers cache: the seen set must ask its disk).
    const parent = k === 0 ? 0 : Math.floor((k - 1) / opts.links)
    for (let j = 0; j < opts.repeats; j++) {
      const old = j === 0 ? 0 : j === 1 ? parent : Math.floor((k * opts.links) * ((j * 0.618034) % 1))
      parts.push(`<a href="${url(old)}">see ${old}</a> `)
    }
    parts.push('</nav></body></html>')
    const body = parts.join('')
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  }
  for (let h = 0; h < opts.hosts; h++) {
    const server = createServer({ keepAlive: true }, handler)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => { resolve() })
    })
    servers.push(server)
    origins.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  }
  return {
    origins,
    close: async () => {
      await Promise.all(servers.map(async s => {
        s.closeAllConnections()
        await new Promise<void>((resolve) => { s.close(() => { resolve() }) })
      }))
    }
  }
}

// --- the peer (child process) ----------------------------------------------------------------------

interface ChildInit { seed: string, dataDir: string, urls: number, hosts: number, intervalMs: number, config: Record<string, unknown> }

type ChildMessage =
  | { type: 'progress', urls: number, queued: number, fetched: number, heapUsed: number, heapTotal: number, external: number }
  | { type: 'report', report: unknown }
  | { type: 'error', message: string }

async function runChild (init: ChildInit): Promise<void> {
  const { crawl } = await import('../node/crawl.js')
  const { DEFAULT_MAX_PAGES_PER_HOST } = await import('../node/constants.js')
  const { applyHeapGrowth } = await import('../node/gc-tuning.js')
  // As `shoal crawl` does before it starts (`heapGrowth` in --config overrides the default).
  applyHeapGrowth(init.config.heapGrowth as number | undefined)
  const ac = new AbortController()
  process.on('message', (m: any) => { if (m?.type === 'stop') ac.abort() })
  // The bench went away: stop too, rather than crawl on unobserved.
  process.once('disconnect', () => { ac.abort() })
  const send = (m: ChildMessage): void => { process.send?.(m) }
  try {
    const report = await crawl({
      seeds: [init.seed],
      dataDir: init.dataDir,
      allowPrivate: true,
      delay: 0,
      scope: 'any',
      maxPages: init.urls,
      // Not the limit being measured: let every host take its share.
      maxPagesPerHost: Math.max(DEFAULT_MAX_PAGES_PER_HOST, 2 * Math.ceil(init.urls / init.hosts)),
      ...init.config,
      signal: ac.signal,
      progressInterval: init.intervalMs,
      onProgress: (s) => {
        const mem = process.memoryUsage()
        send({ type: 'progress', urls: s.admitted, queued: s.queued, fetched: s.done, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external })
      }
    })
    send({ type: 'report', report })
  } catch (err: any) {
    send({ type: 'error', message: String(err?.stack ?? err) })
  }
  process.disconnect?.()
}

// --- measuring ------------------------------------------------------------------------------------

/** user + system CPU seconds of a process (/proc/<pid>/stat fields 14 and 15, in clock ticks of 1/100 s). */
function procCpuSeconds (pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return undefined
  }
}

/** VmRSS = RssAnon (heaps, malloc) + RssFile (mapped files: the binary, LevelDB's mmapped tables) + RssShmem. */
function procStatus (pid: number): { rssMB: number, hwmMB: number, anonMB: number, fileMB: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN)
    return { rssMB: kb('VmRSS') / 1024, hwmMB: kb('VmHWM') / 1024, anonMB: kb('RssAnon') / 1024, fileMB: kb('RssFile') / 1024 }
  } catch {
    return undefined
  }
}

const round1 = (n: number): number => Math.round(n * 10) / 10

export async function runMemoryBench (o: MemoryOptions, log: (s: string) => void = (s) => { process.stderr.write(s + '\n') }): Promise<MemoryResult> {
  const web = await startTreeWeb(o)
  const dataRoot = mkdtempSync(join(tmpdir(), 'shoal-memory-'))
  const result: MemoryResult = {
    label: o.label,
    options: { urls: o.urls, links: o.links, repeats: o.repeats, hosts: o.hosts, intervalMs: o.intervalMs, every: o.every, timeoutMs: o.timeoutMs, config: o.config, nodeArgs: o.nodeArgs },
    machine: { cores: cpus().length, totalMemGiB: Math.round(totalmem() / 2 ** 30), node: process.version, kernel: release() },
    startedAt: new Date().toISOString(),
    wallSeconds: 0,
    discovered: 0,
    fetched: 0,
    peakRssMB: 0,
    finalRssMB: 0,
    cpuSeconds: 0,
    table: [],
    samples: []
  }
  const init: ChildInit = { seed: web.origins[0] + pagePath(0), dataDir: join(dataRoot, 'data'), urls: o.urls, hosts: o.hosts, intervalMs: o.intervalMs, config: o.config }
  let child: ChildProcess | undefined
  let timer: NodeJS.Timeout | undefined
  const started = performance.now()
  try {
    child = fork(BENCH_FILE, ['--child', JSON.stringify(init)], {
      cwd: ROOT_DIR,
      execArgv: ['--import', 'tsx', ...o.nodeArgs],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
    const pid = child.pid as number
    let latest: Extract<ChildMessage, { type: 'progress' }> | undefined
    let stopSent = false
    let nextRow = o.every
    const done = new Promise<void>((resolve) => {
      child?.on('message', (m: ChildMessage) => {
        if (m.type === 'progress') latest = m
        else if (m.type === 'report') result.report = m.report
        else if (m.type === 'error') result.error = m.message
      })
      child?.once('exit', () => { resolve() })
    })
    const sample = (): void => {
      const st = procStatus(pid)
      const cpu = procCpuSeconds(pid)
      if (st == null || cpu == null) return
      const s: Sample = {
        t: round1((performance.now() - started) / second),
        urls: latest?.urls ?? 0,
        queued: latest?.queued ?? 0,
        fetched: latest?.fetched ?? 0,
        rssMB: round1(st.rssMB),
        hwmMB: round1(st.hwmMB),
        anonMB: round1(st.anonMB),
        fileMB: round1(st.fileMB),
        cpuS: round1(cpu)
      }
      if (latest != null) {
        s.heapMB = round1(latest.heapUsed / MiB)
        s.heapTotalMB = round1(latest.heapTotal / MiB)
        s.externalMB = round1(latest.external / MiB)
      }
      result.samples.push(s)
      result.peakRssMB = Math.max(result.peakRssMB, s.hwmMB)
      if (s.urls >= nextRow) {
        result.table.push({ urls: s.urls, rssMB: s.rssMB, heapMB: s.heapMB, seconds: s.t })
        log(`${String(s.urls).padStart(10)} URLs  RSS ${s.rssMB.toFixed(0).padStart(4)} MB  heap ${String(s.heapMB?.toFixed(0) ?? '?').padStart(4)} MB  peak ${s.hwmMB.toFixed(0)} MB  fetched ${s.fetched}  ${s.t.toFixed(0)} s`)
        nextRow = (Math.floor(s.urls / o.every) + 1) * o.every
      }
      if (!stopSent && (s.urls >= o.urls || s.t * second > o.timeoutMs)) {
        if (s.urls < o.urls) result.error = `timed out after ${s.t} s with ${s.urls} URLs discovered`
        stopSent = true
        child?.send({ type: 'stop' })
      }
    }
    timer = setInterval(sample, o.intervalMs)
    await done
    clearInterval(timer)
    timer = undefined
    const last = result.samples[result.samples.length - 1]
    result.wallSeconds = round1((performance.now() - started) / second)
    result.discovered = latest?.urls ?? 0
    result.fetched = latest?.fetched ?? 0
    result.finalRssMB = last?.rssMB ?? 0
    result.cpuSeconds = last?.cpuS ?? 0
    const rep = result.report as { pagesExpected?: number, pagesFetched?: number } | undefined
    if (rep?.pagesExpected != null) result.discovered = rep.pagesExpected
    if (rep?.pagesFetched != null) result.fetched = rep.pagesFetched
    if (child.exitCode !== 0 && result.error == null) result.error = `the peer exited with ${child.exitCode ?? child.signalCode}`
  } finally {
    if (timer != null) clearInterval(timer)
    if (child != null && child.exitCode == null && child.signalCode == null) child.kill('SIGKILL')
    await web.close()
    rmSync(dataRoot, { recursive: true, force: true })
  }
  return result
}

// --- output ---------------------------------------------------------------------------------------

export function table (r: MemoryResult): string {
  const lines = ['| URLs discovered | RSS MB | heap MB | elapsed s |', '| ---: | ---: | ---: | ---: |']
  for (const row of r.table) {
    lines.push(`| ${row.urls.toLocaleString('en-US')} | ${row.rssMB.toFixed(0)} | ${row.heapMB?.toFixed(0) ?? '—'} | ${row.seconds.toFixed(0)} |`)
  }
  const cpu = r.cpuSeconds != null ? ` (${r.cpuSeconds.toFixed(0)} CPU s)` : ''
  lines.push(`| peak (VmHWM) | **${r.peakRssMB.toFixed(0)}** | | ${r.wallSeconds.toFixed(0)}${cpu} |`)
  return lines.join('\n')
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** Nice step for an axis: 1, 2 or 5 × 10^n, about `ticks` of them over `span`. */
function niceStep (span: number, ticks: number): number {
  const raw = span / ticks
  const p = 10 ** Math.floor(Math.log10(raw))
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p
  return 10 * p
}

/**
 * The RSS curve (and V8's heap, used or not, dashed) against URLs discovered, one colour per run,
 * with the 400 MB aim as a red line. Plain SVG, written by hand.
 */
export function svgPlot (runs: MemoryResult[], title: string, limitMB = 400): string {
  const W = 860
  const H = 480
  const m = { left: 72, right: 200, top: 48, bottom: 60 }
  const pw = W - m.left - m.right
  const ph = H - m.top - m.bottom
  const maxX = Math.max(1, ...runs.map(r => Math.max(r.options.urls, ...r.samples.map(s => s.urls))))
  const maxY = Math.max(limitMB * 1.1, ...runs.flatMap(r => r.samples.map(s => s.rssMB))) * 1.05
  const xStep = niceStep(maxX, 5)
  const yStep = niceStep(maxY, 6)
  const x = (v: number): number => m.left + (v / maxX) * pw
  const y = (v: number): number => m.top + ph - (v / maxY) * ph
  const colours = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b']
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  out.push(`<text x="${m.left + pw / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`)
  // Grid and ticks.
  for (let v = 0; v <= maxY; v += yStep) {
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e4e4e4"/>`)
    out.push(`<text x="${m.left - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v}</text>`)
  }
  for (let v = 0; v <= maxX; v += xStep) {
    out.push(`<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${m.top}" y2="${m.top + ph}" stroke="#e4e4e4"/>`)
    const label = maxX >= 1e6 ? `${+(v / 1e6).toFixed(2)}M` : maxX >= 1e3 ? `${+(v / 1e3).toFixed(1)}k` : String(v)
    out.push(`<text x="${x(v).toFixed(1)}" y="${m.top + ph + 18}" text-anchor="middle">${label}</text>`)
  }
  out.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}" stroke="black"/>`)
  out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}" stroke="black"/>`)
  out.push(`<text x="${m.left + pw / 2}" y="${H - 16}" text-anchor="middle">URLs discovered</text>`)
  out.push(`<text transform="translate(20 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">MB (resident set; V8 heap dashed)</text>`)
  // The aim.
  out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${y(limitMB).toFixed(1)}" y2="${y(limitMB).toFixed(1)}" stroke="#d62728" stroke-dasharray="6 4"/>`)
  out.push(`<text x="${m.left + 6}" y="${(y(limitMB) - 6).toFixed(1)}" fill="#d62728">aim: ${limitMB} MB</text>`)
  // The curves.
  runs.forEach((r, i) => {
    const c = colours[i % colours.length]
    // Up to the sample that reached the target: after it the peer is told to stop and winds down.
    const end = r.samples.findIndex(s => s.urls >= r.options.urls)
    const pts = r.samples.slice(0, end === -1 ? undefined : end + 1).filter(s => s.urls > 0)
    if (pts.length > 0) {
      out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map(s => `${x(s.urls).toFixed(1)},${y(s.rssMB).toFixed(1)}`).join(' ')}"/>`)
      const heap = pts.filter(s => s.heapTotalMB != null)
      if (heap.length > 0) out.push(`<polyline fill="none" stroke="${c}" stroke-width="1.2" stroke-dasharray="4 3" points="${heap.map(s => `${x(s.urls).toFixed(1)},${y(s.heapTotalMB as number).toFixed(1)}`).join(' ')}"/>`)
    }
    const ly = m.top + 10 + i * 40
    out.push(`<line x1="${m.left + pw + 16}" x2="${m.left + pw + 40}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="2"/>`)
    out.push(`<text x="${m.left + pw + 46}" y="${ly + 4}">${esc(r.label)}: RSS</text>`)
    out.push(`<text x="${m.left + pw + 46}" y="${ly + 20}" fill="#555">peak ${r.peakRssMB.toFixed(0)} MB</text>`)
  })
  const ly = m.top + 10 + runs.length * 40
  out.push(`<line x1="${m.left + pw + 16}" x2="${m.left + pw + 40}" y1="${ly}" y2="${ly}" stroke="#555" stroke-width="1.5" stroke-dasharray="4 3"/>`)
  out.push(`<text x="${m.left + pw + 46}" y="${ly + 4}">V8 heap (heapTotal)</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}

// --- command line -----------------------------------------------------------------------------------

export function parseOptions (argv: string[]): MemoryOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      urls: { type: 'string' },
      links: { type: 'string' },
      repeats: { type: 'string' },
      hosts: { type: 'string' },
      interval: { type: 'string' },
      every: { type: 'string' },
      timeout: { type: 'string' },
      config: { type: 'string' },
      'node-args': { type: 'string' },
      label: { type: 'string' },
      out: { type: 'string' },
      svg: { type: 'string' },
      compare: { type: 'string', multiple: true },
      replot: { type: 'boolean' }
    }
  })
  const int = (name: string, v: string | undefined, def: number, min: number): number => {
    if (v === undefined) return def
    const n = Number(v)
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got "${v}"`)
    return n
  }
  const urls = int('urls', values.urls, 5_000_000, 1)
  return {
    urls,
    links: int('links', values.links, 400, 1),
    repeats: int('repeats', values.repeats, 8, 0),
    hosts: int('hosts', values.hosts, 200, 1),
    intervalMs: int('interval', values.interval, 1000, 10),
    every: int('every', values.every, Math.max(1, Math.min(500_000, Math.round(urls / 10))), 1),
    timeoutMs: int('timeout', values.timeout, 7200, 1) * second,
    config: values.config != null ? JSON.parse(values.config) : {},
    nodeArgs: values['node-args']?.split(/\s+/).filter(a => a !== '') ?? [],
    label: values.label ?? 'after',
    out: values.out ?? join(ROOT_DIR, 'bench/results/memory.json'),
    svg: values.svg ?? join(ROOT_DIR, 'bench/results/memory.svg'),
    compare: values.compare ?? [],
    replot: values.replot === true
  }
}

export async function main (argv: string[]): Promise<number> {
  const o = parseOptions(argv)
  const title = `shoal, one peer: resident memory while discovering ${(o.urls / 1e6).toLocaleString('en-US')}M URLs on ${o.hosts.toLocaleString('en-US')} hosts`
  if (o.replot) {
    const runs = [...o.compare, o.out].map(f => JSON.parse(readFileSync(f, 'utf8')) as MemoryResult)
    writeFileSync(o.svg, svgPlot(runs, title))
    process.stdout.write(runs.map(r => `${r.label}\n${table(r)}\n`).join('\n'))
    return 0
  }
  process.stderr.write(`memory: a peer discovers ${o.urls.toLocaleString('en-US')} URLs (${o.links} new links a page, ${o.hosts} hosts)\n`)
  const r = await runMemoryBench(o)
  mkdirSync(dirname(o.out), { recursive: true })
  writeFileSync(o.out, JSON.stringify(r, null, 1) + '\n')
  const runs = [...o.compare.map(f => JSON.parse(readFileSync(f, 'utf8')) as MemoryResult), r]
  mkdirSync(dirname(o.svg), { recursive: true })
  writeFileSync(o.svg, svgPlot(runs, title))
  process.stdout.write(table(r) + '\n')
  process.stdout.write(`discovered ${r.discovered}, fetched ${r.fetched}, ${r.wallSeconds} s (${r.cpuSeconds} CPU s); peak RSS ${r.peakRssMB.toFixed(0)} MB; wrote ${o.out} and ${o.svg}\n`)
  if (r.error != null) process.stderr.write(`memory: ${r.error}\n`)
  return r.error == null && r.discovered >= o.urls ? 0 : 1
}

if (process.argv[2] === '--child') {
  await runChild(JSON.parse(process.argv[3]) as ChildInit)
} else if (process.argv[1] === BENCH_FILE) {
  process.exitCode = await main(process.argv.slice(2))
}

/**
 * The simulator's model mode at scale: wall time and memory of `runModel` (sim/model/) as the
 * cluster grows from 50 to 500 peers and the web from 0.5 M to 5 M pages.
 *
 *   node --import tsx bench/model.ts                    # the table of BENCHMARKS.md §6
 *   node --import tsx bench/model.ts --peers 50,500 --pages 500000,5000000 --faults mass-kill:20%@30%
 *   node --import tsx bench/model.ts --quick            # 50/100 peers × 50k/100k pages, a smoke run
 *   node --import tsx bench/model.ts --peers 500 --pages 1000000 --scenario mass-kill:20%@30% \
 *     --scenario 'partition:50%@30%..+30s' --scenario rolling-restart@10%    # faults at scale
 *
 * Each configuration runs in a child process of its own (so its peak RSS is its own), started with
 * `--max-old-space-size=4096 --max-semi-space-size=256`: the model allocates many short-lived
 * objects (events, messages, leases) that live for a few thousand events, and a young generation of
 * 3 × 256 MB lets them die there instead of being promoted (−35 % CPU at 1 M pages).
 * The sweep: pages at the largest peer count, then peers at the largest page count. With
 * `--scenario SPECS` (repeatable; a scenario's faults separated by commas) it runs each scenario at
 * the largest peers × pages instead, and prints what the faults did.
 * Writes bench/results/model.json (model-scenarios.json for scenarios): every run, with its whole report.
 */
import { spawn } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const NODE_FLAGS = ['--max-old-space-size=4096', '--max-semi-space-size=256', '--import', 'tsx']

interface Row {
  peers: number
  pages: number
  faults: string[]
  wallSeconds: number
  cpuSeconds: number
  peakRssMB: number
  events: number
  virtualSeconds: number
  invariantsHeld: boolean
  report: Record<string, any>
}

async function child (): Promise<void> {
  const { runModel } = await import('../sim/model/index.js')
  const options = JSON.parse(process.argv[3])
  const cpu0 = process.cpuUsage()
  const report = await runModel(options)
  const cpu = process.cpuUsage(cpu0)
  process.stdout.write(JSON.stringify({ report, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024) }) + '\n')
}

async function runOne (options: Record<string, unknown>): Promise<{ report: any, cpuSeconds: number, peakRssMB: number }> {
  const self = fileURLToPath(import.meta.url)
  return await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...NODE_FLAGS, self, '--child', JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString() })
    p.on('error', reject)
    p.on('close', (code) => {
      if (code !== 0) { reject(new Error(`model run ${JSON.stringify(options)} exited with ${code}`)); return }
      resolve(JSON.parse(out.trim().split('\n').at(-1) as string))
    })
  })
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      peers: { type: 'string' },
      pages: { type: 'string' },
      faults: { type: 'string' },
      seed: { type: 'string' },
      quick: { type: 'boolean' },
      scenario: { type: 'string', multiple: true },
      fixes: { type: 'string' },
      out: { type: 'string' }
    }
  })
  const list = (s: string | undefined, def: number[]): number[] => s === undefined ? def : s.split(',').map(Number)
  const quick = values.quick === true
  const peers = list(values.peers, quick ? [50, 100] : [50, 100, 200, 500])
  const pages = list(values.pages, quick ? [50_000, 100_000] : [500_000, 1_000_000, 2_000_000, 5_000_000])
  const faults = values.faults === undefined ? [] : values.faults.split(',')
  const seed = Number(values.seed ?? 1)
  const maxPeers = Math.max(...peers)
  const maxPages = Math.max(...pages)
  const fixes = values.fixes === undefined ? [] : values.fixes.split(',')
  const scenarios = values.scenario ?? []
  const configs: Array<[number, number, string[]]> = []
  if (scenarios.length > 0) {
    for (const sc of scenarios) configs.push([maxPeers, maxPages, sc.split(',')])
  } else {
    for (const pg of pages) configs.push([maxPeers, pg, faults])
    for (const pe of peers) if (pe !== maxPeers) configs.push([pe, maxPages, faults])
  }
  const rows: Row[] = []
  for (const [pe, pg, fs] of configs) {
    const t = performance.now()
    const r = await runOne({ peers: pe, pages: pg, seed, faults: fs, fixes })
    const wallSeconds = (performance.now() - t) / 1000
    const row: Row = {
      peers: pe,
      pages: pg,
      faults: fs,
      wallSeconds: Math.round(wallSeconds * 10) / 10,
      cpuSeconds: Math.round(r.cpuSeconds * 10) / 10,
      peakRssMB: r.peakRssMB,
      events: r.report.events,
      virtualSeconds: r.report.virtualSeconds,
      invariantsHeld: Object.values(r.report.invariants).every(v => v === true),
      report: r.report
    }
    rows.push(row)
    console.error(`${pe} peers × ${pg} pages${fs.length > 0 ? ` (${fs.join(', ')})` : ''}: ${row.wallSeconds} s wall, ${row.cpuSeconds} s CPU, ${row.peakRssMB} MB peak RSS, ${row.events} events, ${row.virtualSeconds} virtual s`)
  }
  console.log('peers  pages      wall s  CPU s  peak RSS MB  events      virtual s  invariants')
  for (const r of rows) {
    console.log(`${String(r.peers).padStart(5)}  ${String(r.pages).padEnd(9)}  ${String(r.wallSeconds).padStart(6)}  ${String(r.cpuSeconds).padStart(5)}  ${String(r.peakRssMB).padStart(11)}  ${String(r.events).padEnd(10)}  ${String(r.virtualSeconds).padStart(9)}  ${r.invariantsHeld ? 'all held' : 'FAILED'}`)
  }
  if (scenarios.length > 0) {
    console.log('\nscenario: coverage, duplicates (violations / in flight at a fault / partition / all holders down), under-replicated, failover median/max s')
    for (const r of rows) {
      const x = r.report
      const fo = x.faults.map((f: any) => `${f.failoverMedianSeconds ?? '-'}/${f.failoverMaxSeconds ?? '-'}`).join(' ')
      console.log(`${r.faults.join(', ')}: ${x.coverage}, ${x.duplicateFetches}/${x.inFlightAtFault}/${x.duplicatesDuringPartition}/${x.duplicatesAfterDataLoss}, ${x.underReplicated}, ${fo}`)
    }
  }
  const out = values.out ?? (scenarios.length > 0 ? 'model-scenarios.json' : quick ? 'model-quick.json' : 'model.json')
  await mkdir(new URL('./results/', import.meta.url), { recursive: true })
  await writeFile(new URL(`./results/${out}`, import.meta.url), JSON.stringify({
    benchmark: 'model',
    at: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryGB: Math.round(totalmem() / 2 ** 30), node: process.version },
    nodeFlags: NODE_FLAGS,
    seed,
    fixes,
    rows
  }, null, 2))
}

if (process.argv[2] === '--child') await child()
else await main()

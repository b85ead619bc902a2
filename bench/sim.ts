/**
 * `npm run bench:sim`: the simulator's real mode — the demo's pages/s, and what each fault costs.
 *
 *   node --import tsx bench/sim.ts [--runs 3] [--pages 3000] [--hosts 12]
 *
 * The `npm start` web (12 hosts, 3,000 small pages, 4 peers, delay 50 ms, r = 2) crawled with no
 * fault, with the demo's faults (kill + join), and with each fault alone: a SIGKILL, a join, a
 * restart, a 15 s pause (SIGSTOP/SIGCONT) and a 10 s partition (2 | 2), each at 30 % of the pages.
 * For each: crawl seconds and pages/s (median of the runs), duplicate fetches excused by the fault,
 * recovery (kill, pause: seconds until another peer fetched one of the faulted peer's hosts; join,
 * restart: until the new peer fetched a page), and whether every invariant held in every run.
 * Writes bench/results/sim.json.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { parseArgs } from 'node:util'
import { parseFault, type Fault } from '../sim/faults.js'
import { runReal, type SimReport } from '../sim/run.js'

const { values } = parseArgs({ options: { runs: { type: 'string' }, pages: { type: 'string' }, hosts: { type: 'string' } } })
const runs = Number(values.runs ?? 3)
const pages = Number(values.pages ?? 3000)
const hosts = Number(values.hosts ?? 12)
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : s[Math.floor(s.length / 2)] }

const scenarios: Array<{ name: string, faults: () => Fault[] }> = [
  { name: 'no fault', faults: () => [] },
  { name: 'demo: kill 1@30%, join 4@50%', faults: () => [parseFault('kill', '1@30%'), parseFault('join', '4@50%')] },
  { name: 'kill 1@30%', faults: () => [parseFault('kill', '1@30%')] },
  { name: 'join 4@30%', faults: () => [parseFault('join', '4@30%')] },
  { name: 'restart 1@30%', faults: () => [parseFault('restart', '1@30%')] },
  { name: 'pause 1@30%..+15s', faults: () => [parseFault('pause', '1@30%..+15s')] },
  { name: 'partition 0,1|2,3@30%..+10s', faults: () => [parseFault('partition', '0,1|2,3@30%..+10s')] }
]

const rows: any[] = []
for (const s of scenarios) {
  const reports: SimReport[] = []
  for (let i = 0; i < runs; i++) {
    const r = await runReal({ peers: 4, hosts, pages, seed: 1, faults: s.faults(), sample: 20 })
    reports.push(r)
    process.stderr.write(`${s.name} run ${i + 1}: ${r.crawlSeconds} s, ${r.pagesPerSecond} pages/s, ${r.duplicateFetches} duplicates, ok ${Object.values(r.invariants).every(Boolean)}\n`)
  }
  const recovery = reports.flatMap(r => r.faults.map(f => f.recoverySeconds).filter((x): x is number => x !== undefined))
  rows.push({
    scenario: s.name,
    crawlSeconds: median(reports.map(r => r.crawlSeconds)),
    pagesPerSecond: median(reports.map(r => r.pagesPerSecond)),
    duplicates: median(reports.map(r => r.duplicateFetches)),
    recoverySeconds: recovery.length > 0 ? median(recovery) : null,
    replicationKiB: Math.round(median(reports.map(r => r.replicationBytes)) / 1024),
    invariantsHeld: reports.filter(r => Object.values(r.invariants).every(Boolean)).length + `/${runs}`
  })
}

const base = rows[0].crawlSeconds
process.stdout.write(`\nshoal sim, real mode: ${hosts} hosts, ${pages} pages, 4 peers, r = 2, delay 50 ms; ${cpus().length} cores (${cpus()[0]?.model}); median of ${runs} runs\n\n`)
process.stdout.write('| scenario | crawl s | pages/s | cost (crawl s vs no fault) | duplicates | recovery s | replication KiB | invariants held |\n|---|---|---|---|---|---|---|---|\n')
for (const r of rows) {
  process.stdout.write(`| ${r.scenario} | ${r.crawlSeconds} | ${r.pagesPerSecond} | ${r === rows[0] ? '—' : `${(r.crawlSeconds - base >= 0 ? '+' : '')}${(r.crawlSeconds - base).toFixed(1)}`} | ${r.duplicates} | ${r.recoverySeconds ?? '—'} | ${r.replicationKiB} | ${r.invariantsHeld} |\n`)
}
await mkdir(new URL('./results/', import.meta.url), { recursive: true })
await writeFile(new URL('./results/sim.json', import.meta.url), JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, cpu: cpus()[0]?.model, runs, pages, hosts, rows }, null, 2) + '\n')

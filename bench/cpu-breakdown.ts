/**
 * Where a peer's main thread spends its CPU, from V8 `.cpuprofile` files (`shoal start` with
 * SHOAL_PROFILE, or `bench/peers.ts --profile DIR`).
 *
 *   node --import tsx bench/peers.ts --peers 1,4 --runs 1 --profile /tmp/prof
 *   node --import tsx bench/cpu-breakdown.ts [--top CATEGORY] [--json] /tmp/prof/peers1-run1.json /tmp/prof/peers4-run1.json
 *
 * Each sample's time (its `timeDeltas` entry) goes to the category of the function it was taken
 * in. A function of no category of its own (node internals, msgpackr, debug, timers…) takes the
 * category of the nearest caller that has one, so msgpack encoding counts as routing when the links
 * transport called it and as storage when the write batcher did. Samples whose synchronous stack
 * holds no categorised frame (a microtask resumed from the event loop) are "other".
 * The table is in CPU ms per 1000 pages, the peers of a run summed, from seeding to idle.
 *
 * A caveat: a profile's time is wall time between samples, so the time a thread spent descheduled
 * is charged to the function it was in — with more processes than cores, mostly the syscalls that
 * wake another process (a socket write). Scaling to /proc CPU then overstates those categories
 * (fetch, libp2p core) and understates the rest; compare each profile's non-idle time with its
 * `peerMainCpuSeconds` to see how much (BENCHMARKS.md §3).
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'

interface CallFrame { functionName: string, url: string }
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

export const CATEGORIES = [
  'parse', 'fetch', 'storage', 'hashing', 'routing', 'replication',
  'libp2p: noise', 'libp2p: yamux', 'libp2p: gossipsub', 'libp2p: kad-dht', 'libp2p: core',
  'membership/daemon', 'crawl loop', 'GC', 'other', 'idle'
] as const
export type Category = typeof CATEGORIES[number]

/** First match wins; tested against the frame's URL (a file: URL or a node: module). */
const RULES: Array<[RegExp, Category]> = [
  [/node_modules\/(htmlparser2|domhandler|domutils|entities|cheerio|parse5|css-select)\//, 'parse'],
  [/\/node\/(parser|html-scan|decode|parse-pool|parse-worker)\.ts/, 'parse'],
  [/node_modules\/undici\//, 'fetch'],
  [/^node:internal\/deps\/undici/, 'fetch'],
  [/\/node\/(fetcher|robots|robots-txt)\.ts/, 'fetch'],
  [/node_modules\/(level|classic-level|abstract-level|level-transcoder|module-error|maybe-combine-errors)\//, 'storage'],
  [/\/node\/(db|blocks|frontier|seen|metadata|heap)\.ts/, 'storage'],
  [/node_modules\/(@chainsafe\/libp2p-noise|@chainsafe\/as-chacha20poly1305|@chainsafe\/as-sha256|@noble\/ciphers|@noble\/curves|@noble\/hashes)\//, 'libp2p: noise'],
  [/node_modules\/(@chainsafe\/libp2p-yamux|@libp2p\/yamux)\//, 'libp2p: yamux'],
  [/node_modules\/(@chainsafe\/libp2p-gossipsub|@libp2p\/gossipsub|@libp2p\/pubsub)\//, 'libp2p: gossipsub'],
  [/node_modules\/@libp2p\/kad-dht\//, 'libp2p: kad-dht'],
  [/node_modules\/(libp2p|@libp2p\/[^/]+|@multiformats\/[^/]+|multiformats|it-[^/]+|uint8arraylist|uint8arrays|protons-runtime|p-queue|progress-events|race-signal|main-event|any-signal|@chainsafe\/[^/]+|abort-error|p-defer|datastore-core|interface-datastore)\//, 'libp2p: core'],
  [/\/node\/(router|ring|scope|normalize)\.ts/, 'routing'],
  [/\/protocols\/(links|batch)\//, 'routing'],
  [/\/node\/(replication|replicas)\.ts/, 'replication'],
  [/\/protocols\/(meta|blocks|query)\//, 'replication'],
  [/\/node\/(membership|daemon|seed-gossip|api|net|ring-state|test-gate|local-cluster|cli)\.ts/, 'membership/daemon'],
  [/\/node\/(peer|mailbox)\.ts/, 'crawl loop']
]

/** A frame's own category, or undefined when it should take its caller's. */
export function classify (frame: CallFrame): Category | undefined {
  if (frame.functionName === '(garbage collector)') return 'GC'
  if (frame.functionName === '(idle)') return 'idle'
  // Hashing is small enough to want its own line: sha-256 of bodies (node:crypto), CIDs, murmur.
  if (/^(createHash|digest|update|Hash|murmur)/i.test(frame.functionName) && /node:internal\/crypto|\/node\/(blocks|ring|seen)\.ts|multiformats\/.*hashes/.test(frame.url)) return 'hashing'
  for (const [re, cat] of RULES) if (re.test(frame.url)) return cat
  return undefined
}

/**
 * CPU ms by category in one profile. With `crawlOnly`, only the samples from the first to the last
 * one taken in the fetcher count: start-up (module loading, joining) and shut-down are left out.
 */
export function breakdown (profile: CpuProfile, crawlOnly = false): Record<Category, number> {
  const byId = new Map<number, ProfileNode>()
  for (const n of profile.nodes) byId.set(n.id, n)
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const catOf = new Map<number, Category>()
  const resolve = (id: number): Category => {
    const known = catOf.get(id)
    if (known !== undefined) return known
    const node = byId.get(id) as ProfileNode
    const own = classify(node.callFrame)
    const p = parent.get(id)
    const cat = own ?? (p === undefined ? 'other' : resolve(p))
    catOf.set(id, cat)
    return cat
  }
  const out = Object.fromEntries(CATEGORIES.map(c => [c, 0])) as Record<Category, number>
  let from = 0
  let to = profile.samples.length - 1
  if (crawlOnly) {
    while (from < to && resolve(profile.samples[from]) !== 'fetch') from++
    while (to > from && resolve(profile.samples[to]) !== 'fetch') to--
  }
  // timeDeltas[i] is the time from sample i − 1 to sample i; it is charged to sample i's node.
  for (let i = from; i <= to; i++) out[resolve(profile.samples[i])] += (profile.timeDeltas[i] ?? 0) / 1000
  return out
}

/** The busiest functions (self time) of the profiles that fall into `cat`. */
export function topFunctions (profile: CpuProfile, cat: Category, n = 8): Array<[string, number]> {
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id)
  const byId = new Map(profile.nodes.map(x => [x.id, x]))
  const self = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000)
  const totals = new Map<string, number>()
  const b = new Map<number, Category>()
  const resolve = (id: number): Category => {
    const k = b.get(id); if (k !== undefined) return k
    const node = byId.get(id) as ProfileNode
    const p = parent.get(id)
    const c = classify(node.callFrame) ?? (p === undefined ? 'other' : resolve(p))
    b.set(id, c); return c
  }
  for (const [id, ms] of self) {
    if (resolve(id) !== cat) continue
    const f = (byId.get(id) as ProfileNode).callFrame
    const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(node|protocols)\//, '$1/')}`
    totals.set(key, (totals.get(key) ?? 0) + ms)
  }
  return [...totals].sort((x, y) => y[1] - x[1]).slice(0, n)
}

/** What `bench/peers.ts --profile DIR` writes next to a run's profiles. */
interface RunInfo { peers: number, pages: number, peerCpuSeconds: number[], peerMainCpuSeconds: number[], serverCpuSeconds: number, profiles: string[] }

/**
 * V8 timestamps samples in wall-clock time: a thread that is runnable but not running (4 processes on
 * 2 cores) has the wait charged to whatever is on its stack. So a profile gives the *shares* of
 * the main thread's busy time, and the main thread's own CPU seconds (from /proc, in the run's JSON)
 * give the total. The process's other threads (libuv's pool doing LevelDB's writes and file I/O,
 * V8's compiler and GC helpers) are not sampled: they are one line of their own.
 */
const OTHER_THREADS = 'other threads'

async function main (): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { json: { type: 'boolean' }, top: { type: 'string' } } })
  if (positionals.length === 0) throw new Error('usage: cpu-breakdown.ts [--top CATEGORY] [--json] RUN.json … (written by bench/peers.ts --profile DIR)')
  const busyCats = CATEGORIES.filter(c => c !== 'idle')
  const groups: Array<{ name: string, pages: number, cats: Record<string, number>, cpuSeconds: number[], serverCpuSeconds: number }> = []
  for (const file of positionals) {
    const run = JSON.parse(readFileSync(file, 'utf8')) as RunInfo
    const cats: Record<string, number> = Object.fromEntries([...busyCats, OTHER_THREADS].map(c => [c, 0]))
    run.profiles.forEach((name, i) => {
      const profile = JSON.parse(readFileSync(join(dirname(file), name), 'utf8')) as CpuProfile
      const b = breakdown(profile, true)
      const busy = busyCats.reduce((a, c) => a + b[c], 0)
      const scale = busy === 0 ? 0 : run.peerMainCpuSeconds[i] * 1000 / busy
      for (const c of busyCats) cats[c] += b[c] * scale
      cats[OTHER_THREADS] += (run.peerCpuSeconds[i] - run.peerMainCpuSeconds[i]) * 1000
      if (values.top !== undefined) {
        console.error(`${name}: top of ${values.top} (profile ms, unscaled)`)
        for (const [f, ms] of topFunctions(profile, values.top as Category)) console.error(`  ${ms.toFixed(0).padStart(7)} ms  ${f}`)
      }
    })
    groups.push({ name: `${run.peers} peer${run.peers === 1 ? '' : 's'}`, pages: run.pages, cats, cpuSeconds: run.peerCpuSeconds, serverCpuSeconds: run.serverCpuSeconds })
  }
  if (values.json === true) { console.log(JSON.stringify({ unit: 'CPU ms per 1000 pages', groups }, null, 2)); return }
  const w = 12
  const per = (g: typeof groups[number], ms: number): string => (ms * 1000 / g.pages).toFixed(0).padStart(w)
  console.log(`${'CPU ms / 1000 pages'.padEnd(22)}${groups.map(g => g.name.padStart(w)).join('')}`)
  for (const c of [...busyCats, OTHER_THREADS]) console.log(`${c.padEnd(22)}${groups.map(g => per(g, g.cats[c])).join('')}`)
  console.log(`${'all peers'.padEnd(22)}${groups.map(g => per(g, g.cpuSeconds.reduce((a, b) => a + b, 0) * 1000)).join('')}`)
  console.log(`${'web server (bench)'.padEnd(22)}${groups.map(g => per(g, g.serverCpuSeconds * 1000)).join('')}`)
  console.log(`${'CPU s per peer'.padEnd(22)}${groups.map(g => g.cpuSeconds.map(x => x.toFixed(1)).join('/').padStart(w)).join('')}`)
}

if (import.meta.url === `file://${process.argv[1]}`) await main()

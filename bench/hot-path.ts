/**
 * The crawl pipeline without sockets: shoal's real actors (frontier, seen set, LevelDB, parser,
 * router, block store) driven by an in-memory HttpClient that serves the synthetic site. Shows what
 * the pipeline itself costs per page, next to htmlparser2 parsing the same bytes alone.
 *
 *   node --import tsx bench/hot-path.ts [--pages 20000] [--profile large|small] [--config JSON]   # WORKERS=1: parse in a worker
 *
 * The parse-alone figures come from bench/parse-alone.ts, in a process of its own, over the first
 * 2000 pages of the same site (median of 5 passes after a warm-up): htmlparser2 (`parseAloneMsPerPage`,
 * the yardstick, and `ratioToParse`) and shoal's own link scanner (`scanAloneMsPerPage`).
 */
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { crawl } from '../node/crawl.js'
import { applyHeapGrowth } from '../node/gc-tuning.js'
import type { HttpClient, HttpRequest, HttpResponse } from '../node/types.js'
import { SiteModel } from '../sim/web.js'

const { values } = parseArgs({ options: { pages: { type: 'string' }, profile: { type: 'string' }, config: { type: 'string' } } })
/** Extra crawl options, e.g. `--config '{"routedCacheSize":65536}'`. */
const extra = JSON.parse(values.config ?? '{}') as Record<string, unknown>
const pages = Number(values.pages ?? 20000)
const profile = (values.profile ?? 'large') as 'large' | 'small'
const site = new SiteModel({ seed: 1, pages, profile })
const origin = 'http://site.test'
const origins = [origin]

// Rendered up front, so serving costs nothing during the crawl.
const rendered: Buffer[] = []
for (let i = 0; i < pages; i++) rendered.push(site.body(0, i, origins))

/** Serves the site from memory: the network costs nothing, so what remains is shoal's own work. */
class MemoryWeb implements HttpClient {
  async request (req: HttpRequest): Promise<HttpResponse> {
    const path = req.url.slice(origin.length)
    const r = site.resolve(0, path)
    const body = r.kind === 'page' ? rendered[r.page] : r.kind === 'robots' ? Buffer.from('User-agent: *\nDisallow: /private/\n') : Buffer.alloc(0)
    const status = r.kind === 'none' ? 404 : 200
    return {
      status,
      headers: { 'content-type': r.kind === 'robots' ? 'text/plain' : 'text/html; charset=utf-8', 'content-length': String(body.length) },
      body: (async function * () { yield body })(),
      dump: async () => {}
    }
  }

  async close (): Promise<void> {}
}

// htmlparser2 alone over the same bytes, in a process of its own: the floor of a parsing crawler.
const alone = spawnSync(process.execPath, ['--import', 'tsx', join(dirname(fileURLToPath(import.meta.url)), 'parse-alone.ts'),
  '--pages', '2000', '--site-pages', String(pages), '--profile', profile, '--origin', origin], { encoding: 'utf8' })
if (alone.status !== 0) throw new Error(`bench/parse-alone.ts failed: ${alone.stderr}`)
const { medianMsPerPage: parseMsPerPage, passes: parsePasses, scanMedianMsPerPage: scanMsPerPage } = JSON.parse(alone.stdout.trim().split('\n').pop() as string)

// As `shoal crawl` does when it starts (`--config '{"heapGrowth":0}'` for V8's own rule).
applyHeapGrowth(extra.heapGrowth as number | undefined)
const dir = await mkdtemp(join(tmpdir(), 'shoal-hot-'))
const t0 = process.cpuUsage()
const wall = performance.now()
const report = await crawl({ seeds: [origin + '/'], dataDir: join(dir, 'd'), delay: 0, hostConcurrency: 64, allowPrivate: true, http: new MemoryWeb(), parseWorkers: Number(process.env.WORKERS ?? 0), ...extra })
const t1 = process.cpuUsage(t0)
const wallS = (performance.now() - wall) / 1000
await rm(dir, { recursive: true, force: true })
const cpuMsPerPage = (t1.user + t1.system) / 1000 / report.pagesFetched
const result = {
  pages: report.pagesFetched,
  profile,
  config: extra,
  wallSeconds: +wallS.toFixed(2),
  pagesPerSecond: Math.round(report.pagesFetched / wallS),
  cpuMsPerPage: +cpuMsPerPage.toFixed(3),
  parseAloneMsPerPage: parseMsPerPage,
  parseAlonePasses: parsePasses,
  ratioToParse: +(cpuMsPerPage / parseMsPerPage).toFixed(2),
  scanAloneMsPerPage: scanMsPerPage,
  rssMB: Math.round(process.memoryUsage().rss / 1048576)
}
console.log(JSON.stringify(result))

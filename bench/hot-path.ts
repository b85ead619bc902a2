/**
 * The crawl pipeline without sockets: shoal's real actors (frontier, seen set, LevelDB, parser,
 * router, block store) driven by an in-memory HttpClient that serves the synthetic site. Shows what
 * the pipeline itself costs per page, next to htmlparser2 parsing the same bytes alone.
 *
 *   node --import tsx bench/hot-path.ts [--pages 20000] [--profile large|small] [--cpu-prof]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Parser } from 'htmlparser2'
import { crawl } from '../node/crawl.js'
import type { HttpClient, HttpRequest, HttpResponse } from '../node/types.js'
import { SiteModel } from '../sim/web.js'

const { values } = parseArgs({ options: { pages: { type: 'string' }, profile: { type: 'string' } } })
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

const bodies: Buffer[] = []
for (let i = 0; i < Math.min(pages, 2000); i++) bodies.push(rendered[i])

// htmlparser2 alone over the same bytes: the floor of what a parsing crawler costs. One pass to
// warm the JIT up, then the measured pass (the crawl below has thousands of pages to warm up in).
let links = 0
const parseAll = (): void => {
  for (const b of bodies) {
    const p = new Parser({ onopentag (_n, a) { if (a.href != null) links++ } }, { decodeEntities: true })
    p.end(b.toString('utf8'))
  }
}
parseAll()
links = 0
let t0 = process.cpuUsage()
parseAll()
let t1 = process.cpuUsage(t0)
const parseMsPerPage = (t1.user + t1.system) / 1000 / bodies.length

const dir = await mkdtemp(join(tmpdir(), 'shoal-hot-'))
t0 = process.cpuUsage()
const wall = performance.now()
const report = await crawl({ seeds: [origin + '/'], dataDir: join(dir, 'd'), delay: 0, hostConcurrency: 64, allowPrivate: true, http: new MemoryWeb(), parseWorkers: Number(process.env.WORKERS ?? 0) })
t1 = process.cpuUsage(t0)
const wallS = (performance.now() - wall) / 1000
await rm(dir, { recursive: true, force: true })
const cpuMsPerPage = (t1.user + t1.system) / 1000 / report.pagesFetched
const result = {
  pages: report.pagesFetched,
  profile,
  wallSeconds: +wallS.toFixed(2),
  pagesPerSecond: Math.round(report.pagesFetched / wallS),
  cpuMsPerPage: +cpuMsPerPage.toFixed(3),
  parseAloneMsPerPage: +parseMsPerPage.toFixed(3),
  ratioToParse: +(cpuMsPerPage / parseMsPerPage).toFixed(2),
  rssMB: Math.round(process.memoryUsage().rss / 1048576),
  linksSeenInParseCheck: links
}
console.log(JSON.stringify(result))

/**
 * The floor of a parsing crawler: htmlparser2 (shoal's own copy) tokenizing the first pages of the
 * generated site, decoding entities and counting hrefs, nothing else. Run in a process of its own
 * (bench/hot-path.ts spawns it) so that another heap's collections never land in its timing.
 *
 *   node --import tsx bench/parse-alone.ts [--pages 2000] [--site-pages 20000] [--profile large|small]
 *                                          [--origin http://site.test] [--passes 5]
 *
 * The site is the one of `--site-pages` pages (a page's links depend on the site's size); the
 * first `--pages` of them are parsed.
 *
 * Prints one JSON line: CPU ms per page of each pass after a warm-up pass, and their median.
 */
import { parseArgs } from 'node:util'
import { Htmlparser2 } from '../node/parser.js'
import { SiteModel } from '../sim/web.js'

const { values } = parseArgs({ options: { pages: { type: 'string' }, 'site-pages': { type: 'string' }, profile: { type: 'string' }, origin: { type: 'string' }, passes: { type: 'string' } } })
const sitePages = Number(values['site-pages'] ?? 20000)
const pages = Math.min(sitePages, Number(values.pages ?? 2000))
const origin = values.origin ?? 'http://site.test'
const profile = (values.profile ?? 'large') as 'large' | 'small'
const passes = Number(values.passes ?? 5)
// The site bench/hot-path.ts crawls (seed 1): the same bytes.
const site = new SiteModel({ seed: 1, pages: sitePages, profile })
const bodies: Buffer[] = []
for (let i = 0; i < pages; i++) bodies.push(site.body(0, i, [origin]))

let links = 0
const parseAll = (): void => {
  for (const b of bodies) {
    const p = new Htmlparser2({ onopentag (_n, a) { if (a.href != null) links++ } }, { decodeEntities: true })
    p.end(b.toString('utf8'))
  }
}
parseAll()
const msPerPage: number[] = []
for (let i = 0; i < passes; i++) {
  const t0 = process.cpuUsage()
  parseAll()
  const t = process.cpuUsage(t0)
  msPerPage.push((t.user + t.system) / 1000 / pages)
}
const sorted = [...msPerPage].sort((a, b) => a - b)
console.log(JSON.stringify({ pages, profile, passes: msPerPage.map(x => +x.toFixed(3)), medianMsPerPage: +sorted[Math.floor(sorted.length / 2)].toFixed(3), links }))

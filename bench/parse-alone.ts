/**
 * The floor of a parsing crawler: htmlparser2 (shoal's own copy) tokenizing the first pages of the
 * generated site, decoding entities and counting hrefs, nothing else; and beside it shoal's own
 * link scanner (node/html-scan.ts) doing the same. Run in a process of its own
 * (bench/hot-path.ts spawns it) so that another heap's collections never land in its timing.
 *
 *   node --import tsx bench/parse-alone.ts [--pages 2000] [--site-pages 20000] [--profile large|small]
 *                                          [--origin http://site.test] [--passes 5]
 *
 * The site is the one of `--site-pages` pages (a page's links depend on the site's size); the
 * first `--pages` of them are parsed.
 *
 * Prints one JSON line: CPU ms per page of each pass after a warm-up pass, and their median, for
 * htmlparser2 (`passes`, `medianMsPerPage`) and for the scanner (`scanPasses`, `scanMedianMsPerPage`).
 */
import { parseArgs } from 'node:util'
import { scanStartTags, TagSet } from '../node/html-scan.js'
import { Htmlparser2 } from '../node/htmlparser2-ref.js'
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
const htmlparser2 = (): void => {
  for (const b of bodies) {
    const p = new Htmlparser2({ onopentag (_n, a) { if (a.href != null) links++ } }, { decodeEntities: true })
    p.end(b.toString('utf8'))
  }
}
const tags = new TagSet(['a', 'area', 'link', 'img', 'source', 'script', 'iframe', 'frame', 'video', 'audio', 'base', 'meta'], ['href', 'src'])
let scanned = 0
const scanner = (): void => {
  for (const b of bodies) scanStartTags(b.toString('utf8'), tags, (_n, a) => { if (a.href != null) scanned++ })
}

/** CPU ms per page of each of `passes` passes after a warm-up one, and their median. */
function time (parseAll: () => void): { passes: number[], median: number } {
  parseAll()
  const msPerPage: number[] = []
  for (let i = 0; i < passes; i++) {
    const t0 = process.cpuUsage()
    parseAll()
    const t = process.cpuUsage(t0)
    msPerPage.push((t.user + t.system) / 1000 / pages)
  }
  const sorted = [...msPerPage].sort((a, b) => a - b)
  return { passes: msPerPage.map(x => +x.toFixed(3)), median: +sorted[Math.floor(sorted.length / 2)].toFixed(3) }
}
const h = time(htmlparser2)
const sc = time(scanner)
if (scanned !== links) throw new Error(`the scanner found ${scanned} hrefs where htmlparser2 found ${links}`)
console.log(JSON.stringify({ pages, profile, passes: h.passes, medianMsPerPage: h.median, scanPasses: sc.passes, scanMedianMsPerPage: sc.median, links: links / (passes + 1) }))

// Crawl a site with Crawlee's CheerioCrawler, set up for speed, and print one JSON line of results.
// Run by bench/single-peer.ts with bench/'s own node_modules; plain JavaScript (not TypeScript through
// tsx) so that Crawlee pays no loader cost that a real Crawlee user would not pay.
//
//   node bench/crawlee-crawl.mjs [--concurrency 64] [--max-pages N] [--header-generator] [--autoscale] URL…
//
// Settings, and why (Crawlee 3.x docs: guides/configuration, guides/scaling-crawlers):
// - Configuration { persistStorage: false }: the request queue lives in memory only (MemoryStorage),
//   as for the other tools; by default it writes every request to ./storage as a JSON file.
// - minConcurrency = maxConcurrency (unless --autoscale): the AutoscaledPool starts at
//   minConcurrency (default 1) and scales up by steps every few seconds while it judges the system
//   not overloaded, which would measure the ramp, not the crawler; fixing it takes the autoscaler
//   out of the picture.
// - useSessionPool: false, persistCookiesPerSession: false: one site, no blocking, no cookies.
// - got-scraping's browser-like header generator is turned off unless --header-generator: it
//   builds a fresh fake browser header set for every request when there are no sessions.
// - respectRobotsTxtFile: true, like wget and shoal.
// - enqueueLinks() with its default strategy, same-hostname; bodies are not stored, only counted.
import { CheerioCrawler, Configuration, log, LogLevel } from 'crawlee'

const USER_AGENT = 'crawlee-bench (CheerioCrawler)'
const args = process.argv.slice(2)
let concurrency = 64
let maxPages = 1_000_000
let headerGenerator = false
let autoscale = false
const urls = []
for (let i = 0; i < args.length; i++) {
  const a = args[i]
  if (a === '--concurrency') concurrency = Number(args[++i])
  else if (a === '--max-pages') maxPages = Number(args[++i])
  else if (a === '--header-generator') headerGenerator = true
  else if (a === '--autoscale') autoscale = true
  else if (a.startsWith('--')) throw new Error(`unknown option ${a}`)
  else urls.push(a)
}
if (urls.length === 0) throw new Error('usage: crawlee-crawl.mjs [--concurrency N] [--max-pages N] URL…')
if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`--concurrency must be a positive integer, got ${concurrency}`)

log.setLevel(process.env.CRAWLEE_BENCH_LOG === "info" ? LogLevel.INFO : LogLevel.WARNING)
const config = new Configuration({
  persistStorage: false,
  purgeOnStart: true,
  // No periodic state snapshots to a key-value store during the run.
  persistStateIntervalMillis: 3_600_000
})

let pages = 0
let failed = 0
const started = performance.now()
const crawler = new CheerioCrawler({
  minConcurrency: autoscale ? undefined : concurrency,
  maxConcurrency: concurrency,
  maxRequestsPerCrawl: maxPages,
  maxRequestRetries: 1,
  useSessionPool: false,
  persistCookiesPerSession: false,
  respectRobotsTxtFile: true,
  statusMessageLoggingInterval: process.env.CRAWLEE_BENCH_LOG === "info" ? 2 : 3600,
  statisticsOptions: { logIntervalSecs: 3600 },
  autoscaledPoolOptions: { loggingIntervalSecs: process.env.CRAWLEE_BENCH_LOG === "info" ? 2 : null },
  preNavigationHooks: headerGenerator
    ? []
    : [(_ctx, gotOptions) => {
        gotOptions.useHeaderGenerator = false
        // Without the generator got-scraping sends no User-Agent at all; say who we are, as a crawler should.
        gotOptions.headers = { ...gotOptions.headers, 'user-agent': USER_AGENT }
      }],
  async requestHandler ({ enqueueLinks }) {
    pages++
    await enqueueLinks()
  },
  failedRequestHandler () {
    failed++
  }
}, config)

await crawler.run(urls)
const wallSeconds = (performance.now() - started) / 1000
console.log(JSON.stringify({
  tool: 'crawlee',
  crawleeVersion: (await import('crawlee/package.json', { with: { type: 'json' } })).default.version,
  concurrency,
  headerGenerator,
  autoscale,
  pagesFetched: pages,
  failed,
  wallSeconds,
  pagesPerSecond: pages / wallSeconds
}))

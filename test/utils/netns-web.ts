/**
 * Runs inside a network namespace (test/e2e/netns.test.ts): the synthetic web on one address,
 * one port per host. Prints `ready` with its root URLs; on SIGTERM prints what it saw as JSON:
 * the summary and, per host, the peers (short ids from the User-Agent) that fetched from it.
 */
import { startSyntheticWeb } from '../../sim/web.js'

const [address, hostsArg, pagesArg] = process.argv.slice(2)
const hosts = Number(hostsArg)
const web = await startSyntheticWeb({
  seed: 5, hosts, pages: Number(pagesArg), profile: 'small', log: true,
  bindAddress: address, ports: Array.from({ length: hosts }, (_, i) => 8001 + i)
})
process.stdout.write(`ready ${JSON.stringify(web.rootUrls)}\n`)
process.once('SIGTERM', () => {
  const fetchers: Record<string, string[]> = {}
  for (const e of web.stats().log ?? []) {
    const peer = /\(peer ([^;]+);/.exec(e.userAgent)?.[1] ?? e.userAgent
    const origin = web.origins[e.host]
    fetchers[origin] ??= []
    if (!fetchers[origin].includes(peer)) fetchers[origin].push(peer)
  }
  process.stdout.write(JSON.stringify({ summary: web.summary(), fetchers }) + '\n', () => {
    void web.close().then(() => process.exit(0))
  })
})

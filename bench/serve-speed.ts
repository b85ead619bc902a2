/**
 * How fast the synthetic web serves on its own, so we know it is not what limits a crawl benchmark.
 *
 *   node --import tsx bench/serve-speed.ts [--pages 20000] [--profile large|small] [--connections 32]
 *        [--requests 100000] [--no-cache]
 *
 * The server runs in this process, as in bench/single-peer.ts; a load generator runs as a child
 * process (plain node:http, keep-alive, N connections) and fetches every page URL round-robin until
 * it has made the number of requests asked for. Prints requests/s, MiB/s and the CPU each side used.
 */
import { spawn } from 'node:child_process'
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startSyntheticWeb } from '../sim/web.js'
import type { SiteProfile } from '../sim/web.js'

// The load generator: plain JavaScript, written to a temporary file and run by node.
const CLIENT = `
import http from 'node:http'
import { readFileSync } from 'node:fs'
const [urlsFile, connections, total] = process.argv.slice(2)
const urls = readFileSync(urlsFile, 'utf8').split('\\n').filter(Boolean)
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(connections) })
let next = 0, done = 0, bytes = 0, errors = 0
const started = performance.now()
function one () {
  if (next >= Number(total)) return Promise.resolve()
  const url = urls[next++ % urls.length]
  return new Promise(resolve => {
    http.get(url, { agent }, res => {
      res.on('data', b => { bytes += b.length })
      res.on('end', () => { done++; if (res.statusCode !== 200) errors++; resolve() })
    }).on('error', () => { errors++; resolve() })
  }).then(one)
}
await Promise.all(Array.from({ length: Number(connections) }, one))
const seconds = (performance.now() - started) / 1000
const cpu = process.cpuUsage()
console.log(JSON.stringify({ requests: done, errors, bytes, seconds, clientCpuSeconds: (cpu.user + cpu.system) / 1e6 }))
agent.destroy()
`

const { values } = parseArgs({
  options: {
    pages: { type: 'string', default: '20000' },
    profile: { type: 'string', default: 'large' },
    connections: { type: 'string', default: '32' },
    requests: { type: 'string', default: '100000' },
    'no-cache': { type: 'boolean', default: false }
  }
})
const pages = Number(values.pages)
const profile = values.profile as SiteProfile
const cache = !values['no-cache']
const pageBytes = profile === 'large' ? 30 * 1024 : 5 * 1024
const web = await startSyntheticWeb({ pages, profile, cacheBytes: cache ? Math.ceil(pages * pageBytes * 1.5) : 0 })
if (cache) web.warm()
const dir = mkdtempSync(join(tmpdir(), 'shoal-serve-speed-'))
const urlsFile = join(dir, 'urls.txt')
const clientFile = join(dir, 'client.mjs')
writeFileSync(urlsFile, web.expectedUrls().join('\n'))
writeFileSync(clientFile, CLIENT)
try {
  const before = process.cpuUsage()
  const child = spawn(process.execPath, [clientFile, urlsFile, values.connections, values.requests], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (b: Buffer) => { out += b.toString() })
  await new Promise(resolve => child.once('close', resolve))
  const cpu = process.cpuUsage(before)
  const r = JSON.parse(out) as { requests: number, errors: number, bytes: number, seconds: number, clientCpuSeconds: number }
  const serverCpuSeconds = (cpu.user + cpu.system) / 1e6
  const s = web.summary()
  process.stdout.write(
    `synthetic web, ${pages} pages (${profile}), body cache ${cache ? 'on' : 'off'}, ${values.connections} keep-alive connections:\n` +
    `  ${r.requests} requests in ${r.seconds.toFixed(2)} s = ${(r.requests / r.seconds).toFixed(0)} requests/s, ` +
    `${(r.bytes / r.seconds / 2 ** 20).toFixed(0)} MiB/s, ${r.errors} errors\n` +
    `  server CPU ${serverCpuSeconds.toFixed(2)} s (${(serverCpuSeconds / r.requests * 1e6).toFixed(0)} µs a request), ` +
    `client CPU ${r.clientCpuSeconds.toFixed(2)} s; server counted ${s.requests} requests on ${s.connections} connections\n`)
} finally {
  rmSync(dir, { recursive: true, force: true })
  await web.close()
}

import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { stopProcess } from '../../node/local-cluster.js'
import { Ring } from '../../node/ring.js'
import { hostKeyFast } from '../../node/router.js'
import { SHOAL_BIN } from '../utils/cli.js'
import { netnsUnavailable, TestLan } from '../utils/netns.js'
import { useTempDirs } from '../utils/tmp.js'

const WEB = fileURLToPath(new URL('../utils/netns-web.ts', import.meta.url))
const DRIVER = fileURLToPath(new URL('../utils/netns-driver.ts', import.meta.url))

/** Start argv; resolve with the process once `until` matches a stdout line (and the lines so far). */
async function startUntil (argv: string[], until: (line: string) => boolean): Promise<{ child: ChildProcess, lines: string[] }> {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-4000) })
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => { reject(new Error(`${argv.slice(4, 7).join(' ')} exited ${code} before it was ready: ${stderr}`)) })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line)
      if (until(line)) resolve()
    })
  })
  return { child, lines }
}

describe('cluster across network namespaces (one address per peer, a bridge between them)', function () {
  this.timeout(240_000)
  const dirs = useTempDirs('shoal-netns-')
  const why = netnsUnavailable()
  let lan: TestLan | undefined
  const children: ChildProcess[] = []

  before(function () {
    if (why != null) {
      console.log(`      skipped: ${why} (this test needs root and ip netns; CI runs it as root)`)
      this.skip()
    }
  })
  afterEach(async () => {
    await Promise.all(children.splice(0).map(async c => await stopProcess(c, 5000)))
    await lan?.stop()
    lan = undefined
  })

  it('3 peers, each in its own namespace, join through the bootstrap peer\'s address and crawl a 6-host web in a fourth', async () => {
    lan = new TestLan()
    await lan.start()
    const web = await lan.addHost('web')
    const ctl = await lan.addHost('ctl')
    const peers = [await lan.addHost('p0'), await lan.addHost('p1'), await lan.addHost('p2')]
    const node = process.execPath

    const w = await startUntil(lan.exec('web', [node, '--import', 'tsx', WEB, web.address, '6', '300']), l => l.startsWith('ready '))
    children.push(w.child)
    const seeds = JSON.parse(w.lines[w.lines.length - 1].slice(6)) as string[]

    const ids: string[] = []
    let bootstrap = ''
    for (let i = 0; i < peers.length; i++) {
      const args = [node, SHOAL_BIN, 'start', '--data', await dirs.make(), '--cluster', `netns-${lan.id}`,
        '--listen', `/ip4/${peers[i].address}/tcp/4001`, '--api', `${peers[i].address}:8080`,
        '--allow-private', '--delay', '0', '--host-concurrency', '2']
      if (bootstrap !== '') args.push('--bootstrap', bootstrap)
      const p = await startUntil(lan.exec(`p${i}`, args), l => l.startsWith('api '))
      children.push(p.child)
      ids.push(p.lines.find(l => l.startsWith('peer '))!.slice(5))
      const listening = p.lines.find(l => l.startsWith('listening '))!.slice(10)
      assert.ok(listening.includes(`/ip4/${peers[i].address}/`), `peer ${i} listens on its own address: ${listening}`)
      if (i === 0) bootstrap = listening
    }

    const apis = peers.map(p => `${p.address}:8080`)
    const d = spawn('ip', lan.exec('ctl', [node, '--import', 'tsx', DRIVER, JSON.stringify({ apis, seeds })]).slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(d)
    let out = ''
    let err = ''
    d.stdout.setEncoding('utf8').on('data', (s: string) => { out += s })
    d.stderr.setEncoding('utf8').on('data', (s: string) => { err += s })
    const code = await new Promise<number | null>((resolve) => d.once('exit', resolve))
    assert.equal(code, 0, `driver failed: ${err.slice(-2000)}`)
    const statuses = JSON.parse(out.trim().split('\n').pop() as string) as any[]
    assert.equal(statuses.length, 3)
    for (const s of statuses) assert.equal(s.ring.peers, 3, 'every peer sees the whole ring')

    // The web's view: complete, once each, each host by its ring owner only.
    const seen = new Promise<string>((resolve) => {
      let buf = ''
      w.child.stdout!.on('data', (s: Buffer) => { buf += s.toString(); if (buf.includes('\n')) resolve(buf) })
    })
    w.child.kill('SIGTERM')
    const { summary, fetchers } = JSON.parse((await seen).trim().split('\n').pop() as string)
    assert.equal(summary.coverage, 1)
    assert.equal(summary.duplicateFetches, 0)
    const ring = Ring.of(ids)
    const byShort = new Map(ids.map(id => [id.slice(-8), id]))
    assert.equal(Object.keys(fetchers).length, 6)
    for (const [origin, who] of Object.entries(fetchers) as Array<[string, string[]]>) {
      assert.equal(who.length, 1, `${origin} fetched by one peer, got ${who.join(', ')}`)
      assert.equal(byShort.get(who[0]), ring.owner(hostKeyFast(origin + '/')), `${origin} fetched by its owner`)
    }
    assert.ok(statuses.reduce((a, s) => a + s.local.linksReceived, 0) > 0, 'links crossed between the peers')
  })
})

import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { defaultProfileFile, takeProfileOption } from '../../node/profile.js'
import { finished, killAllShoals, lastJson, runShoal, startShoal } from '../utils/cli.js'
import { anchors, html, routes, TestServer } from '../utils/fixture-web.js'
import { useTempDirs } from '../utils/tmp.js'

/** A .cpuprofile as Chrome DevTools reads it: a call tree and the samples taken. */
async function assertCpuProfile (file: string): Promise<void> {
  const p = JSON.parse(await readFile(file, 'utf8'))
  assert.ok(Array.isArray(p.nodes) && p.nodes.length > 1, 'a call tree')
  for (const n of p.nodes.slice(0, 20)) {
    assert.equal(typeof n.id, 'number')
    assert.equal(typeof n.callFrame?.functionName, 'string')
  }
  assert.equal(p.nodes[0].callFrame.functionName, '(root)')
  assert.ok(Array.isArray(p.samples) && p.samples.length > 0, 'samples')
  assert.equal(p.samples.length, p.timeDeltas.length)
  assert.ok(p.endTime > p.startTime)
}

describe('--profile', function () {
  this.timeout(60_000)
  const dirs = useTempDirs('shoal-profile-')
  let server: TestServer | undefined
  afterEach(async () => {
    killAllShoals()
    await server?.close()
    server = undefined
  })

  it('is taken out of the arguments with its optional FILE, or read from SHOAL_PROFILE', () => {
    const url = 'http://127.0.0.1:8080/'
    assert.deepEqual(takeProfileOption('crawl', [url, '--json'], {}), { args: [url, '--json'] })
    assert.deepEqual(takeProfileOption('crawl', ['--profile', 'out.cpuprofile', url], {}), { args: [url], file: resolve('out.cpuprofile') })
    assert.deepEqual(takeProfileOption('crawl', ['--profile=x.cpuprofile', url], {}), { args: [url], file: resolve('x.cpuprofile') })
    // A seed URL or another flag after --profile is not its file.
    const beforeUrl = takeProfileOption('crawl', ['--profile', url], {})
    assert.deepEqual(beforeUrl.args, [url])
    assert.match(beforeUrl.file ?? '', /shoal-crawl-\d{8}-\d{6}-\d+\.cpuprofile$/)
    assert.deepEqual(takeProfileOption('crawl', [url, '--profile', '--json'], {}).args, [url, '--json'])
    assert.deepEqual(takeProfileOption('start', [], { SHOAL_PROFILE: '/tmp/p.cpuprofile' }), { args: [], file: '/tmp/p.cpuprofile' })
    assert.match(takeProfileOption('start', [], { SHOAL_PROFILE: '1' }).file ?? '', /shoal-start-.*\.cpuprofile$/)
    assert.equal(takeProfileOption('start', [], { SHOAL_PROFILE: '0' }).file, undefined)
    assert.equal(defaultProfileFile('crawl', new Date(2026, 0, 2, 3, 4, 5), 42), 'shoal-crawl-20260102-030405-42.cpuprofile')
    assert.throws(() => takeProfileOption('crawl', ['--profile='], {}), /--profile= needs a file name/)
  })

  it('shoal crawl --profile FILE writes a CPU profile of the crawl and says where', async () => {
    server = await TestServer.start('p', routes({
      '/': { body: html('root', anchors('/a', '/b')) },
      '/a': { body: html('a', anchors('/', '/b')) },
      '/b': { body: html('b', 'no links') }
    }))
    const dir = await dirs.make()
    const file = join(dir, 'crawl.cpuprofile')
    const r = await runShoal(['crawl', `${server.origin}/`, '--data', join(dir, 'data'), '--allow-private', '--delay', '0', '--json', '--profile', file])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(lastJson(r.stdout).pagesFetched, 3)
    assert.ok(r.stderr.includes(`CPU profile written to ${file}`), r.stderr)
    await assertCpuProfile(file)

    // The same through the environment.
    const viaEnv = join(dir, 'env.cpuprofile')
    const again = await runShoal(['crawl', `${server.origin}/`, '--data', join(dir, 'data2'), '--allow-private', '--delay', '0', '--json'], { SHOAL_PROFILE: viaEnv })
    assert.equal(again.code, 0, again.stderr)
    await assertCpuProfile(viaEnv)
  })

  it('shoal start --profile FILE writes the profile when SIGTERM stops the peer', async () => {
    const dir = await dirs.make()
    const file = join(dir, 'start.cpuprofile')
    const child = startShoal(['start', '--data', join(dir, 'data'), '--allow-private', '--profile', file])
    const done = finished(child)
    await new Promise<void>((resolve) => {
      createInterface({ input: child.stdout! }).on('line', (line) => { if (line.startsWith('api ')) resolve() })
    })
    child.kill('SIGTERM')
    const r = await done
    assert.equal(r.code, 0, `${r.signal} ${r.stderr}`)
    assert.ok(r.stderr.includes(`CPU profile written to ${file}`), r.stderr)
    await assertCpuProfile(file)
  })
})

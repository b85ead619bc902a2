import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { main } from '../../node/cli.js'
import { killAllShoals, startShoal } from '../utils/cli.js'
import { useTempDirs } from '../utils/tmp.js'

async function inProcess (args: string[]): Promise<{ code: number, err: string }> {
  let err = ''
  const e = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true }) as typeof process.stderr.write
  try {
    return { code: await main(args), err }
  } finally {
    process.stderr.write = e
  }
}

describe('shoal start', function () {
  this.timeout(60_000)
  const dirs = useTempDirs('shoal-start-')
  afterEach(() => { killAllShoals() })

  it('keeps retrying an unreachable bootstrap address and says so in its log', async () => {
    const unreachable = '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWHFZa7BU7yJQiVbgxWoWnYp3nPinVFiZbYaZni8GV7fCy'
    const child = startShoal(['start', '--data', await dirs.make(), '--allow-private', '--bootstrap', unreachable])
    const retries: string[] = []
    await new Promise<void>((resolve) => {
      createInterface({ input: child.stderr! }).on('line', (line) => {
        if (line.includes('bootstrap') && line.includes('retrying')) retries.push(line)
        if (retries.length >= 2) resolve()
      })
    })
    assert.match(retries[0], /bootstrap \/ip4\/127\.0\.0\.1\/tcp\/1\/p2p\/12D3KooW\S+: connection refused; retrying in/)
    assert.equal(child.exitCode, null, 'the peer is still running')
  })

  const bad: Array<[string, string, RegExp]> = [
    ['an unknown top-level key', 'clustr: x\n', /bad\.yml: unknown key "clustr"/],
    ['listen of the wrong kind', 'listen: { a: 1 }\n', /bad\.yml: listen must be a list of strings, got \{"a":1\}/],
    ['a crawl option of the wrong kind', 'crawl:\n  delay: soon\n', /bad\.yml: crawl: delay must be a non-negative integer, got "soon"/],
    ['an API address that is not HOST:PORT', 'api: localhost\n', /--api must be HOST:PORT|api must be HOST:PORT/],
    ['a bootstrap address without a peer id', 'bootstrap:\n  - /ip4/10.0.0.1/tcp/4001\n', /bootstrap address "\/ip4\/10\.0\.0\.1\/tcp\/4001" must end in \/p2p\/<peer id>/],
    ['a bootstrap address with a bad peer id', 'bootstrap:\n  - /ip4/10.0.0.1/tcp/4001/p2p/garbage\n', /"garbage" is not a peer id|is not a multiaddr/]
  ]
  for (const [name, text, message] of bad) {
    it(`refuses a cluster file with ${name}, naming the file, the key and what was expected`, async () => {
      const file = join(await dirs.make(), 'bad.yml')
      await writeFile(file, text)
      const r = await inProcess(['start', '--config', file, '--data', join(file, '..', 'data')])
      assert.equal(r.code, 2, r.err)
      assert.match(r.err, message)
    })
  }

  it('the documented cluster.yml is valid', async () => {
    const { loadClusterFile } = await import('../../node/config.js')
    const f = await loadClusterFile(new URL('../../cluster.yml', import.meta.url).pathname)
    assert.equal(typeof f.crawl, 'object')
  })
})

import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { main } from '../../node/cli.js'
import { runShoal } from '../utils/cli.js'

/** Run the CLI's main in this process, capturing what it writes. */
async function inProcess (args: string[]): Promise<{ code: number, out: string, err: string }> {
  let out = ''
  let err = ''
  const o = process.stdout.write.bind(process.stdout)
  const e = process.stderr.write.bind(process.stderr)
  process.stdout.write = ((s: string | Uint8Array) => { out += String(s); return true }) as typeof process.stdout.write
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true }) as typeof process.stderr.write
  try {
    const code = await main(args)
    return { code, out, err }
  } finally {
    process.stdout.write = o
    process.stderr.write = e
  }
}

describe('cli: bad arguments and config values exit 2 with a message that says what and why', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'shoal-cli-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  const cases: Array<[string, string[], RegExp]> = [
    ['unknown command', ['frobnicate'], /unknown command "frobnicate"/],
    ['crawl without a seed', ['crawl'], /at least one seed URL/],
    ['unknown flag', ['crawl', 'http://example.com/', '--frob'], /Unknown option '--frob'/],
    ['negative delay', ['crawl', 'http://example.com/', '--delay=-5'], /--delay must be a non-negative integer, got "-5"/],
    ['flag missing its value', ['crawl', 'http://example.com/', '--delay', '-5'], /Option '--delay' argument is ambiguous/],
    ['non-numeric delay', ['crawl', 'http://example.com/', '--delay', 'soon'], /--delay must be a non-negative integer, got "soon"/],
    ['zero host concurrency', ['crawl', 'http://example.com/', '--host-concurrency', '0'], /--host-concurrency must be a positive integer, got "0"/],
    ['fractional max depth', ['crawl', 'http://example.com/', '--max-depth', '1.5'], /--max-depth must be a non-negative integer, got "1.5"/],
    ['heap growth out of range', ['crawl', 'http://example.com/', '--heap-growth', '5000'], /heap growth \(--heap-growth, heapGrowth\) must be an integer from 0 .* to 1000 percent, got 5000/],
    ['bad scope', ['crawl', 'http://example.com/', '--scope', 'planet'], /--scope must be one of host, domain, any; got "planet"/],
    ['bad exclude regex', ['crawl', 'http://example.com/', '--exclude', '(', '--data', '%DIR%/x'], /exclude.*\(/],
    ['get without URL', ['get'], /exactly one URL/],
    ['get on a missing data dir', ['get', 'http://example.com/', '--data', '%DIR%/nope'], /no such directory/],
    ['missing config file', ['crawl', 'http://example.com/', '--config', '%DIR%/missing.yml'], /missing\.yml: cannot read config file \(ENOENT\)/]
  ]
  for (const [name, args, message] of cases) {
    it(name, async () => {
      const r = await inProcess(args.map(a => a.replace('%DIR%', dir)))
      assert.equal(r.code, 2, `exit code (stderr: ${r.err})`)
      assert.match(r.err, message)
    })
  }

  it('a config file with an unknown key names the file and the key', async () => {
    const file = join(dir, 'bad-key.yml')
    await writeFile(file, 'crawl:\n  delay: 10\n  maxDepht: 3\n')
    const r = await inProcess(['crawl', 'http://example.com/', '--config', file])
    assert.equal(r.code, 2)
    assert.match(r.err, /bad-key\.yml: crawl: unknown option "maxDepht"/)
  })

  it('a config file with a value of the wrong kind names the key and what it must be', async () => {
    const file = join(dir, 'bad-value.yml')
    await writeFile(file, 'crawl:\n  hostConcurrency: many\n')
    const r = await inProcess(['crawl', 'http://example.com/', '--config', file])
    assert.equal(r.code, 2)
    assert.match(r.err, /bad-value\.yml: crawl: hostConcurrency must be a positive integer, got "many"/)
  })

  it('a config file that is not YAML says so', async () => {
    const file = join(dir, 'broken.yml')
    await writeFile(file, 'crawl: [unclosed\n')
    const r = await inProcess(['crawl', 'http://example.com/', '--config', file])
    assert.equal(r.code, 2)
    assert.match(r.err, /broken\.yml: not valid YAML/)
  })

  it('the real process exits 2 on a bad flag and prints help on --help', async () => {
    const bad = await runShoal(['crawl', 'http://example.com/', '--delay', 'x'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /--delay must be a non-negative integer/)
    const help = await runShoal(['--help'])
    assert.equal(help.code, 0)
    assert.match(help.stdout, /shoal crawl URL/)
  })
})

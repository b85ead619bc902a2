import assert from 'node:assert/strict'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { lastJson, runShoal } from '../utils/cli.js'
import { anchors, html, routes, TestServer } from '../utils/fixture-web.js'
import { useTempDirs } from '../utils/tmp.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const STAMP = join(ROOT, 'dist', 'build.json')

describe('bin/shoal.js: the sources bundled into dist/, rebuilt when they change', () => {
  const dirs = useTempDirs()

  it('runs from a bundle of the sources it names, and rebuilds when the stamp does not match them', async () => {
    const first = await runShoal(['--version'])
    assert.equal(first.code, 0, first.stderr)
    const stamp = JSON.parse(await readFile(STAMP, 'utf8'))
    assert.ok(stamp.inputs.includes('node/cli.ts') && stamp.inputs.includes('node/parse-worker.ts') && stamp.inputs.includes('node/frontier.ts'), 'the stamp lists the sources')
    // Packages stay imports, but undici (bin/bundle.mjs: its ~110 CommonJS files cost every start).
    assert.deepEqual([...new Set(stamp.inputs.filter((f: string) => f.startsWith('node_modules/')).map((f: string) => f.split('/')[1]))], ['undici'])
    await stat(join(ROOT, 'dist', 'cli.js'))
    await stat(join(ROOT, 'dist', 'parse-worker.js'))
    await stat(join(ROOT, 'dist', 'polyfills.js'))
    // Code split: libp2p is in the chunks `shoal start` imports on demand, not in what every
    // command loads (cli.js and the chunks it imports statically).
    const loaded = await staticImports(join(ROOT, 'dist', 'cli.js'))
    assert.ok(loaded.has('level') && loaded.has('msgpackr') && !loaded.has('undici'), `the crawl's packages are loaded, undici from the bundle: ${[...loaded].join(' ')}`)
    assert.deepEqual([...loaded].filter(p => p.startsWith('@libp2p/') || p.startsWith('@chainsafe/')), [])

    // A stamp that no longer matches (as after an edit of a source) is rebuilt on the next run.
    await writeFile(STAMP, JSON.stringify({ ...stamp, key: 'stale' }))
    const again = await runShoal(['--version'])
    assert.equal(again.code, 0, again.stderr)
    assert.equal(again.stdout, first.stdout)
    assert.equal(JSON.parse(await readFile(STAMP, 'utf8')).key, stamp.key)
  })

  it('a crawl from the bundle parses in its worker thread (the worker finds its script)', async () => {
    const server = await TestServer.start('p', routes({
      '/': { body: html('root', anchors('/a', '/b')) },
      '/a': { body: html('a', anchors('/', '/b')) },
      '/b': { body: html('b', 'no links') }
    }))
    try {
      const r = await runShoal(['crawl', `${server.origin}/`, '--data', join(await dirs.make(), 'data'), '--allow-private', '--delay', '0', '--parse-workers', '1', '--json'])
      assert.equal(r.code, 0, r.stderr)
      assert.equal(lastJson(r.stdout).pagesFetched, 3)
      assert.doesNotMatch(r.stderr, /parse worker/)
    } finally {
      await server.close()
    }
  })

  it('runs the TypeScript sources through tsx with SHOAL_NO_BUNDLE=1', async () => {
    const r = await runShoal(['--version'], { SHOAL_NO_BUNDLE: '1' })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^shoal \d+\.\d+\.\d+/)
  })
})

/** The packages a module of dist/ loads before it runs: its static imports, followed through dist/'s own files. */
async function staticImports (file: string, seen = new Set<string>(), packages = new Set<string>()): Promise<Set<string>> {
  if (seen.has(file)) return packages
  seen.add(file)
  const text = await readFile(file, 'utf8')
  for (const m of text.matchAll(/^import\s+(?:[^'"]*?\s+from\s+)?"([^"]+)";?$/gms)) {
    const spec = m[1]
    if (spec.startsWith('.')) await staticImports(resolve(dirname(file), spec), seen, packages)
    else if (!spec.startsWith('node:')) packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0])
  }
  return packages
}

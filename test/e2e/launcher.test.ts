import assert from 'node:assert/strict'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runShoal } from '../utils/cli.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const STAMP = join(ROOT, 'dist', 'build.json')

describe('bin/shoal.js: the sources bundled into dist/, rebuilt when they change', () => {
  it('runs from a bundle of the sources it names, and rebuilds when the stamp does not match them', async () => {
    const first = await runShoal(['--version'])
    assert.equal(first.code, 0, first.stderr)
    const stamp = JSON.parse(await readFile(STAMP, 'utf8'))
    assert.ok(stamp.inputs.includes('node/cli.ts') && stamp.inputs.includes('node/parse-worker.ts') && stamp.inputs.includes('node/frontier.ts'), 'the stamp lists the sources')
    assert.ok(stamp.inputs.every((f: string) => !f.startsWith('node_modules')), 'packages stay imports')
    await stat(join(ROOT, 'dist', 'cli.js'))
    await stat(join(ROOT, 'dist', 'parse-worker.js'))
    await stat(join(ROOT, 'dist', 'polyfills.js'))

    // A stamp that no longer matches (as after an edit of a source) is rebuilt on the next run.
    await writeFile(STAMP, JSON.stringify({ ...stamp, key: 'stale' }))
    const again = await runShoal(['--version'])
    assert.equal(again.code, 0, again.stderr)
    assert.equal(again.stdout, first.stdout)
    assert.equal(JSON.parse(await readFile(STAMP, 'utf8')).key, stamp.key)
  })

  it('runs the TypeScript sources through tsx with SHOAL_NO_BUNDLE=1', async () => {
    const r = await runShoal(['--version'], { SHOAL_NO_BUNDLE: '1' })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^shoal \d+\.\d+\.\d+/)
  })
})

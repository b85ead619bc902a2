#!/usr/bin/env node
// Launcher. shoal is written in TypeScript; a clone works after `npm install` with no build step.
// The first run (and the first after any source file changed) bundles the sources into plain
// JavaScript in dist/ with esbuild (~0.2 s; packages stay imports), and every run after that loads
// dist/cli.js: a process then starts without a TypeScript loader (a hooks thread that transforms
// every module: a `shoal start` peer costs ~1.4 CPU s to start instead of ~2.5). Where dist/ can't
// be written or esbuild is missing,
// the sources run through tsx's loader instead (SHOAL_NO_BUNDLE=1 asks for that).
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const DIST = join(ROOT, 'dist')
const STAMP = join(DIST, 'build.json')
/** The layout of dist/ (a stamp of another format is rebuilt). */
const FORMAT = 2
/** What dist/ holds, built from these sources. */
const ENTRIES = {
  cli: join(ROOT, 'node', 'cli.ts'),
  'parse-worker': join(ROOT, 'node', 'parse-worker.ts'),
  // A bundle evaluates every package it imports before any of its own code, so the polyfills
  // libp2p needs are a module of their own, loaded first.
  polyfills: join(ROOT, 'node', 'polyfills.ts')
}

/** A key of the given source files as they are now: path, size and modification time. */
function keyOf (files) {
  const h = createHash('sha256').update(process.version)
  for (const f of files) {
    const st = statSync(join(ROOT, f))
    h.update(`${f}\0${st.size}\0${st.mtimeMs}\n`)
  }
  return h.digest('hex').slice(0, 32)
}

/** dist/cli.js when it was built from the sources as they are now, else undefined. */
function current () {
  try {
    const stamp = JSON.parse(readFileSync(STAMP, 'utf8'))
    return stamp.format === FORMAT && keyOf(stamp.inputs) === stamp.key ? join(DIST, 'cli.js') : undefined
  } catch {
    return undefined // no build yet, or a source it was built from is gone
  }
}

/** Bundle the sources into dist/; each file is written under a temporary name and renamed. */
async function bundle () {
  const { build } = await import('esbuild')
  const out = await build({
    entryPoints: ENTRIES, outdir: DIST, absWorkingDir: ROOT, bundle: true, packages: 'external', platform: 'node',
    format: 'esm', target: 'node20', write: false, metafile: true, logLevel: 'silent', sourcemap: 'linked'
  })
  // This launcher too: what it builds is part of the build.
  const inputs = [...Object.keys(out.metafile.inputs), 'bin/shoal.js']
  mkdirSync(DIST, { recursive: true })
  const put = (file, contents) => {
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, contents)
    renameSync(tmp, file)
  }
  for (const f of out.outputFiles) put(f.path, f.contents)
  // The stamp last: a reader that finds it matching finds the files it names.
  put(STAMP, JSON.stringify({ format: FORMAT, key: keyOf(inputs), inputs }))
  return join(DIST, 'cli.js')
}

let cli
if (process.env.SHOAL_NO_BUNDLE !== '1') {
  try {
    cli = current() ?? await bundle()
  } catch (err) {
    if (process.env.DEBUG?.includes('shoal')) console.error(`shoal: running the TypeScript sources (no bundle: ${err.message})`)
  }
}
let main
if (cli !== undefined) {
  await import(pathToFileURL(join(DIST, 'polyfills.js')).href)
  ;({ main } = await import(pathToFileURL(cli).href))
} else {
  const { register } = await import('tsx/esm/api')
  register()
  ;({ main } = await import('../node/cli.ts'))
}
process.exitCode = await main(process.argv.slice(2))

// shoal's sources bundled into plain JavaScript in dist/ with esbuild (packages stay imports,
// resolved from the project's node_modules, but undici: below), rebuilt whenever a source it was
// built from changed.
// Used by the launcher (bin/shoal.js: dist/cli.js) and, when shoal runs from its TypeScript sources,
// by the parse pool (node/parse-pool.ts: dist/parse-worker.js, so a worker needs no loader).
// Code split: what a command imports on demand (the daemon and libp2p for `start`, the local
// cluster for `crawl --peers`, the simulator) is a chunk of its own in dist/chunks/, so `shoal crawl`
// and `shoal version` don't load libp2p: a one-page crawl starts and ends in ~0.5 s instead of ~1.
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const DIST = join(ROOT, 'dist')
const STAMP = join(DIST, 'build.json')
/** The layout of dist/ (a stamp of another format is rebuilt). */
const FORMAT = 5
/** What dist/ holds, built from these sources. */
const ENTRIES = {
  cli: join(ROOT, 'node', 'cli.ts'),
  'parse-worker': join(ROOT, 'node', 'parse-worker.ts'),
  // A bundle evaluates every package it imports before any of its own code, so the polyfills
  // libp2p needs are a module of their own, loaded first.
  polyfills: join(ROOT, 'node', 'polyfills.ts')
}

/**
 * Packages left as imports: every dependency but undici, which is ~110 CommonJS files that Node's
 * loader resolves, reads and wraps one by one at every start; bundled, `dist/cli.js` imports ~30 ms
 * sooner (BENCHMARKS.md §1). CommonJS code in a bundle calls `require` for Node's built-ins: the
 * banner gives each output file one.
 */
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
const EXTERNAL = Object.keys(PKG.dependencies ?? {}).filter(d => d !== 'undici').flatMap(d => [d, `${d}/*`])
const REQUIRE_BANNER = "import { createRequire as __shoalCreateRequire } from 'node:module'; const require = __shoalCreateRequire(import.meta.url);"

/** A key of the given source files as they are now: path, size and modification time. */
function keyOf (files) {
  const h = createHash('sha256').update(process.version)
  for (const f of files) {
    const st = statSync(join(ROOT, f))
    h.update(`${f}\0${st.size}\0${st.mtimeMs}\n`)
  }
  return h.digest('hex').slice(0, 32)
}

/** True when dist/ was built from the sources as they are now. */
function current () {
  try {
    const stamp = JSON.parse(readFileSync(STAMP, 'utf8'))
    return stamp.format === FORMAT && keyOf(stamp.inputs) === stamp.key
  } catch {
    return false // no build yet, or a source it was built from is gone
  }
}

/** Bundle the sources into dist/; each file is written under a temporary name and renamed. */
async function build () {
  const esbuild = await import('esbuild')
  const out = await esbuild.build({
    entryPoints: ENTRIES, outdir: DIST, absWorkingDir: ROOT, bundle: true, external: EXTERNAL, platform: 'node',
    banner: { js: REQUIRE_BANNER },
    format: 'esm', splitting: true, chunkNames: 'chunks/[name]-[hash]', target: 'node20', write: false, metafile: true, logLevel: 'silent', sourcemap: 'linked'
  })
  // This file too: what it builds is part of the build.
  const inputs = [...Object.keys(out.metafile.inputs), 'bin/bundle.mjs']
  mkdirSync(DIST, { recursive: true })
  const put = (file, contents) => {
    mkdirSync(dirname(file), { recursive: true })
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, contents)
    renameSync(tmp, file)
  }
  for (const f of out.outputFiles) put(f.path, f.contents)
  // The stamp last: a reader that finds it matching finds the files it names.
  put(STAMP, JSON.stringify({ format: FORMAT, key: keyOf(inputs), inputs }))
  pruneChunks(new Set(out.outputFiles.map(f => f.path)))
}

/**
 * Chunks of earlier builds go once they are an hour old: a process started from an earlier build
 * may still load one of its chunks on demand (the daemon's, when a command needs it), and chunk
 * names carry a hash of their contents, so a new build never overwrites one in use.
 */
function pruneChunks (keep) {
  const dir = join(DIST, 'chunks')
  const before = Date.now() - 60 * 60 * 1000
  let names = []
  try {
    names = readdirSync(dir)
  } catch {} // a build without chunks
  for (const name of names) {
    const file = join(dir, name)
    try {
      if (!keep.has(file) && statSync(file).mtimeMs < before) unlinkSync(file)
    } catch {} // another build pruned it first
  }
}

/** dist/, built from the sources as they are now (building it if not); throws if it can't be. */
export async function ensureBundle () {
  if (!current()) await build()
  return DIST
}

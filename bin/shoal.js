#!/usr/bin/env node
// Launcher. shoal is written in TypeScript; a clone works after `npm install` with no build step.
// The first run (and the first after any source file changed) bundles the sources into plain
// JavaScript in dist/ (bin/bundle.mjs: esbuild, ~0.2 s), and every run after that loads
// dist/cli.js: a process then starts without a TypeScript loader (a hooks thread that transforms
// every module: a `shoal start` peer costs ~1.4 CPU s to start instead of ~2.5). Where dist/ can't
// be written or esbuild is missing, the sources run through tsx's loader instead
// (SHOAL_NO_BUNDLE=1 asks for that).
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ensureBundle } from './bundle.mjs'

let dist
if (process.env.SHOAL_NO_BUNDLE !== '1') {
  try {
    dist = await ensureBundle()
  } catch (err) {
    if (process.env.DEBUG?.includes('shoal')) console.error(`shoal: running the TypeScript sources (no bundle: ${err.message})`)
  }
}
let main
if (dist !== undefined) {
  await import(pathToFileURL(join(dist, 'polyfills.js')).href)
  ;({ main } = await import(pathToFileURL(join(dist, 'cli.js')).href))
} else {
  const { register } = await import('tsx/esm/api')
  register()
  ;({ main } = await import('../node/cli.ts'))
}
process.exitCode = await main(process.argv.slice(2))

#!/usr/bin/env node
// Launcher: shoal is written in TypeScript and run through tsx's loader, so a clone works after
// `npm install` with no build step. The loader only transforms at load time; the hot path runs as
// plain JavaScript afterwards.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../node/cli.ts')
process.exitCode = await main(process.argv.slice(2))

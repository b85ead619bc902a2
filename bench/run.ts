/**
 * `npm run bench`: the single-peer benchmark (bench/single-peer.ts) with its defaults — 20,000 large
 * pages, 3 runs of shoal, wget and Crawlee. Arguments are passed on: `npm run bench -- --profile small`.
 */
import { main } from './single-peer.js'

process.exitCode = await main(process.argv.slice(2))

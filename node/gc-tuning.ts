import { setFlagsFromString } from 'node:v8'
import { ConfigError } from './errors.js'

/**
 * How far V8 lets a heap grow past what its last full collection kept, percent
 * (`--heap-growing-percent`). V8's own rule grows the limit by up to 4× the live heap on a
 * throughput-bound process; a crawler's live heap is small (bounded caches; the frontier and the
 * seen set are on disk) and its garbage is mostly page bodies and link strings, so at 4× most of
 * the resident memory is garbage waiting. On a 20,000-page crawl of 30 KB pages (one peer, libp2p
 * not loaded): V8's rule 245–250 MB peak; 100 % 206–213 MB; 50 % 196–200 MB but ~7 % more CPU
 * (more full collections, whose marking runs on V8's helper threads), so 100 % (BENCHMARKS.md §1,
 * §5; the 5 M-URL memory bench peaks at 340 MB with it, 319 MB at 50 %).
 */
export const DEFAULT_HEAP_GROWTH = 100
export const MAX_HEAP_GROWTH = 1000

/**
 * Where a user already set V8's flag on node's command line (`node --heap-growing-percent=N
 * bin/shoal.js …`): theirs wins. (NODE_OPTIONS does not take this flag: node refuses to start.)
 */
export function userSetHeapGrowth (execArgv = process.execArgv): boolean {
  return execArgv.some(a => /^--heap[-_]growing[-_]percent/.test(a))
}

/** The flag for `percent`, or undefined for V8's own rule (0). */
export function heapGrowthFlag (percent: number): string | undefined {
  if (!Number.isInteger(percent) || percent < 0 || percent > MAX_HEAP_GROWTH) {
    throw new ConfigError(`heap growth (--heap-growth, heapGrowth) must be an integer from 0 (V8's own rule) to ${MAX_HEAP_GROWTH} percent, got ${String(percent)}`)
  }
  return percent === 0 ? undefined : `--heap-growing-percent=${percent}`
}

/**
 * Set this process's heap growth (all its threads: V8 flags are per process), unless the user set
 * V8's flag. Call before the work starts; a CLI command does (and `shoal crawl --peers N` passes
 * `--heap-growth` to its peers when it is given); a `Peer` or `crawl()` made from code does not:
 * library users call this themselves. Returns the flag set, if any.
 */
export function applyHeapGrowth (percent = DEFAULT_HEAP_GROWTH): string | undefined {
  const flag = heapGrowthFlag(percent)
  if (flag === undefined || userSetHeapGrowth()) return undefined
  setFlagsFromString(flag)
  return flag
}

/**
 * Options of the model mode, their defaults and validation, and the fault specs
 * (`kill:3@20%`, `partition:50%@10s..40s`, …) the command line passes as strings.
 */
import { millisecond, second } from '../../node/constants.js'
import { ConfigError } from '../../node/errors.js'
import { DEFAULT_VNODES } from '../../node/ring.js'
import { DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_SILENCE_TIMEOUT, DISCONNECT_GRACE } from '../../node/membership.js'
import { DEFAULT_ACK_TIMEOUT, DEFAULT_FLUSH_DELAY, DEFAULT_MAX_BATCH_LINKS, DEFAULT_WINDOW } from '../../protocols/links/constants.js'
import { DEFAULT_MAX_BATCH_OPS } from '../../protocols/meta/constants.js'
import { seedToInt } from '../web/prng.js'

/**
 * Fixes of bugs the model found in node/daemon.ts, modelled so their effect can be measured before
 * the daemon has them (see sim/model/index.ts). Off by default: the model follows the daemon as it is.
 *
 * - `handoff-hold`: a host that moved here from a live peer waits for its hand-off (or 10 s) from
 *   the change that moved it, whatever changes follow (the daemon compares with the last ring only);
 * - `replicate-handed-records`: records an owner receives by hand-off go on to its replicas;
 * - `rebalance-flapping`: a peer that left during a rebalance pass counts as a gained replica in the
 *   next pass, even if it is back by then (the daemon coalesces the changes into one);
 * - `reroute-on-leave`: links batches in flight to a peer that leaves the ring fail at once and are
 *   re-routed (the transport waits for the 30 s ack timeout, while membership drops a silent peer
 *   after 10 s: meanwhile the pages wait in the processor loops and the fetch loops stop).
 */
export type ProtocolFix = 'handoff-hold' | 'replicate-handed-records' | 'rebalance-flapping' | 'reroute-on-leave'
export const PROTOCOL_FIXES: readonly ProtocolFix[] = ['handoff-hold', 'replicate-handed-records', 'rebalance-flapping', 'reroute-on-leave']

export type FaultKind = 'kill' | 'restart' | 'join' | 'pause' | 'partition' | 'rolling-restart' | 'mass-kill'
export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'restart', 'join', 'pause', 'partition', 'rolling-restart', 'mass-kill']

/** A moment of the crawl: a virtual time, or the share of the expected pages fetched so far. */
export type FaultTime = { ms: number } | { share: number }
/** The end of a fault that lasts (restart, pause, partition): a moment, or a time after its start. */
export type FaultEnd = FaultTime | { afterMs: number }

export interface ModelFault {
  kind: FaultKind
  /** Peers it hits: a number of peers (kill, restart, pause; new peers for join). */
  count?: number
  /** Peers it hits as a share of the live peers (mass-kill; partition: the share cut off; rolling-restart: one wave). */
  share?: number
  /** The peers it hits, by index (0 … peers − 1), as the real mode's `--kill K@T` names them; partition: the side cut off. */
  peers?: number[]
  at: FaultTime
  /** restart: back up; pause: resumed; partition: healed. Defaults in `DEFAULT_FAULT_LENGTH`. */
  until?: FaultEnd
}

/** How long a fault lasts when its spec gives no end. */
export const DEFAULT_FAULT_LENGTH: Record<'restart' | 'pause' | 'partition', number> = {
  restart: 5 * second,
  pause: 20 * second,
  partition: 30 * second
}

export interface ModelOptions {
  /** Peers at the start. @default 50 */
  peers?: number
  /** Hosts of the simulated web. @default pages / 100 */
  hosts?: number
  /** Pages of the simulated web. @default 50_000 */
  pages?: number
  /** Same seed and options → byte-identical report. @default 1 */
  seed?: number | string
  /** Copies of every host's state (owner + r − 1). @default 2 (the daemon's DEFAULT_REPLICAS) */
  replicas?: number
  /** Mean links a page, ±20 %. @default 12 */
  linksPerPage?: number
  /** Share of a page's links that point to another host. @default 0.1 */
  crossHostLinks?: number
  /** Hosts whose root page is a seed. @default ceil(hosts / 10) */
  seedHosts?: number
  /** Share of pages that answer 404 (fetched, no links). @default 0.01 */
  brokenPages?: number
  /** Share of pages whose first request fails with a 503 (retried by the same peer). @default 0.005 */
  transientPages?: number
  /** One-way network latency per message, ms: a number, or a [min, max] range drawn uniformly. @default [2, 20] */
  latency?: number | [number, number]
  /** Probability that a message is lost: it arrives after the ack timeout (the sender re-sends). @default 0 */
  loss?: number
  /** Time of one page request, ms, [min, max] drawn uniformly. @default [50, 250] */
  fetchTime?: number | [number, number]
  /** Per-host delay between requests, ms (one connection per host). @default 1000 */
  delay?: number
  /** Fetch loops (and processor loops) per peer. @default 64 */
  concurrency?: number
  /** Mean body size of a page, bytes ±20 %: what block replication carries. @default 5120 */
  bodyBytes?: number
  vnodes?: number
  heartbeatInterval?: number
  silenceTimeout?: number
  /** Time from a process start to its first heartbeat heard, ms. @default 1000 */
  startupMs?: number
  ackTimeout?: number
  /** Faults, as objects or as specs (`kill:3@20%`, `mass-kill:20%@30s`, `partition:50%@10s..40s`, `rolling-restart@20%`). */
  faults?: Array<ModelFault | string>
  /** Stop (and fail the `quiescent` invariant) past this virtual time, ms. @default 6 hours */
  maxVirtualMs?: number
  /** Model these fixes of node/daemon.ts. @default none */
  fixes?: ProtocolFix[]
}

export interface ResolvedOptions {
  peers: number
  hosts: number
  pages: number
  seed: number
  replicas: number
  linksPerPage: number
  crossHostLinks: number
  seedHosts: number
  brokenPages: number
  transientPages: number
  latency: [number, number]
  loss: number
  fetchTime: [number, number]
  delay: number
  concurrency: number
  bodyBytes: number
  vnodes: number
  heartbeatInterval: number
  silenceTimeout: number
  disconnectGrace: number
  startupMs: number
  ackTimeout: number
  flushDelay: number
  maxBatchLinks: number
  maxBatchOps: number
  window: number
  faults: ModelFault[]
  maxVirtualMs: number
  fixes: Set<ProtocolFix>
}

const hour = 3600 * second

function int (name: string, v: number | undefined, def: number, min: number, max: number): number {
  const x = v ?? def
  if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${String(v)}`)
  return x
}

function num (name: string, v: number | undefined, def: number, min: number, max: number): number {
  const x = v ?? def
  if (typeof x !== 'number' || !Number.isFinite(x) || x < min || x > max) throw new ConfigError(`${name} must be a number from ${min} to ${max}, got ${String(v)}`)
  return x
}

function range (name: string, v: number | [number, number] | undefined, def: [number, number], max: number): [number, number] {
  const x = v ?? def
  const [lo, hi] = typeof x === 'number' ? [x, x] : x
  if (!Array.isArray(x) && typeof x !== 'number') throw new ConfigError(`${name} must be a number or a [min, max] pair of milliseconds, got ${String(v)}`)
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo >= 0 && hi >= lo && hi <= max)) {
    throw new ConfigError(`${name} must be a number or a [min, max] pair of milliseconds with 0 ≤ min ≤ max ≤ ${max}, got ${JSON.stringify(v)}`)
  }
  return [lo, hi]
}

export function resolveOptions (init: ModelOptions = {}): ResolvedOptions {
  const pages = int('pages', init.pages, 50_000, 1, 50_000_000)
  const hosts = int('hosts', init.hosts, Math.max(1, Math.floor(pages / 100)), 1, pages)
  const heartbeatInterval = num('heartbeatInterval', init.heartbeatInterval, DEFAULT_HEARTBEAT_INTERVAL, 1, hour)
  const silenceTimeout = num('silenceTimeout', init.silenceTimeout, DEFAULT_SILENCE_TIMEOUT, 1, hour)
  if (silenceTimeout <= heartbeatInterval) throw new ConfigError(`silenceTimeout (${silenceTimeout} ms) must be longer than heartbeatInterval (${heartbeatInterval} ms)`)
  const faults = (init.faults ?? []).map(f => typeof f === 'string' ? parseFault(f) : checkFault(f))
  const peers = int('peers', init.peers, 50, 1, 100_000)
  for (const f of faults) {
    const out = f.peers?.find(x => x >= peers)
    if (out !== undefined) throw new ConfigError(`${formatFault(f)}: there is no peer ${out} (peers are 0 to ${peers - 1})`)
  }
  return {
    peers,
    hosts,
    pages,
    seed: seedToInt(init.seed ?? 1),
    replicas: int('replicas', init.replicas, 2, 1, 16),
    linksPerPage: int('linksPerPage', init.linksPerPage, 12, 0, 1000),
    crossHostLinks: num('crossHostLinks', init.crossHostLinks, 0.1, 0, 1),
    seedHosts: int('seedHosts', init.seedHosts, Math.ceil(hosts / 10), 1, hosts),
    brokenPages: num('brokenPages', init.brokenPages, 0.01, 0, 1),
    transientPages: num('transientPages', init.transientPages, 0.005, 0, 1),
    latency: range('latency', init.latency, [2, 20], 60 * second),
    loss: num('loss', init.loss, 0, 0, 0.5),
    fetchTime: range('fetchTime', init.fetchTime, [50, 250], 10 * 60 * second),
    delay: num('delay', init.delay, 1 * second, 0, hour),
    concurrency: int('concurrency', init.concurrency, 64, 1, 100_000),
    bodyBytes: int('bodyBytes', init.bodyBytes, 5 * 1024, 0, 100 * 1024 * 1024),
    vnodes: int('vnodes', init.vnodes, DEFAULT_VNODES, 1, 4096),
    heartbeatInterval,
    silenceTimeout,
    disconnectGrace: DISCONNECT_GRACE,
    startupMs: num('startupMs', init.startupMs, 1 * second, 0, hour),
    ackTimeout: num('ackTimeout', init.ackTimeout, DEFAULT_ACK_TIMEOUT, 1, hour),
    flushDelay: DEFAULT_FLUSH_DELAY * millisecond,
    maxBatchLinks: DEFAULT_MAX_BATCH_LINKS,
    maxBatchOps: DEFAULT_MAX_BATCH_OPS,
    window: DEFAULT_WINDOW,
    faults,
    maxVirtualMs: num('maxVirtualMs', init.maxVirtualMs, 6 * hour, 1, 1000 * hour),
    fixes: new Set((init.fixes ?? []).map(f => {
      if (!PROTOCOL_FIXES.includes(f)) throw new ConfigError(`fixes must be some of ${PROTOCOL_FIXES.join(', ')}, got ${String(f)}`)
      return f
    }))
  }
}

function checkTime (what: string, t: FaultTime): FaultTime {
  if ('ms' in t) {
    if (!(Number.isFinite(t.ms) && t.ms >= 0)) throw new ConfigError(`${what} must be a time ≥ 0, got ${t.ms} ms`)
  } else if (!('share' in t) || !(t.share >= 0 && t.share <= 1)) {
    throw new ConfigError(`${what} must be { ms } or { share } with a share from 0 to 1, got ${JSON.stringify(t)}`)
  }
  return t
}

function checkFault (f: ModelFault): ModelFault {
  if (!FAULT_KINDS.includes(f.kind)) throw new ConfigError(`fault kind must be one of ${FAULT_KINDS.join(', ')}, got ${String(f.kind)}`)
  checkTime(`${f.kind}: at`, f.at)
  if (f.count !== undefined && !(Number.isInteger(f.count) && f.count >= 1)) throw new ConfigError(`${f.kind}: count must be a positive integer, got ${f.count}`)
  if (f.share !== undefined && !(f.share > 0 && f.share < 1)) throw new ConfigError(`${f.kind}: share must be between 0 and 1 (exclusive), got ${f.share}`)
  if (f.peers !== undefined) {
    if (f.kind === 'join' || f.kind === 'rolling-restart') throw new ConfigError(`${f.kind} takes no peer indexes`)
    if (f.peers.length === 0 || f.peers.some(x => !Number.isInteger(x) || x < 0) || new Set(f.peers).size !== f.peers.length) throw new ConfigError(`${f.kind}: peers must be distinct peer indexes, got ${JSON.stringify(f.peers)}`)
  }
  if (f.until !== undefined) {
    if (f.kind !== 'restart' && f.kind !== 'pause' && f.kind !== 'partition') throw new ConfigError(`${f.kind} takes no end (only restart, pause and partition do)`)
    if (f.kind === 'pause' && 'share' in f.until) throw new ConfigError('pause: the end must be a time (..45s or ..+20s), not a share of the pages')
    if ('afterMs' in f.until) {
      if (!(Number.isFinite(f.until.afterMs) && f.until.afterMs > 0)) throw new ConfigError(`${f.kind}: the length after its start must be > 0 ms, got ${f.until.afterMs}`)
    } else {
      checkTime(`${f.kind}: until`, f.until)
    }
  }
  return f
}

const TIME = /^(\d+(?:\.\d+)?)(ms|s|m|%)?$/

function parseTime (spec: string, s: string): FaultTime {
  const m = TIME.exec(s)
  if (m == null) throw new ConfigError(`fault "${spec}": "${s}" is not a time (30s, 500ms, 2m) or a share of the pages (20%)`)
  const v = Number(m[1])
  switch (m[2]) {
    case '%': return { share: v / 100 }
    case 'ms': return { ms: v }
    case 'm': return { ms: v * 60 * second }
    default: return { ms: v * second }
  }
}

/**
 * A fault from its spec: `KIND[:AMOUNT]@START[..END]`.
 *
 * - KIND: kill, restart, join, pause, partition, rolling-restart, mass-kill
 * - AMOUNT: a number of peers (`kill:3`), a share of the live peers (`mass-kill:20%`), or peers by
 *   index as the real mode names them (`kill:#2`, `partition:#0,1,2`); for join the number of new
 *   peers; for partition the share cut off (default 50%); for rolling-restart the share restarted at
 *   once (default 5%).
 * - START: a virtual time (`30s`, `500ms`, `2m`; a bare number is seconds) or the share of the
 *   expected pages fetched so far (`20%`).
 * - END (restart, pause, partition): when it is back, resumed or healed: a time or share as for
 *   START, or `+5s` after the start.
 *
 * Examples: `kill:3@20%`, `mass-kill:20%@30s`, `partition:50%@10s..40s`, `rolling-restart@20%`,
 * `restart:2@20%..+8s`, `join:5@30%`, `pause@10s..+25s`.
 */
export function parseFault (spec: string): ModelFault {
  const text = spec.trim()
  const at = text.indexOf('@')
  const head = at === -1 ? '' : text.slice(0, at)
  const when = at === -1 ? '' : text.slice(at + 1)
  const hm = /^([a-z-]+)(?::(.+))?$/.exec(head)
  const [start, end, extra] = when.split('..')
  if (hm == null || start === undefined || start === '' || extra !== undefined || end === '') {
    throw new ConfigError(`fault "${spec}" must look like KIND[:AMOUNT]@START[..END], e.g. kill:3@20% or partition:50%@10s..40s`)
  }
  const kind = hm[1] as FaultKind
  if (!FAULT_KINDS.includes(kind)) throw new ConfigError(`fault "${spec}": kind must be one of ${FAULT_KINDS.join(', ')}`)
  const f: ModelFault = { kind, at: parseTime(spec, start) }
  const a = hm[2]
  if (a !== undefined) {
    if (a.startsWith('#')) {
      const list = a.slice(1).split(',')
      if (list.some(x => !/^\d{1,6}$/.test(x))) throw new ConfigError(`fault "${spec}": peers by index look like #2 or #0,1,2, got "${a}"`)
      f.peers = list.map(Number)
    } else if (a.endsWith('%')) {
      const v = Number(a.slice(0, -1))
      if (!(v > 0 && v < 100)) throw new ConfigError(`fault "${spec}": a share of peers must be between 0% and 100%, got ${a}`)
      f.share = v / 100
    } else {
      if (!/^\d+$/.test(a) || Number(a) < 1) throw new ConfigError(`fault "${spec}": the amount must be a positive number of peers or a share (20%), got "${a}"`)
      f.count = Number(a)
    }
  }
  if (end !== undefined) {
    const e = end
    if (e.startsWith('+')) {
      const t = parseTime(spec, e.slice(1))
      if (!('ms' in t)) throw new ConfigError(`fault "${spec}": a relative end must be a time (+5s), got ${e}`)
      f.until = { afterMs: t.ms }
    } else {
      f.until = parseTime(spec, e)
    }
  }
  return checkFault(f)
}

function timeText (t: FaultTime): string {
  return 'share' in t ? `${+(t.share * 100).toFixed(4)}%` : `${+(t.ms / 1000).toFixed(3)}s`
}

/** The canonical spec of a fault (what the report lists). */
export function formatFault (f: ModelFault): string {
  let s: string = f.kind
  if (f.peers !== undefined) s += `:#${f.peers.join(',')}`
  else if (f.count !== undefined) s += `:${f.count}`
  else if (f.share !== undefined) s += `:${+(f.share * 100).toFixed(4)}%`
  s += '@' + timeText(f.at)
  if (f.until !== undefined) s += '..' + ('afterMs' in f.until ? `+${+(f.until.afterMs / 1000).toFixed(3)}s` : timeText(f.until))
  return s
}

/**
 * The simulator's fault schedule: what `--kill K@T`, `--restart K@T`, `--join K@T`, `--pause K@T[..T]`
 * and `--partition A|B@T[..T]` mean, parsed and checked before any peer starts.
 *
 * K is a peer's index (peers 0 … N−1 start with the run; a joiner takes a new index ≥ N). T is either
 * seconds since the seeds were given (`12s`, `12`, `1.5s`) or a share of the ground truth fetched
 * (`30%`): the fault fires once the web has served that share of its expected pages. The end of a
 * pause or partition is one of those too, or a duration after its start (`1@20%..+8s`).
 */
import { ConfigError } from '../node/errors.js'

export type FaultKind = 'kill' | 'restart' | 'join' | 'pause' | 'partition'

/** When a fault fires (or ends); `after`: seconds after the fault fired (an end written `+8s`). */
export type When = { seconds: number } | { share: number } | { after: number }

export interface Fault {
  kind: FaultKind
  /** The flag as given, e.g. `kill 2@30%`: the fault's name in reports. */
  spec: string
  /** The peer (kill, restart, join, pause) or side A of a partition. */
  peers: number[]
  /** Side B of a partition: the given peers, or every other peer when left out. */
  others?: number[]
  at: When
  /** When a pause or partition ends; undefined: the default duration from the run's settings. */
  until?: When
}

export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'restart', 'join', 'pause', 'partition']

export function parseWhen (text: string, what: string): When {
  const t = text.trim()
  if (t.startsWith('+')) {
    const w = parseWhen(t.slice(1), what)
    if (!('seconds' in w)) throw new ConfigError(`${what}: a duration after the start is in seconds (e.g. +8s), got "${text}"`)
    return { after: w.seconds }
  }
  let m = /^(\d+(?:\.\d+)?)%$/.exec(t)
  if (m != null) {
    const share = Number(m[1]) / 100
    if (share > 1) throw new ConfigError(`${what}: a share of pages fetched must be at most 100%, got "${text}"`)
    return { share }
  }
  m = /^(\d+(?:\.\d+)?)(s|ms)?$/.exec(t)
  if (m != null) return { seconds: m[2] === 'ms' ? Number(m[1]) / 1000 : Number(m[1]) }
  throw new ConfigError(`${what}: expected a time in seconds (e.g. 12s) or a share of pages fetched (e.g. 30%), got "${text}"`)
}

function peerList (text: string, what: string): number[] {
  const parts = text.split(',').map(s => s.trim())
  if (parts.some(p => !/^\d{1,4}$/.test(p))) throw new ConfigError(`${what}: expected peer indexes like 2 or 0,1, got "${text}"`)
  const list = parts.map(Number)
  if (new Set(list).size !== list.length) throw new ConfigError(`${what}: a peer is named twice in "${text}"`)
  return list
}

/** One fault flag's value, e.g. kind 'kill' and `2@30%`. */
export function parseFault (kind: FaultKind, value: string): Fault {
  const spec = `${kind} ${value}`
  const what = `--${kind} ${value}`
  const at = value.lastIndexOf('@')
  if (at < 0) {
    const form = kind === 'partition' ? 'A|B@T[..T] (e.g. 0,1|2,3@20%..60%)' : kind === 'pause' ? 'K@T[..T] (e.g. 1@20%..40%)' : 'K@T (e.g. 2@30% or 2@10s)'
    throw new ConfigError(`${what}: expected ${form}`)
  }
  const who = value.slice(0, at)
  const [from, to, ...rest] = value.slice(at + 1).split('..')
  if (rest.length > 0) throw new ConfigError(`${what}: one "..", between the start and the end`)
  if (to !== undefined && kind !== 'pause' && kind !== 'partition') throw new ConfigError(`${what}: only --pause and --partition take an end (T..T)`)
  const fault: Fault = { kind, spec, peers: [], at: parseWhen(from, what) }
  if ('after' in fault.at) throw new ConfigError(`${what}: a fault starts at a time or a share, not at "+…" (that is for its end)`)
  if (to !== undefined) {
    fault.until = parseWhen(to, what)
    if (!endsAfter(fault.at, fault.until)) throw new ConfigError(`${what}: the end must come after the start`)
  }
  if (kind === 'partition') {
    const [a, b, ...more] = who.split('|')
    if (more.length > 0 || a === undefined || a === '') throw new ConfigError(`${what}: expected sides like 0,1|2,3 (or 0,1 for 0,1 against the rest)`)
    fault.peers = peerList(a, what)
    if (b !== undefined) {
      fault.others = peerList(b, what)
      if (fault.others.some(p => fault.peers.includes(p))) throw new ConfigError(`${what}: a peer is on both sides`)
    }
  } else {
    fault.peers = peerList(who, what)
    if (fault.peers.length !== 1) throw new ConfigError(`${what}: one peer per --${kind} (repeat the flag for more)`)
  }
  return fault
}

function endsAfter (a: When, b: When): boolean {
  if ('after' in b) return b.after > 0
  if ('seconds' in a && 'seconds' in b) return b.seconds > a.seconds
  if ('share' in a && 'share' in b) return b.share > a.share
  return true // mixed units: checked as the run goes
}

/**
 * Check a schedule against the run's peers, in firing order as far as it can be known: a kill or pause
 * of a peer that exists, a join of a new index, a restart of a known peer, partitions of live peers.
 */
export function checkFaults (faults: Fault[], peers: number): void {
  const known = new Set(Array.from({ length: peers }, (_, i) => i))
  for (const f of faults) if (f.kind === 'join') {
    const k = f.peers[0]
    if (k < peers) throw new ConfigError(`--join ${f.spec.slice(5)}: peer ${k} already runs from the start (peers 0–${peers - 1}); a joiner takes a new index, e.g. ${peers}`)
    if (known.has(k)) throw new ConfigError(`--join ${f.spec.slice(5)}: peer ${k} joins twice`)
    known.add(k)
  }
  for (const f of faults) {
    if (f.kind === 'join') continue
    for (const k of [...f.peers, ...(f.others ?? [])]) {
      if (!known.has(k)) throw new ConfigError(`--${f.kind} ${f.spec.slice(f.kind.length + 1)}: there is no peer ${k} (peers 0–${peers - 1}${known.size > peers ? ` and joiners ${[...known].filter(x => x >= peers).join(', ')}` : ''})`)
    }
  }
}

/** A When in words, for reports: "30 %" or "12 s". */
export function describeWhen (w: When): string {
  return 'share' in w ? `${Math.round(w.share * 1000) / 10} %` : 'after' in w ? `${w.after} s after the start` : `${w.seconds} s`
}

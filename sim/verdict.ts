/**
 * The simulator's judgement of a crawl from the outside: the web's request log (who asked for what,
 * when) against the faults staged during the run. Pure functions, so they are tested on hand-made logs.
 *
 * A fault excuses what it must, and nothing more:
 * - a **kill** excuses pages the killed peer had in flight: a URL it asked for in the `inflight` ms
 *   before the kill (fetched, but its record maybe not yet durable and replicated) may be asked again;
 * - a **pause** (SIGSTOP … SIGCONT) excuses the same for the paused peer at the stop, and, after the
 *   resume, the hand-off back to it;
 * - a **join** or **restart** excuses what was in flight during the hand-off: from the fault until
 *   every peer's ring has settled, plus `handoff` ms (two heartbeats of settling, then the transfer);
 * - a **partition** excuses everything while the two sides disagree on who owns what, until the
 *   healed ring has settled: reported apart, as `duringPartition`.
 * Any other repeated request of a URL (after a final answer: not a 5xx or 429, which are retried) is a
 * duplicate fetch, and any two requests to one host closer than the politeness delay allows, outside
 * those windows, a politeness violation.
 */

/** One request the web answered. */
export interface LoggedRequest {
  /** Arrival, ms since the epoch. */
  at: number
  host: number
  /** Path and query. */
  target: string
  /** Short peer id from the User-Agent (`…(peer <id>; …)`), or the whole User-Agent. */
  peer: string
  status: number
  /** The web failed it on purpose, to be retried (a transient 5xx/429 or a stall). */
  transient?: boolean
}

/** A span of time in which some repeats (or overlaps) are excused, and why. */
export interface FaultWindow {
  /** The fault's name, e.g. `kill 2@30%`. */
  spec: string
  /** The faulted peer's short id, when only its own requests are excused; undefined: any peer's. */
  peer?: string
  from: number
  to: number
  /** Partition windows are reported apart from the others. */
  partition?: boolean
}

export interface DuplicateVerdict {
  /** Requests of a URL after its first final answer, summed over URLs. */
  total: number
  /** Of those, excused by a kill, pause, join or restart (in flight at the fault or the hand-off). */
  atFault: number
  /** Of those, excused by a partition. */
  duringPartition: number
  /** The rest: each one breaks the no-duplicate invariant. */
  unexplained: number
  byFault: Record<string, number>
  /** A few unexplained ones: `URL (peer a at t, then peer b at t')`. */
  examples: string[]
}

export interface PolitenessVerdict {
  /** Requests to a host that came sooner than the delay allows after the request `hostConcurrency` before it. */
  violations: number
  /** Of those, inside a fault window (two peers briefly both owning the host during a hand-off). */
  excused: number
  unexplained: number
  examples: string[]
}

/** A response the crawler retries rather than records: server errors, 429, and none at all (0: the server stalled). */
export function isRetryable (status: number): boolean {
  return status >= 500 || status === 429 || status === 0
}

const fmt = (t: number, t0: number): string => `${((t - t0) / 1000).toFixed(2)}s`

function windowFor (windows: FaultWindow[], r: LoggedRequest): FaultWindow | undefined {
  return windows.find(w => r.at >= w.from && r.at <= w.to && (w.peer === undefined || w.peer === r.peer))
}

/** Group requests by URL (host + target), robots.txt left out, in arrival order. */
function byUrl (log: readonly LoggedRequest[]): Map<string, LoggedRequest[]> {
  const urls = new Map<string, LoggedRequest[]>()
  for (const r of log) {
    if (r.target === '/robots.txt') continue
    const key = `${r.host} ${r.target}`
    const list = urls.get(key)
    if (list === undefined) urls.set(key, [r])
    else list.push(r)
  }
  for (const list of urls.values()) list.sort((a, b) => a.at - b.at)
  return urls
}

export function judgeDuplicates (log: readonly LoggedRequest[], windows: FaultWindow[], origins: readonly string[] = [], t0 = 0): DuplicateVerdict {
  const v: DuplicateVerdict = { total: 0, atFault: 0, duringPartition: 0, unexplained: 0, byFault: {}, examples: [] }
  for (const list of byUrl(log).values()) {
    const first = list.findIndex(r => r.transient !== true && !isRetryable(r.status))
    if (first < 0) continue
    const f = list[first]
    for (const r of list.slice(first + 1)) {
      v.total++
      const w = windowFor(windows, f) ?? windowFor(windows, r)
      if (w === undefined) {
        v.unexplained++
        if (v.examples.length < 10) v.examples.push(`${origins[f.host] ?? `host ${f.host}`}${f.target} (peer ${f.peer} at ${fmt(f.at, t0)}, then peer ${r.peer} at ${fmt(r.at, t0)})`)
        continue
      }
      if (w.partition === true) v.duringPartition++
      else v.atFault++
      v.byFault[w.spec] = (v.byFault[w.spec] ?? 0) + 1
    }
  }
  return v
}

/**
 * With a per-host `delay` (ms, from the end of one request to the start of the next) and
 * `hostConcurrency` connections per host, request i + c to a host cannot arrive sooner than `delay`
 * after request i. `tolerance` absorbs timer jitter. No delay: nothing to check from arrival times.
 */
export function judgePoliteness (log: readonly LoggedRequest[], delay: number, hostConcurrency: number, windows: FaultWindow[], origins: readonly string[] = [], t0 = 0, tolerance = 0.9): PolitenessVerdict {
  const v: PolitenessVerdict = { violations: 0, excused: 0, unexplained: 0, examples: [] }
  if (!(delay > 0)) return v
  const hosts = new Map<number, LoggedRequest[]>()
  for (const r of log) {
    if (r.target === '/robots.txt') continue
    const list = hosts.get(r.host)
    if (list === undefined) hosts.set(r.host, [r])
    else list.push(r)
  }
  for (const list of hosts.values()) {
    list.sort((a, b) => a.at - b.at)
    for (let i = hostConcurrency; i < list.length; i++) {
      const a = list[i - hostConcurrency]
      const b = list[i]
      if (b.at - a.at >= delay * tolerance) continue
      v.violations++
      if (windows.some(w => b.at >= w.from && b.at <= w.to)) {
        v.excused++
        continue
      }
      v.unexplained++
      if (v.examples.length < 10) v.examples.push(`${origins[b.host] ?? `host ${b.host}`}: ${a.target} by ${a.peer} at ${fmt(a.at, t0)}, ${b.target} by ${b.peer} ${b.at - a.at} ms later`)
    }
  }
  return v
}

/** The short peer id a User-Agent names: `shoal/x (peer <id>; +contact)`. */
export function peerOfUserAgent (ua: string): string {
  return /\(peer ([^;)]+)[;)]/.exec(ua)?.[1] ?? ua
}

/**
 * What the synthetic web saw: requests per URL, per User-Agent, per status, with arrival times.
 * Counting is on the hot path of every request, so it is a few map updates and no allocation per
 * request beyond the first for a URL; a full log is kept only when asked for.
 */

/** Counters of one URL (one request-target on one host). */
export interface UrlCounter {
  /** Requests received, any method, any outcome. */
  count: number
  /** Arrival time of the first and the last request, ms since the epoch. */
  firstAt: number
  lastAt: number
  /** Status of the last response. */
  status: number
}

/** One request, in the full log (`log: true`). */
export interface RequestLogEntry {
  /** Arrival, ms since the epoch. */
  at: number
  host: number
  method: string
  /** The request-target as sent: path and query. */
  target: string
  userAgent: string
  status: number
  bytes: number
}

export class RequestCounters {
  /** Per host: request-target → counter. */
  readonly urls: Array<Map<string, UrlCounter>>
  readonly byUserAgent = new Map<string, number>()
  readonly byStatus = new Map<number, number>()
  readonly byMethod = new Map<string, number>()
  /** Requests per `bucketMs`, from the first request on. */
  readonly timeline: number[] = []
  readonly log: RequestLogEntry[] | undefined
  requests = 0
  /** TCP connections accepted (keep-alive reuse shows as requests ≫ connections). */
  connections = 0
  /** Body bytes sent. */
  bytes = 0
  firstAt = 0
  lastAt = 0

  constructor (hosts: number, readonly bucketMs: number, log: boolean) {
    this.urls = Array.from({ length: hosts }, () => new Map())
    this.log = log ? [] : undefined
  }

  record (host: number, method: string, target: string, userAgent: string, status: number, bytes: number, at: number): void {
    this.requests++
    this.bytes += bytes
    if (this.firstAt === 0) this.firstAt = at
    this.lastAt = at
    const bucket = Math.floor((at - this.firstAt) / this.bucketMs)
    while (this.timeline.length <= bucket) this.timeline.push(0)
    this.timeline[bucket]++
    const urls = this.urls[host]
    const c = urls.get(target)
    if (c === undefined) urls.set(target, { count: 1, firstAt: at, lastAt: at, status })
    else { c.count++; c.lastAt = at; c.status = status }
    this.byUserAgent.set(userAgent, (this.byUserAgent.get(userAgent) ?? 0) + 1)
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1)
    this.byMethod.set(method, (this.byMethod.get(method) ?? 0) + 1)
    this.log?.push({ at, host, method, target, userAgent, status, bytes })
  }

  /** Requests beyond the first, summed over every URL. */
  duplicates (): number {
    let d = 0
    for (const urls of this.urls) for (const c of urls.values()) d += c.count - 1
    return d
  }
}

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
  /** Status of the last response (0: none was sent, the request stalled). */
  status: number
  /**
   * Requests answered with a deliberate, retryable failure (a flaky URL's 500/503/429, a stall):
   * the crawler is right to ask again, so these are retries, not duplicates.
   */
  transient: number
  /**
   * Which request (1 for the first) got the first complete answer that was not a deliberate
   * failure; 0 while none has. Every request after it is a duplicate fetch.
   */
  served: number
  /** Answers that were not deliberate failures but that the client gave up on before their end (its timeout). */
  aborted: number
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
  /** A deliberate, retryable failure (see `UrlCounter.transient`). */
  transient: boolean
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

  /** `hosts` counts every server: the site's hosts, then any offsite ones. */
  constructor (hosts: number, readonly bucketMs: number, log: boolean) {
    this.urls = Array.from({ length: hosts }, () => new Map())
    this.log = log ? [] : undefined
  }

  /** Requests for `target` on `host` so far. */
  count (host: number, target: string): number {
    return this.urls[host].get(target)?.count ?? 0
  }

  record (host: number, method: string, target: string, userAgent: string, status: number, bytes: number, at: number, transient = false): void {
    this.requests++
    this.bytes += bytes
    if (this.firstAt === 0) this.firstAt = at
    this.lastAt = at
    const bucket = Math.floor((at - this.firstAt) / this.bucketMs)
    while (this.timeline.length <= bucket) this.timeline.push(0)
    this.timeline[bucket]++
    const urls = this.urls[host]
    const c = urls.get(target)
    const t = transient ? 1 : 0
    if (c === undefined) urls.set(target, { count: 1, firstAt: at, lastAt: at, status, transient: t, served: 0, aborted: 0 })
    else { c.count++; c.lastAt = at; c.status = status; c.transient += t }
    this.byUserAgent.set(userAgent, (this.byUserAgent.get(userAgent) ?? 0) + 1)
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1)
    this.byMethod.set(method, (this.byMethod.get(method) ?? 0) + 1)
    this.log?.push({ at, host, method, target, userAgent, status, bytes, transient })
  }

  /** The answer to request number `ordinal` of a URL was sent in full (and was no deliberate failure). */
  served (host: number, target: string, ordinal: number): void {
    const c = this.urls[host].get(target)
    if (c !== undefined && (c.served === 0 || ordinal < c.served)) c.served = ordinal
  }

  /** The client closed the connection before the answer (no deliberate failure) was complete. */
  aborted (host: number, target: string): void {
    const c = this.urls[host].get(target)
    if (c !== undefined) c.aborted++
  }

  /**
   * Requests of a URL after the first complete answer that was not a deliberate failure, summed
   * over the first `hosts` servers' URLs: fetching again what was already served. Retries after a
   * deliberate failure, or after the client gave up on an answer, are not counted.
   */
  duplicates (hosts = this.urls.length): number {
    let d = 0
    for (let h = 0; h < hosts; h++) for (const c of this.urls[h].values()) if (c.served > 0) d += c.count - c.served
    return d
  }

  /** Requests that followed a deliberate failure of the same URL, summed over the first `hosts` servers' URLs. */
  retries (hosts = this.urls.length): number {
    let r = 0
    for (let h = 0; h < hosts; h++) for (const c of this.urls[h].values()) r += Math.min(c.count - 1, c.transient)
    return r
  }
}

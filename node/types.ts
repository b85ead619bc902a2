/**
 * The small interfaces the actors are written against, so that the simulator can drive the very
 * same code with a virtual clock, a simulated network and a simulated web.
 */

/** Time. The real one is `systemClock`; the simulator supplies a virtual one. */
export interface Clock {
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    return t
  },
  clearTimeout: (h) => { clearTimeout(h as NodeJS.Timeout) }
}

/** One discovered URL on its way to the frontier of its owner. */
export interface Link {
  /** Normalized absolute URL. */
  url: string
  /** Hops from a seed: 0 for a seed. */
  depth: number
  /** The page it was found on, if any. */
  referrer?: string
  /** Redirect hops that led here (0 for a link found in a page). */
  redirects?: number
}

/** What the parser found in one page. */
export interface ParsedPage {
  /** Absolute, normalized link targets, in document order, de-duplicated. */
  links: string[]
  /** Meta robots / X-Robots-Tag noindex. */
  noindex: boolean
  /** Meta robots nofollow (then `links` holds no followed links). */
  nofollow: boolean
  /** User-defined fields (CSS selectors → values), when extraction is configured. */
  fields?: Record<string, string | string[]>
  /**
   * Set when the parse pool dropped links its thread had handed on recently (`RepeatFilter`):
   * the page's distinct links before that, and how many were dropped.
   */
  linkCount?: number
  repeats?: number
}

export type RecordStatus =
  | 'fetched' // 2xx, body stored
  | 'not-modified' // 304 on a conditional re-crawl, earlier body kept
  | 'redirect' // 3xx, target in redirectTo (enqueued as a new URL)
  | 'http-error' // 4xx/5xx after retries
  | 'failed' // no usable response: timeout, reset, body too large, decoding error…
  | 'blocked' // robots.txt disallows it: never requested

/** The metadata store's record of one URL. */
export interface UrlRecord {
  url: string
  status: RecordStatus
  httpStatus?: number
  fetchedAt: number
  cid?: string
  contentType?: string
  /** Stored body size in bytes (decoded, i.e. after Content-Encoding). */
  size?: number
  etag?: string
  lastModified?: string
  depth: number
  referrer?: string
  redirectTo?: string
  error?: string
  /** How many requests this URL cost, retries included. */
  attempts?: number
  /** Links found on the page. */
  links?: number
  noindex?: boolean
  fields?: Record<string, string | string[]>
}

/** A response as the fetcher's HTTP client hands it over: status, headers, raw (still encoded) body. */
export interface HttpResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: AsyncIterable<Uint8Array>
  /** Release the connection without reading further. */
  dump(): Promise<void>
}

export interface HttpRequest {
  url: string
  headers: Record<string, string>
  signal: AbortSignal
}

/** The network as the fetcher sees it. The real one is undici; the simulator supplies a synthetic web. */
export interface HttpClient {
  request(req: HttpRequest): Promise<HttpResponse>
  close(): Promise<void>
}

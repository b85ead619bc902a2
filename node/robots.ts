import debug from 'debug'
import type { Store } from './db.js'
import type { Fetcher } from './fetcher.js'
import type { RobotsSource } from './frontier.js'
import { allowAll, disallowAll, parseRobotsTxt, type RobotsRules } from './robots-txt.js'
import type { Clock } from './types.js'
import { systemClock } from './types.js'
import * as C from './constants.js'
import { AbortError } from './errors.js'

const log = debug('shoal:robots')

/** What is kept on disk per host (`robots` sublevel): the text, so rules are re-parsed on load. */
interface StoredRobots {
  fetchedAt: number
  expiresAt: number
  /** 'ok' (text parsed), 'allow' (4xx: no rules), 'disallow' (5xx or unreachable). */
  kind: 'ok' | 'allow' | 'disallow'
  status?: number
  text?: string
}

export interface RobotsInit {
  clock?: Clock
  productToken?: string
  ttl?: number
  errorTtl?: number
  maxSize?: number
  cacheSize?: number
  maxRedirects?: number
}

export interface RobotsComponents {
  store: Store
  fetcher: Fetcher
}

/**
 * robots.txt per host (RFC 9309): fetched once, cached in memory (LRU) and on disk with a TTL.
 * 2xx → its rules; 4xx → allow all (§2.3.1.3); 5xx or unreachable → disallow all (§2.3.1.4) for
 * a shorter while, then fetched again. Redirects are followed up to five hops (§2.3.1.2).
 */
export class Robots implements RobotsSource {
  private readonly store: Store
  private readonly fetcher: Fetcher
  private readonly clock: Clock
  private readonly token: string
  private readonly ttl: number
  private readonly errorTtl: number
  private readonly maxSize: number
  private readonly cacheSize: number
  private readonly maxRedirects: number
  private readonly cache = new Map<string, { rules: RobotsRules, expiresAt: number }>()
  fetches = 0

  constructor (components: RobotsComponents, init: RobotsInit = {}) {
    this.store = components.store
    this.fetcher = components.fetcher
    this.clock = init.clock ?? systemClock
    this.token = init.productToken ?? 'shoal'
    this.ttl = init.ttl ?? C.DEFAULT_ROBOTS_TTL
    this.errorTtl = init.errorTtl ?? C.DEFAULT_ROBOTS_ERROR_TTL
    this.maxSize = init.maxSize ?? C.DEFAULT_MAX_ROBOTS_SIZE
    this.cacheSize = init.cacheSize ?? C.DEFAULT_ROBOTS_CACHE_SIZE
    this.maxRedirects = init.maxRedirects ?? 5
  }

  cached (host: string): RobotsRules | undefined {
    const c = this.cache.get(host)
    if (c == null) return undefined
    if (c.expiresAt <= this.clock.now()) {
      this.cache.delete(host)
      return undefined
    }
    return c.rules
  }

  async load (host: string): Promise<RobotsRules | undefined> {
    const stored = await this.store.get<StoredRobots>('robots', host)
    if (stored == null || stored.expiresAt <= this.clock.now()) return undefined
    return this.remember(host, stored)
  }

  private remember (host: string, stored: StoredRobots): RobotsRules {
    const rules = stored.kind === 'ok'
      ? parseRobotsTxt(stored.text ?? '', this.token, { maxBytes: this.maxSize })
      : stored.kind === 'allow' ? allowAll : disallowAll
    this.cache.delete(host)
    this.cache.set(host, { rules, expiresAt: stored.expiresAt })
    if (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next().value
      if (oldest !== undefined) this.cache.delete(oldest)
    }
    return rules
  }

  /** Fetch, store and return the rules of `origin`'s host. Failures mean disallow-for-a-while; throws only when aborted. */
  async fetch (host: string, origin: string, signal?: AbortSignal): Promise<RobotsRules> {
    let url = origin + '/robots.txt'
    let stored: StoredRobots | undefined
    const now = (): number => this.clock.now()
    for (let hop = 0; hop <= this.maxRedirects; hop++) {
      this.fetches++
      const res = await this.fetcher.fetch({ url, signal, attempts: Infinity })
      // Shutting down is not the host's fault: store nothing.
      if (signal?.aborted === true) throw new AbortError('robots.txt fetch aborted by shutdown')
      const status = res.httpStatus
      if (res.outcome === 'redirect' && res.location != null) {
        try {
          url = new URL(res.location, url).href
          continue
        } catch {
          stored = { kind: 'allow', status, fetchedAt: now(), expiresAt: now() + this.ttl }
          break
        }
      }
      if (res.outcome === 'ok') {
        const bytes = res.body ?? new Uint8Array()
        const text = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, this.maxSize)).toString('utf8')
        stored = { kind: 'ok', status, text, fetchedAt: now(), expiresAt: now() + this.ttl }
      } else if (status != null && status >= 400 && status < 500 && status !== 429) {
        stored = { kind: 'allow', status, fetchedAt: now(), expiresAt: now() + this.ttl }
      } else {
        log('robots.txt of %s unavailable (%s): disallowing for %d ms', host, res.error ?? status, this.errorTtl)
        stored = { kind: 'disallow', status, fetchedAt: now(), expiresAt: now() + this.errorTtl }
      }
      break
    }
    // Too many redirects: RFC 9309 §2.3.1.2 allows treating it as unavailable (4xx) → allow.
    stored ??= { kind: 'allow', fetchedAt: now(), expiresAt: now() + this.ttl }
    await this.store.write([{ type: 'put', sublevel: 'robots', key: host, value: stored }])
    return this.remember(host, stored)
  }
}

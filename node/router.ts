import { isIP } from 'node:net'
import debug from 'debug'
import { isPrivateAddress } from './fetcher.js'
import type { Frontier } from './frontier.js'
import { DEFAULT_ROUTED_CACHE_SIZE } from './constants.js'
import { RepeatFilter } from './recent.js'
import type { Scope } from './scope.js'
import type { Link } from './types.js'

const log = debug('shoal:router')

/**
 * Who owns a host. A single peer owns everything; the cluster's ring answers for many peers.
 */
export interface Ownership {
  readonly self: string
  owner(host: string): string
}

export const ownAll = (self: string): Ownership => ({ self, owner: () => self })

/** How links reach another peer's frontier; resolves once the owner has them durably. */
export interface LinkTransport {
  send(peer: string, links: Link[]): Promise<void>
}

export interface RouterComponents {
  frontier: Frontier
  scope: Scope
  ownership: Ownership
  transport?: LinkTransport
}

export interface RouterInit {
  /** When false, links to IP literals in private, loopback or link-local ranges are dropped here. */
  allowPrivate?: boolean
  /**
   * URLs this router remembers having delivered to their owner (acknowledged: the owner holds them
   * durably); met again, they are skipped before the scope check, routing and the wire. 0 turns
   * it off. @default 32768
   */
  routedCacheSize?: number
  /** A remembered URL is offered to its owner again once this long has passed (recrawl), ms. @default never */
  recrawlAfter?: number
  now?: () => number
}

export interface RouterStats {
  linksIn: number
  outOfScope: Record<string, number>
  routedLocal: number
  routedRemote: number
  /**
   * Links skipped because this router delivered them to their owner a moment ago, or because the
   * parse thread that found them had handed them on a moment ago (see `routedCacheSize`).
   */
  alreadyRouted: number
  /** Links re-sent after an owner failed to acknowledge them. */
  resent: number
  /** Links sent to other peers and not yet acknowledged. */
  inTransit: number
  bytesRouted: number
  messagesRouted: number
}

/**
 * Sends each discovered link to the frontier of its owner: scope and trap checks first (on the
 * sender, so nothing out of scope crosses the wire), then one batch per owner. `route` resolves
 * when every owner has the links durably, so a page is marked done only after its links are safe.
 */
export class Router {
  readonly stats: RouterStats = { linksIn: 0, outOfScope: {}, routedLocal: 0, alreadyRouted: 0, routedRemote: 0, resent: 0, inTransit: 0, bytesRouted: 0, messagesRouted: 0 }

  private readonly allowPrivate: boolean
  /**
   * URL → when its owner acknowledged it. Every page repeats most of its links (navigation, the
   * site's popular pages): without this each repeat costs a scope check, a seen-set lookup at its
   * owner and, for another peer's host, a place in a batch on the wire. A per-crawler cache of
   * URLs already sent is how Mercator (Heydon & Najork, 1999) and UbiCrawler cut inter-node link
   * traffic. A URL falls out of it after `routedCacheSize` newer ones; then its owner's seen set
   * answers again, so forgetting costs work, never a URL.
   */
  private readonly routed: RepeatFilter
  private readonly recrawlAfter: number
  private readonly now: () => number
  private readonly abort = new AbortController()
  private get stopping (): AbortSignal { return this.abort.signal }

  constructor (private readonly components: RouterComponents, init: RouterInit = {}) {
    this.allowPrivate = init.allowPrivate ?? false
    this.recrawlAfter = init.recrawlAfter ?? Infinity
    this.routed = new RepeatFilter(init.routedCacheSize ?? DEFAULT_ROUTED_CACHE_SIZE, this.recrawlAfter)
    this.now = init.now ?? Date.now
  }

  /** Links dropped as repeats before they reached the router (the parse threads' `RepeatFilter`). */
  skipped (n: number): void {
    this.stats.alreadyRouted += n
  }

  async route (links: Link[], opts: { skipScope?: boolean } = {}): Promise<void> {
    if (links.length === 0) return
    const { scope, ownership } = this.components
    this.stats.linksIn += links.length
    const byOwner = new Map<string, Link[]>()
    // Seeds and hand-offs (skipScope) always go to the owner, unchecked: they are few, and a
    // hand-off must.
    const check = opts.skipScope !== true
    const now = check && this.recrawlAfter !== Infinity ? this.now() : 0
    for (const l of links) {
      if (check) {
        if (this.routed.has(l.url, now)) {
          this.stats.alreadyRouted++
          continue
        }
        const v = scope.check(l.url)
        if (!v.ok) {
          this.stats.outOfScope[v.reason] = (this.stats.outOfScope[v.reason] ?? 0) + 1
          continue
        }
      }
      const host = hostKeyFast(l.url)
      if (!this.allowPrivate && isPrivateHostKey(host)) {
        this.stats.outOfScope['private-address'] = (this.stats.outOfScope['private-address'] ?? 0) + 1
        continue
      }
      const owner = ownership.owner(host)
      let batch = byOwner.get(owner)
      if (batch == null) byOwner.set(owner, batch = [])
      batch.push(l)
    }
    await this.deliver(byOwner, 0)
  }

  /** Hand each owner its batch; a batch an owner did not acknowledge goes to whoever owns it now. */
  private async deliver (byOwner: Map<string, Link[]>, attempt: number): Promise<void> {
    const { frontier, ownership, transport } = this.components
    const sends: Array<Promise<unknown>> = []
    for (const [owner, batch] of byOwner) {
      if (owner === ownership.self || transport == null) {
        this.stats.routedLocal += batch.length
        sends.push(frontier.add(batch).then(() => { this.remember(batch) }))
      } else {
        this.stats.routedRemote += batch.length
        this.stats.inTransit += batch.length
        sends.push(transport.send(owner, batch).finally(() => { this.stats.inTransit -= batch.length }).then(() => { this.remember(batch) }, async (err: any) => {
          if (this.stopping.aborted) throw err
          if (err?.retryable === false) {
            // The owner will never take these (refused as invalid, or forwarded too often):
            // keep them here rather than lose them.
            log.extend('error')('%d links refused by %s (%s); admitting them locally', batch.length, owner, err.message)
            await frontier.add(batch)
            this.remember(batch)
            return
          }
          this.stats.resent += batch.length
          log('%d links for %s not acknowledged (%s); re-routing', batch.length, owner, err.message)
          await sleep(Math.min(RETRY_BASE * 2 ** attempt, RETRY_MAX), this.stopping)
          await this.deliver(this.group(batch), attempt + 1)
        }))
      }
    }
    await Promise.all(sends)
  }

  /** These links' owner has them durably. */
  private remember (batch: Link[]): void {
    const at = this.recrawlAfter === Infinity ? 0 : this.now()
    for (const l of batch) this.routed.remember(l.url, at)
  }

  private group (links: Link[]): Map<string, Link[]> {
    const byOwner = new Map<string, Link[]>()
    for (const l of links) {
      const owner = this.components.ownership.owner(hostKeyFast(l.url))
      let batch = byOwner.get(owner)
      if (batch == null) byOwner.set(owner, batch = [])
      batch.push(l)
    }
    return byOwner
  }

  /** Stop re-sending: pending routes reject. */
  stop (): void {
    this.abort.abort()
  }
}

const RETRY_BASE = 50
const RETRY_MAX = 2000

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    if (signal.aborted) { reject(new Error('router stopped')); return }
    const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve() }, ms)
    const onAbort = (): void => { clearTimeout(t); reject(new Error('router stopped')) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** Is the host of a `host:port` key an IP literal in a private range? (Names are checked at connect time.) */
export function isPrivateHostKey (hostKey: string): boolean {
  const host = hostKey.slice(0, hostKey.lastIndexOf(':'))
  const ip = host.startsWith('[') ? host.slice(1, -1) : host
  return isIP(ip) !== 0 && isPrivateAddress(ip)
}

/** host:port of a normalized http(s) URL, without parsing it again. */
export function hostKeyFast (url: string): string {
  const start = url.indexOf('//') + 2
  let end = url.indexOf('/', start)
  if (end === -1) end = url.length
  const authority = url.slice(start, end)
  // IPv6 literal: [::1]:8080
  const colon = authority.lastIndexOf(':')
  if (colon !== -1 && colon > authority.lastIndexOf(']')) return authority
  return authority + (url.startsWith('https:') ? ':443' : ':80')
}

/** scheme://authority of a normalized http(s) URL. */
export function originFast (url: string): string {
  const start = url.indexOf('//') + 2
  const end = url.indexOf('/', start)
  return end === -1 ? url : url.slice(0, end)
}

import { isIP } from 'node:net'
import { isPrivateAddress } from './fetcher.js'
import type { Frontier } from './frontier.js'
import type { Scope } from './scope.js'
import type { Link } from './types.js'

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
}

export interface RouterStats {
  linksIn: number
  outOfScope: Record<string, number>
  routedLocal: number
  routedRemote: number
  bytesRouted: number
  messagesRouted: number
}

/**
 * Sends each discovered link to the frontier of its owner: scope and trap checks first (on the
 * sender, so nothing out of scope crosses the wire), then one batch per owner. `route` resolves
 * when every owner has the links durably, so a page is marked done only after its links are safe.
 */
export class Router {
  readonly stats: RouterStats = { linksIn: 0, outOfScope: {}, routedLocal: 0, routedRemote: 0, bytesRouted: 0, messagesRouted: 0 }

  private readonly allowPrivate: boolean

  constructor (private readonly components: RouterComponents, init: RouterInit = {}) {
    this.allowPrivate = init.allowPrivate ?? false
  }

  async route (links: Link[], opts: { skipScope?: boolean } = {}): Promise<void> {
    if (links.length === 0) return
    const { frontier, scope, ownership, transport } = this.components
    this.stats.linksIn += links.length
    const byOwner = new Map<string, Link[]>()
    for (const l of links) {
      if (opts.skipScope !== true) {
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
    const sends: Array<Promise<unknown>> = []
    for (const [owner, batch] of byOwner) {
      if (owner === ownership.self || transport == null) {
        this.stats.routedLocal += batch.length
        sends.push(frontier.add(batch))
      } else {
        this.stats.routedRemote += batch.length
        sends.push(transport.send(owner, batch))
      }
    }
    await Promise.all(sends)
  }
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

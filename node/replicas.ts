import type { BatchOp, Store } from './db.js'
import type { Frontier, FrontierEntry } from './frontier.js'
import type { MetaOp } from './replication.js'

/** What an owner sends the replicas of a host: the operations of /shoal/meta/1.0.0. */
export type ReplicaOp = MetaOp

const SEP = '\x00'

/**
 * The copies this peer keeps for the owners of other hosts (replication factor r: each host's
 * frontier entries and records live on its owner and the next r − 1 peers of the ring).
 *
 * Queued entries go to the `replicas` sublevel (`host␀key` → entry), apart from this peer's own
 * frontier, which they must not enter while another peer owns the host (its politeness is the
 * owner's). Records and seen marks go where this peer's own go (`meta`, `seen`), so a replica
 * answers queries for the host and, once promoted, does not fetch again what was done.
 * When the ring makes this peer a host's owner (its owner died or left), `promote` moves the
 * host's entries into the frontier.
 */
export class ReplicaStore {
  /** Called when a host's previous owner says it has sent everything of the host. */
  onHanded?: (host: string) => void

  /**
   * `ownsNow(host)`: this peer is the host's owner on its ring now. An entry for such a host goes
   * straight into the frontier (a peer that still sees itself as the owner may send copies after
   * this one took the host over; kept as copies, they would never be crawled).
   */
  constructor (private readonly store: Store, private readonly frontier: Frontier, private readonly ownsNow: (host: string) => boolean = () => false) {}

  /**
   * Apply an owner's operations; resolves once they are on disk here. It never waits on another
   * peer: the meta protocol applies one batch at a time per stream, so an apply that waited for
   * its own copies to reach a peer that is, at that moment, applying a batch of ours would wait
   * for the ack timeout (two peers that both believe they own a host during a hand-off did).
   */
  async apply (ops: ReplicaOp[]): Promise<void> {
    const writes: BatchOp[] = []
    // A copy of an entry must not turn a fetched URL back into a queued one: the owner may send
    // copies of entries done here since (a restarted owner sends what it had queued when it died).
    const entryUrls = ops.filter(op => op.k === 'entry').map(op => (op as { u: string }).u)
    const known = new Map<string, number | undefined>()
    if (entryUrls.length > 0) {
      const values = await this.frontier.seen.lookup(entryUrls)
      entryUrls.forEach((u, i) => known.set(u, values[i]))
    }
    const marked: string[] = []
    const drops: string[] = []
    const handed: string[] = []
    const adopt: FrontierEntry[] = []
    for (const op of ops) {
      switch (op.k) {
        case 'entry': {
          if (this.ownsNow(op.h)) {
            const entry: FrontierEntry = { url: op.u, depth: op.d }
            if (op.r != null) entry.referrer = op.r
            if (op.x != null) entry.redirects = op.x
            adopt.push(entry)
            break
          }
          const entry: FrontierEntry = { url: op.u, depth: op.d }
          if (op.r != null) entry.referrer = op.r
          if (op.x != null) entry.redirects = op.x
          writes.push({ type: 'put', sublevel: 'replicas', key: op.h + SEP + op.key, value: entry })
          const seen = this.frontier.seen.peek(op.u) ?? known.get(op.u)
          if (seen === undefined || seen <= 0) {
            writes.push(this.frontier.seen.mark(op.u, 0))
            marked.push(op.u)
          }
          break
        }
        case 'done':
          writes.push({ type: 'del', sublevel: 'replicas', key: op.h + SEP + op.key })
          writes.push({ type: 'put', sublevel: 'meta', key: op.rec.url, value: op.rec })
          writes.push(this.frontier.seen.mark(op.rec.url, Math.max(1, op.rec.fetchedAt)))
          marked.push(op.rec.url)
          break
        case 'seen':
          writes.push(this.frontier.seen.mark(op.u, op.at))
          marked.push(op.u)
          break
        case 'record':
          writes.push({ type: 'put', sublevel: 'meta', key: op.rec.url, value: op.rec })
          writes.push(this.frontier.seen.mark(op.rec.url, Math.max(1, op.rec.fetchedAt)))
          marked.push(op.rec.url)
          break
        case 'drop':
          drops.push(op.h)
          break
        case 'handed':
          handed.push(op.h)
          break
      }
    }
    await this.store.write(writes)
    this.frontier.seen.landed(marked)
    if (adopt.length > 0) await this.frontier.adopt(adopt, { waitForReplicas: false })
    for (const host of drops) await this.dropHost(host)
    for (const host of handed) this.onHanded?.(host)
  }

  /** Hosts this peer holds queued copies of. */
  async hosts (): Promise<string[]> {
    const out: string[] = []
    let last = ''
    for await (const key of this.store.subs.replicas.keys()) {
      const host = key.slice(0, key.indexOf(SEP))
      if (host !== last) out.push(last = host)
    }
    return out
  }

  async entries (host: string): Promise<Array<{ key: string, entry: FrontierEntry }>> {
    const out: Array<{ key: string, entry: FrontierEntry }> = []
    for await (const [key, entry] of this.store.subs.replicas.iterator({ gt: host + SEP, lt: host + '\x01' })) {
      out.push({ key: key.slice(host.length + 1), entry })
    }
    return out
  }

  async dropHost (host: string): Promise<void> {
    const keys: BatchOp[] = []
    for await (const key of this.store.subs.replicas.keys({ gt: host + SEP, lt: host + '\x01' })) {
      keys.push({ type: 'del', sublevel: 'replicas', key })
    }
    await this.store.write(keys)
  }

  /**
   * The ring made this peer the owner of some hosts it holds copies of: queue their entries in the
   * frontier (whatever is done by then is skipped there) and forget the copies. Returns how many
   * URLs were taken over.
   */
  async promote (owns: (host: string) => boolean): Promise<number> {
    let taken = 0
    for (const host of await this.hosts()) {
      if (!owns(host)) continue
      const entries = await this.entries(host)
      taken += await this.frontier.adopt(entries.map(e => e.entry))
      await this.dropHost(host)
    }
    return taken
  }
}

import debug from 'debug'
import type { BlockStore } from './blocks.js'
import type { ReplicatedDone, ReplicatedEntry, Replicator } from './frontier.js'
import type { Ring } from './ring.js'
import type { UrlRecord } from './types.js'

const log = debug('shoal:replication')

/** An operation of /shoal/meta/1.0.0 as the replicator sends it. */
export type MetaOp =
  | { k: 'entry', h: string, key: string, u: string, d: number, r?: string, x?: number }
  | { k: 'done', h: string, key: string, rec: UrlRecord }
  | { k: 'seen', u: string, at: number }
  | { k: 'record', rec: UrlRecord }
  | { k: 'drop', h: string }
  | { k: 'handed', h: string }

export interface ReplicationComponents {
  self: string
  /** The ring as this peer sees it now. */
  ring: () => Ring
  /** Sends operations to a peer; resolves once it has them on disk. */
  sendMeta: (peer: string, ops: MetaOp[]) => Promise<void>
  /** Sends a block to a peer; resolves once it has it. */
  putBlock: (peer: string, bytes: Uint8Array) => Promise<unknown>
  blocks: () => BlockStore
}

export interface ReplicationStats {
  /** Operations and blocks acknowledged by replicas. */
  opsReplicated: number
  blocksReplicated: number
  /** Copies a replica did not acknowledge (it died, or the stream failed): repaired on the next ring change. */
  underReplicated: number
}

/**
 * The owner's side of replication: every frontier entry admitted and every page done goes to the
 * host's other r − 1 peers on the ring (bodies first, over /shoal/blocks, then the record, over
 * /shoal/meta), and the frontier waits for them before it acknowledges links or counts a page done.
 * A replica that fails is counted as under-replicated, never as a failure of the crawl: the next
 * ring change (which a dead replica causes) sends the host's state to its new replicas.
 */
export class Replication implements Replicator {
  readonly stats: ReplicationStats = { opsReplicated: 0, blocksReplicated: 0, underReplicated: 0 }

  constructor (private readonly components: ReplicationComponents, private readonly r: number) {}

  /** The peers that hold copies of a host, besides this one. */
  replicasOf (host: string, ring: Ring = this.components.ring()): string[] {
    if (this.r <= 1) return []
    return ring.replicas(host, this.r).filter(p => p !== this.components.self)
  }

  async entries (entries: ReplicatedEntry[]): Promise<void> {
    const byPeer = new Map<string, MetaOp[]>()
    for (const { host, key, entry } of entries) {
      const op: MetaOp = { k: 'entry', h: host, key, u: entry.url, d: entry.depth }
      if (entry.referrer != null) op.r = entry.referrer
      if (entry.redirects != null) op.x = entry.redirects
      for (const peer of this.replicasOf(host)) {
        let ops = byPeer.get(peer)
        if (ops == null) byPeer.set(peer, ops = [])
        ops.push(op)
      }
    }
    await this.sendAll(byPeer)
  }

  async done (done: ReplicatedDone[]): Promise<void> {
    const byPeer = new Map<string, MetaOp[]>()
    const blocks: Array<Promise<unknown>> = []
    for (const d of done) {
      const rec = (d.record ?? { url: d.url, status: 'fetched', fetchedAt: d.fetchedAt, depth: 0 }) as unknown as UrlRecord
      const peers = this.replicasOf(d.host)
      if (peers.length === 0) continue
      // The body before the record that points at it.
      if (rec.cid != null) {
        const bytes = await this.components.blocks().get(rec.cid).catch(() => undefined)
        if (bytes != null) {
          for (const peer of peers) {
            blocks.push(this.components.putBlock(peer, bytes).then(
              () => { this.stats.blocksReplicated++ },
              (err: any) => { this.stats.underReplicated++; log('block %s to %s: %s', rec.cid, peer, err.message) }))
          }
        }
      }
      for (const peer of peers) {
        let ops = byPeer.get(peer)
        if (ops == null) byPeer.set(peer, ops = [])
        ops.push({ k: 'done', h: d.host, key: d.key, rec })
      }
    }
    await Promise.all(blocks)
    await this.sendAll(byPeer)
  }

  /**
   * Send every peer its operations, in parallel; a failure is counted, not thrown. Resolves true
   * when every peer acknowledged its operations.
   */
  async sendAll (byPeer: Map<string, MetaOp[]>): Promise<boolean> {
    const acked = await Promise.all([...byPeer].map(async ([peer, ops]) => {
      try {
        await this.components.sendMeta(peer, ops)
        this.stats.opsReplicated += ops.length
        return true
      } catch (err: any) {
        this.stats.underReplicated += ops.length
        log('%d operations to %s not acknowledged: %s', ops.length, peer, err.message)
        return false
      }
    }))
    return acked.every(Boolean)
  }
}

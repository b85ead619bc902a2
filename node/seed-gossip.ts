import debug from 'debug'
import { Packr } from 'msgpackr'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Libp2p } from '@libp2p/interface'
import { normalizeUrl } from './normalize.js'
import { DEFAULT_MAX_URL_LENGTH, KiB } from './constants.js'

const log = debug('shoal:seeds')
const packr = new Packr({ useRecords: false, moreTypes: false })

/** Seeds in one message; a longer list goes out in several. */
export const MAX_SEEDS_PER_MESSAGE = 1000
export const MAX_SEEDS_MESSAGE_BYTES = 2048 * KiB

export function seedsTopic (cluster: string): string {
  return `shoal/${cluster}/seeds`
}

/** Decode and check a seeds message: a list of absolute http(s) URLs, capped in count and length. */
export function decodeSeeds (data: Uint8Array): string[] {
  if (data.byteLength > MAX_SEEDS_MESSAGE_BYTES) throw new Error(`seeds message of ${data.byteLength} bytes, over ${MAX_SEEDS_MESSAGE_BYTES}`)
  const v = packr.unpack(data)
  if (v == null || typeof v !== 'object' || v.v !== 1 || !Array.isArray(v.seeds)) throw new Error('not a seeds message {v: 1, seeds: [...]}')
  if (v.seeds.length > MAX_SEEDS_PER_MESSAGE) throw new Error(`${v.seeds.length} seeds, over ${MAX_SEEDS_PER_MESSAGE}`)
  const out: string[] = []
  for (const s of v.seeds) {
    if (typeof s !== 'string' || s.length > DEFAULT_MAX_URL_LENGTH) throw new Error('a seed is not a string of at most 2048 characters')
    const u = normalizeUrl(s)
    if (u === undefined) throw new Error(`seed ${s.slice(0, 100)} is not an absolute http(s) URL`)
    out.push(u)
  }
  return out
}

/**
 * The cluster's seed list, shared over gossipsub (`shoal/<cluster>/seeds`): seeds define the crawl's
 * scope (same host as a seed, by default), and every peer checks the scope of the links it finds,
 * so every peer needs every seed. A peer publishes the seeds it is given, and its whole list again
 * when a peer joins, so latecomers learn it too.
 */
export class SeedGossip {
  private readonly topic: string
  private readonly onMessage: (evt: CustomEvent<any>) => void

  constructor (private readonly libp2p: Libp2p<{ pubsub: GossipSub }>, cluster: string, private readonly onSeeds: (urls: string[]) => void) {
    this.topic = seedsTopic(cluster)
    this.onMessage = (evt) => {
      const msg = evt.detail
      if (msg.topic !== this.topic) return
      try {
        this.onSeeds(decodeSeeds(msg.data))
      } catch (err: any) {
        log.extend('error')('ignoring a seeds message: %s', err.message)
      }
    }
  }

  start (): void {
    const pubsub = this.libp2p.services.pubsub
    pubsub.addEventListener('message', this.onMessage)
    pubsub.subscribe(this.topic)
  }

  stop (): void {
    const pubsub = this.libp2p.services.pubsub
    pubsub.removeEventListener('message', this.onMessage)
    try { pubsub.unsubscribe(this.topic) } catch {}
  }

  publish (urls: string[]): void {
    for (let i = 0; i < urls.length; i += MAX_SEEDS_PER_MESSAGE) {
      const data = packr.pack({ v: 1, seeds: urls.slice(i, i + MAX_SEEDS_PER_MESSAGE) })
      this.libp2p.services.pubsub.publish(this.topic, data).catch((err: any) => {
        log('publishing seeds: %s', err.message)
      })
    }
  }
}

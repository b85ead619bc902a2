import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import type { BatchOp, Store } from './db.js'
import { ShoalError } from './errors.js'

const SHA2_256 = 0x12
const RAW = 0x55

export class CorruptBlockError extends ShoalError {
  constructor (message = 'block does not match its CID') {
    super(message)
    this.name = 'CorruptBlockError'
  }
}

/** The CID (v1, raw codec, sha-256 multihash) of a body, as a base32 string. */
export function cidOf (bytes: Uint8Array): string {
  const hash = createHash('sha256').update(bytes).digest()
  return CID.createV1(RAW, Digest.create(SHA2_256, hash)).toString()
}

/**
 * Content-addressed block store: each distinct body is stored once, keyed by its CID, in the
 * `blocks` sublevel, and verified against the CID when read.
 */
export class BlockStore {
  /** CIDs written recently: skip rewriting the same bytes (common pages, error pages). */
  private readonly recent = new Set<string>()
  private readonly recentMax = 4096

  constructor (private readonly store: Store) {}

  /** The operation that stores `bytes`, and its CID; undefined op when it was just stored. */
  putOp (bytes: Uint8Array): { cid: string, op?: BatchOp } {
    const cid = cidOf(bytes)
    if (this.recent.has(cid)) return { cid }
    if (this.recent.size >= this.recentMax) this.recent.clear()
    this.recent.add(cid)
    return { cid, op: { type: 'put', sublevel: 'blocks', key: cid, value: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) } }
  }

  async put (bytes: Uint8Array): Promise<string> {
    const { cid, op } = this.putOp(bytes)
    if (op != null) await this.store.write([op])
    return cid
  }

  async has (cid: string): Promise<boolean> {
    return (await this.store.get('blocks', cid)) !== undefined
  }

  /** The bytes of a block, verified; undefined when absent; CorruptBlockError when they don't match. */
  async get (cid: string): Promise<Uint8Array | undefined> {
    const bytes = await this.store.get<Buffer>('blocks', cid)
    if (bytes === undefined) return undefined
    if (cidOf(bytes) !== cid) throw new CorruptBlockError(`block ${cid} does not match its CID`)
    return bytes
  }
}

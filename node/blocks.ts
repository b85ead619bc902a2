import { createHash } from 'node:crypto'
import { constants } from 'node:fs'
import { mkdir, open, readdir, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import type { BatchOp, Store } from './db.js'
import { ShoalError } from './errors.js'
import { MiB } from './constants.js'
import './polyfills.js'

const SHA2_256 = 0x12
const RAW = 0x55

/** A pack file is closed for appends past this size and a new one started. */
export const DEFAULT_PACK_SIZE = 256 * MiB

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

/** Where a block's bytes are: the `blocks` sublevel maps CID → this. */
export interface BlockLocation {
  /** Pack file number. */
  p: number
  /** Byte offset in the pack. */
  o: number
  /** Length in bytes. */
  l: number
}

/** Read-write, created if missing, NOT append: on Linux O_APPEND makes positional writes append. */
const WRITE_FLAGS = constants.O_RDWR | constants.O_CREAT

const packName = (n: number): string => `pack-${String(n).padStart(6, '0')}`

/** One write of the bodies staged while the previous write was under way: adjacent in one pack. */
interface WriteGroup {
  pack: number
  offset: number
  parts: Uint8Array[]
  bytes: number
  done: Promise<void>
  resolve: () => void
  reject: (err: Error) => void
}

/** A write group is closed at this many bytes or bodies (writev takes at most IOV_MAX = 1024 buffers). */
const MAX_GROUP_BYTES = 4 * MiB
const MAX_GROUP_PARTS = 256

/**
 * Content-addressed block store: each distinct body stored once, keyed by its CID, verified
 * against it when read.
 *
 * Bodies are appended to pack files under `<dir>` (large sequential writes, no compaction), and
 * only their location goes into LevelDB (`blocks`: CID → {pack, offset, length}), in the same
 * batch as the page's record. The bytes are written before that batch, so a crash can leave
 * unreferenced bytes at the end of a pack, never a reference to bytes that are not there.
 * (Keeping 30 KB bodies as LevelDB values instead cost more CPU in compactions than the whole
 * parse: every body was rewritten several times as levels merged.)
 */
export class BlockStore {
  /** CIDs written recently: skip rewriting the same bytes (common pages, error pages). */
  private readonly recent = new Map<string, BlockLocation>()
  private readonly recentMax = 4096
  private readonly readers = new Map<number, Promise<FileHandle>>()
  private pack = 0
  /** Write handles by pack number; old packs stay open until close(), so appends in flight finish. */
  private readonly writers = new Map<number, Promise<FileHandle>>()
  private size = 0
  private readonly packSize: number
  /** Groups waiting for the write under way (group commit: one writev a group, not one write a body). */
  private readonly queue: WriteGroup[] = []
  private draining: Promise<void> | undefined
  /** Writes of bodies to pack files, and bodies written (their ratio is the grouping). */
  readonly stats = { writes: 0, bodies: 0 }

  constructor (private readonly store: Store, private readonly dir: string, init: { packSize?: number } = {}) {
    this.packSize = init.packSize ?? DEFAULT_PACK_SIZE
  }

  async open (): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    const packs = (await readdir(this.dir)).filter(f => /^pack-\d{6}$/.test(f)).map(f => Number(f.slice(5)))
    this.pack = packs.length === 0 ? 1 : Math.max(...packs)
    const handle = await open(join(this.dir, packName(this.pack)), WRITE_FLAGS)
    this.writers.set(this.pack, Promise.resolve(handle))
    this.size = (await handle.stat()).size
  }

  async close (): Promise<void> {
    await this.draining
    for (const h of this.writers.values()) await (await h).close()
    this.writers.clear()
    for (const h of this.readers.values()) await (await h).close()
    this.readers.clear()
  }

  /**
   * Append `bytes` (unless a block with its CID was just stored) and return its CID and the index
   * operation to commit with the record that refers to it.
   */
  async stage (bytes: Uint8Array): Promise<{ cid: string, loc: BlockLocation, op?: BatchOp }> {
    const cid = cidOf(bytes)
    // Stored a moment ago: don't write the bytes again, but do give the index entry to this caller
    // too, so its record never commits before the location it refers to.
    const seen = this.recent.get(cid)
    if (seen != null) return { cid, loc: seen, op: { type: 'put', sublevel: 'blocks', key: cid, value: seen } }
    if (this.size >= this.packSize) {
      // Rotate, synchronously: every later append goes to the new pack.
      this.pack++
      this.size = 0
      this.writers.set(this.pack, open(join(this.dir, packName(this.pack)), WRITE_FLAGS))
    }
    const loc: BlockLocation = { p: this.pack, o: this.size, l: bytes.byteLength }
    // Offsets are handed out synchronously, so concurrent appends never overlap.
    this.size += bytes.byteLength
    if (this.recent.size >= this.recentMax) this.recent.clear()
    this.recent.set(cid, loc)
    await this.append(loc.p, loc.o, bytes)
    return { cid, loc, op: { type: 'put', sublevel: 'blocks', key: cid, value: loc } }
  }

  /**
   * Write `bytes` at `offset` of pack `pack`. While one write is under way, the bodies staged after
   * it gather into the next group (they are adjacent: offsets are handed out in order), written
   * with one writev when it lands: under load a pack write costs one thread-pool round trip for
   * many pages instead of one each; alone, a body is written at once.
   */
  private async append (pack: number, offset: number, bytes: Uint8Array): Promise<void> {
    let g = this.queue[this.queue.length - 1]
    if (g == null || g.pack !== pack || g.offset + g.bytes !== offset || g.bytes >= MAX_GROUP_BYTES || g.parts.length >= MAX_GROUP_PARTS) {
      const { promise: done, resolve, reject } = Promise.withResolvers<void>()
      g = { pack, offset, parts: [], bytes: 0, done, resolve, reject }
      this.queue.push(g)
    }
    g.parts.push(bytes)
    g.bytes += bytes.byteLength
    this.draining ??= this.drain()
    await g.done
  }

  private async drain (): Promise<void> {
    try {
      for (let g = this.queue.shift(); g != null; g = this.queue.shift()) {
        try {
          await this.writeGroup(g)
          g.resolve()
        } catch (err: any) {
          g.reject(err)
        }
      }
    } finally {
      this.draining = undefined
    }
  }

  private async writeGroup (g: WriteGroup): Promise<void> {
    const handle = await (this.writers.get(g.pack) as Promise<FileHandle>)
    let parts = g.parts
    let position = g.offset
    let left = g.bytes
    this.stats.bodies += parts.length
    while (left > 0) {
      this.stats.writes++
      const { bytesWritten } = await handle.writev(parts, position)
      if (bytesWritten === 0) throw new Error(`pack ${g.pack}: wrote 0 bytes at ${position}`)
      left -= bytesWritten
      position += bytesWritten
      // A short write: go on from where it stopped.
      parts = skipBytes(parts, bytesWritten)
    }
  }

  async put (bytes: Uint8Array): Promise<string> {
    const { cid, op } = await this.stage(bytes)
    if (op != null) await this.store.write([op])
    return cid
  }

  async has (cid: string): Promise<boolean> {
    return (await this.store.get('blocks', cid)) !== undefined
  }

  /** The bytes of a block, verified; undefined when absent; CorruptBlockError when they don't match. */
  async get (cid: string): Promise<Uint8Array | undefined> {
    const loc = await this.store.get<BlockLocation>('blocks', cid)
    if (loc === undefined) return undefined
    return await this.read(cid, loc)
  }

  /**
   * The bytes of block `cid` at `loc`, verified (CorruptBlockError when they don't match): a block
   * `stage` has written, before or without its index entry being committed.
   */
  async read (cid: string, loc: BlockLocation): Promise<Uint8Array> {
    // One handle per pack, shared by concurrent first reads.
    let opening = this.readers.get(loc.p)
    if (opening == null) {
      opening = open(join(this.dir, packName(loc.p)), 'r')
      this.readers.set(loc.p, opening)
    }
    const reader = await opening
    const bytes = Buffer.allocUnsafe(loc.l)
    let read = 0
    while (read < loc.l) {
      const { bytesRead } = await reader.read(bytes, read, loc.l - read, loc.o + read)
      if (bytesRead === 0) break
      read += bytesRead
    }
    if (read !== loc.l || cidOf(bytes) !== cid) throw new CorruptBlockError(`block ${cid} does not match its CID (pack ${loc.p} at ${loc.o})`)
    return bytes
  }
}

/** `parts` without their first `n` bytes. */
function skipBytes (parts: Uint8Array[], n: number): Uint8Array[] {
  let i = 0
  while (i < parts.length && n >= parts[i].byteLength) n -= parts[i++].byteLength
  if (i === parts.length) return []
  return [parts[i].subarray(n), ...parts.slice(i + 1)]
}

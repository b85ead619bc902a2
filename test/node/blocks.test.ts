import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BlockStore, cidOf } from '../../node/blocks.js'
import { Store } from '../../node/db.js'
import { useTempDirs } from '../utils/tmp.js'

describe('block store', () => {
  const dirs = useTempDirs('shoal-blocks-')

  it('stores each body once under its CID, across pack rotations and a reopen, and verifies on read', async () => {
    const dir = await dirs.make()
    let store = new Store(join(dir, 'db'))
    await store.open()
    let blocks = new BlockStore(store, join(dir, 'blocks'), { packSize: 10_000 })
    await blocks.open()
    const bodies = Array.from({ length: 40 }, () => randomBytes(1000 + Math.floor(Math.random() * 2000)))
    // All at once: offsets must not overlap, rotation must not lose a write.
    const cids = await Promise.all(bodies.map(async b => await blocks.put(b)))
    assert.deepEqual(cids, bodies.map(b => cidOf(b)))
    const packBytes = async (): Promise<number> => {
      let total = 0
      for (const f of await readdir(join(dir, 'blocks'))) total += (await stat(join(dir, 'blocks', f))).size
      return total
    }
    const before = await packBytes()
    const again = await blocks.stage(bodies[0])
    assert.equal(again.cid, cids[0])
    assert.equal(again.op?.key, cids[0], 'the index entry is given to this caller too')
    assert.equal(await packBytes(), before, 'the bytes are not written again')
    // Read back where it was staged, before (or without) its index entry being committed.
    assert.deepEqual(await blocks.read(again.cid, again.loc), bodies[0])
    await assert.rejects(blocks.read(cids[0], { ...again.loc, o: again.loc.o + 1 }), /does not match its CID/)
    const packs = (await readdir(join(dir, 'blocks'))).filter(f => f.startsWith('pack-'))
    assert.ok(packs.length >= 5, `rotated into ${packs.length} packs`)
    await blocks.close()
    await store.close()

    store = new Store(join(dir, 'db'))
    await store.open()
    blocks = new BlockStore(store, join(dir, 'blocks'), { packSize: 10_000 })
    await blocks.open()
    for (let i = 0; i < bodies.length; i++) assert.deepEqual(Buffer.from(await blocks.get(cids[i]) as Uint8Array), bodies[i])
    assert.equal(await blocks.get(cidOf(Buffer.from('never stored'))), undefined)

    // A flipped byte in a pack is caught by the CID check.
    const first = join(dir, 'blocks', packs.sort()[0])
    const bytes = await readFile(first)
    bytes[10] ^= 0xff
    await writeFile(first, bytes)
    const reopened = new BlockStore(store, join(dir, 'blocks'))
    await assert.rejects(reopened.get(cids[0]), { name: 'CorruptBlockError' })
    await reopened.close()
    await blocks.close()
    await store.close()
  })

  it('writes the bodies staged during a write together, in one writev, each at its own offset', async () => {
    const dir = await dirs.make()
    const store = new Store(join(dir, 'db'))
    await store.open()
    const blocks = new BlockStore(store, join(dir, 'blocks'))
    await blocks.open()
    const bodies = Array.from({ length: 300 }, (_, i) => randomBytes(100 + i))
    const cids = await Promise.all(bodies.map(async b => await blocks.put(b)))
    assert.equal(blocks.stats.bodies, bodies.length)
    // The first goes alone; the rest gather while it is written (at most 256 a group).
    assert.ok(blocks.stats.writes <= 4, `${blocks.stats.writes} writes for ${bodies.length} bodies`)
    for (let i = 0; i < bodies.length; i++) assert.deepEqual(Buffer.from(await blocks.get(cids[i]) as Uint8Array), bodies[i])
    // One after another, nothing waits: each body is written at once.
    const before = blocks.stats.writes
    await blocks.put(randomBytes(10))
    await blocks.put(randomBytes(10))
    assert.equal(blocks.stats.writes, before + 2)
    await blocks.close()
    await store.close()
  })

  it('a failed write rejects the bodies staged with it', async () => {
    const dir = await dirs.make()
    const store = new Store(join(dir, 'db'))
    await store.open()
    const blocks = new BlockStore(store, join(dir, 'blocks'), { packSize: 1000 })
    await blocks.open()
    await blocks.put(randomBytes(1000))
    // The next put rotates to pack 2; make that pack unwritable by putting a directory in its way.
    await mkdir(join(dir, 'blocks', 'pack-000002'))
    await assert.rejects(blocks.put(randomBytes(10)), /EISDIR|illegal operation/)
    await blocks.close().catch(() => {})
    await store.close()
  })
})

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import {
  DEFAULT_PROBES, DEFAULT_VNODES, hashKey, keyPositions, movedKeys, peerPoints, pointOf, Ring
} from '../../node/ring.js'
import { prng } from '../utils/random.js'

function peerIds (seed: number, n: number): string[] {
  const rnd = prng(seed)
  const alphabet = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
  return Array.from({ length: n }, () =>
    '12D3KooW' + Array.from({ length: 44 }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join(''))
}

function hosts (seed: number, n: number): string[] {
  const rnd = prng(seed)
  const tlds = ['com', 'org', 'net', 'de', 'co.uk', 'io']
  return Array.from({ length: n }, (_, i) => {
    const name = Math.floor(rnd() * 2 ** 40).toString(36)
    const port = rnd() < 0.5 ? 80 : rnd() < 0.9 ? 443 : 8000 + (i % 100)
    return `${rnd() < 0.3 ? 'www.' : ''}${name}.${tlds[i % tlds.length]}:${port}`
  })
}

function counts (ring: Ring, keys: string[]): Map<string, number> {
  const out = new Map<string, number>(ring.peers.map(p => [p, 0]))
  for (const k of keys) {
    const o = ring.owner(k) as string
    out.set(o, (out.get(o) as number) + 1)
  }
  return out
}

/** MurmurHash3_x86_32 over bytes, written from the algorithm's description, as an independent reference. */
function murmur3 (bytes: Uint8Array, seed = 0): number {
  const mix = (k: number): number => {
    k = Math.imul(k, 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    return Math.imul(k, 0x1b873593)
  }
  let h = seed
  const blocks = bytes.length >> 2
  for (let b = 0; b < blocks; b++) {
    const k = bytes[4 * b] | (bytes[4 * b + 1] << 8) | (bytes[4 * b + 2] << 16) | (bytes[4 * b + 3] << 24)
    h ^= mix(k)
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  let tail = 0
  for (let i = bytes.length - 1; i >= blocks * 4; i--) tail = (tail << 8) | bytes[i]
  if ((bytes.length & 3) !== 0) h ^= mix(tail)
  h ^= bytes.length
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** The ring by brute force, from the documented placement: no sorting, no search, no cache. */
function naive (peers: string[], key: string, probes: number, vnodes = DEFAULT_VNODES): { owner: string, ranking: string[] } {
  const probesAt = keyPositions(key, probes)
  const nearest = new Map<string, number>()
  for (const peer of peers) {
    for (let i = 0; i < vnodes; i++) {
      const pos = createHash('sha256').update(`${peer}\0${Math.floor(i / 8)}`).digest().readUInt32BE((i % 8) * 4)
      for (const p of probesAt) {
        const d = (pos - p) >>> 0
        if (d < (nearest.get(peer) ?? Infinity)) nearest.set(peer, d)
      }
    }
  }
  const ranking = [...nearest].sort((a, b) => a[1] - b[1]).map(([p]) => p)
  return { owner: ranking[0], ranking }
}

const isConfigError = (option: string) => (err: any): boolean => {
  assert.equal(err.name, 'ConfigError')
  assert.match(err.message, new RegExp(option))
  return true
}

describe('ring', () => {
  describe('options', () => {
    it('rejects a vnodes that is not an integer from 1 to 4096 with a ConfigError naming the option', () => {
      for (const vnodes of [0, -1, 1.5, 4097, NaN, Infinity, '64' as any]) {
        assert.throws(() => Ring.of(['a'], { vnodes }), isConfigError('vnodes'), String(vnodes))
      }
      assert.equal(Ring.of(['a'], { vnodes: 1 }).vnodes, 1)
      assert.equal(Ring.of(['a', 'b'], { vnodes: 4096 }).vnodes, 4096)
      assert.equal(Ring.of(['a']).vnodes, DEFAULT_VNODES)
      assert.equal(DEFAULT_VNODES, 64)
    })

    it('rejects a probes that is not an integer from 1 to 64, and a bad replica count', () => {
      for (const probes of [0, 65, 2.5, -3]) {
        assert.throws(() => Ring.of(['a'], { probes }), isConfigError('probes'), String(probes))
      }
      assert.equal(Ring.of(['a']).probes, DEFAULT_PROBES)
      for (const r of [-1, 1.5, NaN]) {
        assert.throws(() => Ring.of(['a']).replicas('x:80', r), isConfigError('replicas'), String(r))
      }
    })

    it('rejects an empty or non-string peer id', () => {
      assert.throws(() => Ring.of(['a', '']), isConfigError('peer'))
      assert.throws(() => Ring.of([42 as any]), isConfigError('peer'))
      assert.throws(() => Ring.of(['a']).with(''), isConfigError('peer'))
    })
  })

  describe('edge cases', () => {
    it('an empty ring owns nothing', () => {
      const ring = Ring.of([])
      assert.deepEqual(ring.peers, [])
      assert.equal(ring.size, 0)
      assert.equal(ring.owner('example.com:80'), undefined)
      assert.deepEqual(ring.replicas('example.com:80', 3), [])
      assert.equal(ring.share('a'), 0)
      assert.equal(ring.has('a'), false)
      assert.equal(ring.without('a'), ring)
      assert.deepEqual(movedKeys(ring, ring, ['a:80']), [])
      assert.equal(ring.version, Ring.of([]).version)
      assert.equal(ring.with('a').version, Ring.of(['a']).version)
    })

    it('a single peer owns every key and is its only replica', () => {
      const ring = Ring.of(['only'])
      for (const k of hosts(1, 1000)) assert.equal(ring.owner(k), 'only')
      assert.deepEqual(ring.replicas('example.com:80', 3), ['only'])
      assert.deepEqual(ring.replicas('example.com:80', 0), [])
      assert.equal(ring.share('only'), 1)
      assert.deepEqual(ring.without('only').peers, [])
    })

    it('sorts its members and ignores duplicates; with/without of a member/non-member return the same ring', () => {
      const ring = Ring.of(['c', 'a', 'b', 'a'])
      assert.deepEqual(ring.peers, ['a', 'b', 'c'])
      assert.ok(Object.isFrozen(ring.peers))
      assert.equal(ring.with('b'), ring)
      assert.equal(ring.without('z'), ring)
      assert.ok(ring.has('c') && !ring.has('z'))
    })
  })

  describe('placement and lookup are the documented ones', () => {
    it('hashKey is MurmurHash3_x86_32 (seed 0) of the key as UTF-16LE', () => {
      // Published MurmurHash3_x86_32 vectors, to check the reference itself.
      assert.equal(murmur3(new Uint8Array()), 0)
      assert.equal(murmur3(Uint8Array.of(0xff, 0xff, 0xff, 0xff)), 0x76293b50)
      assert.equal(murmur3(Uint8Array.of(0x21, 0x43, 0x65, 0x87)), 0xf55b516b)
      assert.equal(murmur3(Uint8Array.of(0x21, 0x43, 0x65)), 0x7e4a8634)
      assert.equal(murmur3(Buffer.from('Hello world')), 2911983372)
      // Two UTF-16 code units are those four bytes.
      assert.equal(hashKey('\u4321\u8765'), 0xf55b516b)
      assert.equal(hashKey('\uffff\uffff'), 0x76293b50)
      assert.equal(hashKey(''), 0)
      const rnd = prng(7)
      const samples = [...hosts(2, 300), 'xn--bcher-kva.example:443', '[::1]:8080', 'a', 'ab', 'abc', 'bücher.de:80']
      for (let i = 0; i < 100; i++) samples.push(String.fromCharCode(...Array.from({ length: i % 9 }, () => Math.floor(rnd() * 0x10000))))
      for (const s of samples) assert.equal(hashKey(s), murmur3(Buffer.from(s, 'utf16le')), JSON.stringify(s))
    })

    it('a peer\'s point i is word i % 8 of sha-256(peer, 0, floor(i / 8)), the same for every vnodes', () => {
      const peer = peerIds(3, 1)[0]
      const all = peerPoints(peer, 64)
      for (let i = 0; i < 64; i++) {
        const word = createHash('sha256').update(`${peer}\0${Math.floor(i / 8)}`).digest().readUInt32BE((i % 8) * 4)
        assert.equal(all[i], word)
        assert.equal(pointOf(peer, i), word)
      }
      assert.deepEqual(peerPoints(peer, 13), all.subarray(0, 13))
    })

    it('with one probe, the owner is the first point clockwise from hashKey(key) and replicas the next distinct peers', () => {
      const peers = peerIds(4, 7)
      const ring = Ring.of(peers, { probes: 1, vnodes: 16 })
      for (const key of hosts(5, 300)) {
        const { owner, ranking } = naive(peers, key, 1, 16)
        assert.equal(ring.owner(key), owner, key)
        assert.deepEqual(ring.replicas(key, 7), ranking, key)
      }
    })

    it('with several probes, the owner is the peer of the point nearest to any probe; replicas rank peers by that distance', () => {
      const peers = peerIds(6, 10)
      const ring = Ring.of(peers)
      for (const key of hosts(7, 200)) {
        const { owner, ranking } = naive(peers, key, DEFAULT_PROBES)
        assert.equal(ring.owner(key), owner, key)
        assert.deepEqual(ring.replicas(key, 10), ranking, key)
        assert.deepEqual(ring.replicas(key, 3), ranking.slice(0, 3), key)
      }
    })

    it('is pinned: a change of hash or placement would split a cluster of mixed versions', () => {
      const ring = Ring.of(['peer-a', 'peer-b', 'peer-c'])
      assert.equal(hashKey('example.com:80'), murmur3(Buffer.from('example.com:80', 'utf16le')))
      const keys = ['example.com:80', 'example.com:443', 'www.example.org:443', 'a.test:8080', '[::1]:80', 'b.test:80', 'c.test:80', 'd.test:80', 'e.test:80']
      assert.deepEqual(keys.map(k => ring.owner(k)),
        ['peer-b', 'peer-b', 'peer-b', 'peer-b', 'peer-a', 'peer-c', 'peer-a', 'peer-a', 'peer-b'])
      const all = Array.from({ length: 1000 }, (_, i) => ring.replicas(`host${i}.test:80`, 3).join(',')).join(';')
      assert.equal(createHash('sha256').update(all).digest('hex').slice(0, 16), 'f6e73803decf0975')
      assert.equal(ring.version, 'e35b70f25f92d77b')
    })
  })

  describe('balance', () => {
    it('with 10 peers and 64 vnodes the busiest peer owns at most 1.25× the mean of 100,000 hosts, for 30 seeded peer sets', () => {
      const keys = hosts(100, 100_000)
      let worst = 0
      for (let seed = 1; seed <= 30; seed++) {
        const ring = Ring.of(peerIds(1000 + seed, 10))
        const max = Math.max(...counts(ring, keys).values())
        const ratio = max / (keys.length / 10)
        assert.ok(ratio <= 1.25, `seed ${seed}: busiest peer owns ${ratio.toFixed(3)}× the mean`)
        worst = Math.max(worst, ratio)
      }
      assert.ok(worst > 1, 'shares are measured, not all equal by construction')
    })

    it('one probe (the classic ring) does not meet that bound for every set: why DEFAULT_PROBES > 1', () => {
      let over = 0
      for (let seed = 1; seed <= 30; seed++) {
        const ring = Ring.of(peerIds(1000 + seed, 10), { probes: 1 })
        if (Math.max(...ring.peers.map(p => ring.share(p))) * 10 > 1.25) over++
      }
      assert.ok(over > 0)
      assert.ok(DEFAULT_PROBES > 1)
    })

    it('share() is the fraction of hosts a peer owns, and the shares add up to 1', () => {
      const keys = hosts(200, 100_000)
      for (const probes of [1, 2, DEFAULT_PROBES]) {
        const ring = Ring.of(peerIds(201, 10), { probes })
        const seen = counts(ring, keys)
        let sum = 0
        for (const p of ring.peers) {
          sum += ring.share(p)
          // Sampling noise over 100k keys: σ ≈ 0.001.
          assert.ok(Math.abs(ring.share(p) - (seen.get(p) as number) / keys.length) < 0.005, `probes ${probes}, ${p}`)
        }
        assert.ok(Math.abs(sum - 1) < 1e-9, `sum ${sum}`)
        assert.equal(ring.share('not-a-member'), 0)
      }
    })
  })

  describe('membership changes', () => {
    const keys = hosts(300, 100_000)

    it('a join moves about 1/N of the keys, every one of them to the joining peer', () => {
      for (let seed = 1; seed <= 5; seed++) {
        const [joiner, ...peers] = peerIds(3000 + seed, 11)
        const before = Ring.of(peers)
        const after = before.with(joiner)
        const moved = movedKeys(before, after, keys)
        const fraction = moved.length / keys.length
        assert.ok(fraction >= 0.5 / 10 && fraction <= 1.6 / 10, `seed ${seed}: ${fraction} of the keys moved`)
        assert.ok(Math.abs(fraction - after.share(joiner)) < 0.005, `seed ${seed}: moved ${fraction}, share ${after.share(joiner)}`)
        for (const k of moved) assert.equal(after.owner(k), joiner, k)
      }
    })

    it('a leave moves exactly the leaver\'s keys, each to another peer, and no other key', () => {
      for (let seed = 1; seed <= 5; seed++) {
        const peers = peerIds(4000 + seed, 10)
        const before = Ring.of(peers)
        const leaver = peers[seed]
        const after = before.without(leaver)
        const owned = keys.filter(k => before.owner(k) === leaver)
        assert.deepEqual(movedKeys(before, after, keys), owned)
        for (const k of owned) assert.ok(after.has(after.owner(k) as string) && after.owner(k) !== leaver)
      }
    })

    it('a join then a leave of the same peer gives back the same ring', () => {
      const ring = Ring.of(peerIds(5000, 10))
      const back = ring.with('newcomer').without('newcomer')
      assert.equal(back.version, ring.version)
      assert.deepEqual(movedKeys(ring, back, keys.slice(0, 20_000)), [])
    })
  })

  describe('replicas', () => {
    const peers = peerIds(6000, 10)
    const ring = Ring.of(peers)
    const keys = hosts(6001, 2000)

    it('are min(r, peers) distinct peers, owner first', () => {
      for (const key of keys.slice(0, 200)) {
        for (let r = 0; r <= 12; r++) {
          const reps = ring.replicas(key, r)
          assert.equal(reps.length, Math.min(r, 10))
          assert.equal(new Set(reps).size, reps.length)
          for (const p of reps) assert.ok(ring.has(p))
          if (r > 0) assert.equal(reps[0], ring.owner(key))
        }
        assert.deepEqual([...ring.replicas(key, 50)].sort(), ring.peers)
      }
    })

    it('when the owner leaves, the second replica takes over and the others move up', () => {
      for (const key of keys) {
        const reps = ring.replicas(key, 3)
        const after = ring.without(reps[0])
        assert.equal(after.owner(key), reps[1], key)
        assert.deepEqual(after.replicas(key, 2), reps.slice(1), key)
      }
    })

    it('keep their order when any peer leaves or joins', () => {
      const joined = ring.with('joiner')
      for (const key of keys.slice(0, 500)) {
        const all = ring.replicas(key, 10)
        for (const leaver of peers.slice(0, 3)) {
          assert.deepEqual(ring.without(leaver).replicas(key, 9), all.filter(p => p !== leaver), key)
        }
        assert.deepEqual(joined.replicas(key, 11).filter(p => p !== 'joiner'), all, key)
      }
    })
  })

  describe('agreement between peers', () => {
    it('the same member set gives the same version in any order, and a different set, vnodes or probes does not', () => {
      const peers = peerIds(7000, 12)
      const rnd = prng(7001)
      const ring = Ring.of(peers)
      for (let i = 0; i < 10; i++) {
        const shuffled = shuffle(peers, rnd)
        assert.equal(Ring.of(shuffled).version, ring.version)
      }
      assert.equal(shuffledChain(peers, rnd).version, ring.version)
      assert.match(ring.version, /^[0-9a-f]{16}$/)
      const others = [
        Ring.of(peers.slice(1)), Ring.of([...peers, 'x']), Ring.of(peers, { vnodes: 63 }), Ring.of(peers, { probes: 1 })
      ]
      assert.equal(new Set([ring.version, ...others.map(r => r.version)]).size, 5)
    })

    it('two rings built independently (or by joins and leaves) agree on every owner', () => {
      const peers = peerIds(8000, 12)
      const rnd = prng(8001)
      const a = Ring.of(peers)
      const b = Ring.of([...peers].reverse())
      const c = shuffledChain([...peers, 'gone-1', 'gone-2'], rnd).without('gone-1').without('gone-2')
      const keys = hosts(8002, 20_000)
      assert.deepEqual(movedKeys(a, b, keys), [])
      assert.deepEqual(movedKeys(a, c, keys), [])
      for (const k of keys.slice(0, 500)) assert.deepEqual(c.replicas(k, 3), a.replicas(k, 3))
    })
  })
})

/** A ring grown one join at a time, in a shuffled order, from empty. */
function shuffledChain (peers: string[], rnd: () => number): Ring {
  let ring = Ring.of([])
  for (const p of shuffle(peers, rnd)) ring = ring.with(p)
  return ring
}

/** Fisher–Yates, with the seeded PRNG. */
function shuffle<T> (items: readonly T[], rnd: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

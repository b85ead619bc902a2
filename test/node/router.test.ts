import assert from 'node:assert/strict'
import type { Frontier } from '../../node/frontier.js'
import { RecentMap } from '../../node/recent.js'
import { Router, type LinkTransport, type Ownership } from '../../node/router.js'
import { Scope } from '../../node/scope.js'
import type { Link } from '../../node/types.js'

/** A frontier that only records what it was given (the router calls nothing else). */
function recordingFrontier (): { frontier: Frontier, added: string[] } {
  const added: string[] = []
  const frontier = { add: async (links: Link[]) => { for (const l of links) added.push(l.url); return links.length } } as unknown as Frontier
  return { frontier, added }
}

const A = 'http://a.test/'
const B = 'http://b.test/'
const link = (url: string): Link => ({ url, depth: 1, referrer: A })
const scope = new Scope({ mode: 'any' })
/** a.test is this peer's, b.test is peer "b"'s. */
const ownership: Ownership = { self: 'a', owner: (host) => host.startsWith('a.test') ? 'a' : 'b' }

describe('router', () => {
  describe('links already delivered to their owner', () => {
    it('skips a link whose owner acknowledged it, before the scope check and the wire', async () => {
      const { frontier, added } = recordingFrontier()
      const sent: string[] = []
      const transport: LinkTransport = { send: async (_peer, links) => { for (const l of links) sent.push(l.url) } }
      const router = new Router({ frontier, scope, ownership, transport }, { allowPrivate: true })
      await router.route([link(A + '1'), link(B + '1')])
      await router.route([link(A + '1'), link(B + '1'), link(B + '2')])
      assert.deepEqual(added, [A + '1'])
      assert.deepEqual(sent, [B + '1', B + '2'])
      assert.equal(router.stats.alreadyRouted, 2)
      assert.equal(router.stats.linksIn, 5)
    })

    it('offers a link again while its first delivery is not acknowledged', async () => {
      const { frontier } = recordingFrontier()
      const sent: string[] = []
      let ack!: () => void
      const firstAcked = new Promise<void>(resolve => { ack = resolve })
      let calls = 0
      const transport: LinkTransport = {
        send: async (_peer, links) => {
          for (const l of links) sent.push(l.url)
          if (calls++ === 0) await firstAcked
        }
      }
      const router = new Router({ frontier, scope, ownership, transport }, { allowPrivate: true })
      const first = router.route([link(B + '1')])
      await router.route([link(B + '1')])
      assert.deepEqual(sent, [B + '1', B + '1'])
      ack()
      await first
      await router.route([link(B + '1')])
      assert.deepEqual(sent, [B + '1', B + '1'])
      assert.equal(router.stats.alreadyRouted, 1)
    })

    it('always delivers seeds and hand-offs (skipScope), and remembers nothing with routedCacheSize 0', async () => {
      const { frontier, added } = recordingFrontier()
      const router = new Router({ frontier, scope, ownership }, { allowPrivate: true })
      await router.route([link(A + '1')])
      await router.route([link(A + '1')], { skipScope: true })
      assert.deepEqual(added, [A + '1', A + '1'])

      const off = recordingFrontier()
      const uncached = new Router({ frontier: off.frontier, scope, ownership }, { allowPrivate: true, routedCacheSize: 0 })
      await uncached.route([link(A + '1')])
      await uncached.route([link(A + '1')])
      assert.deepEqual(off.added, [A + '1', A + '1'])
      assert.equal(uncached.stats.alreadyRouted, 0)
    })

    it('offers a remembered link again once recrawlAfter has passed', async () => {
      const { frontier, added } = recordingFrontier()
      let now = 1000
      const router = new Router({ frontier, scope, ownership }, { allowPrivate: true, recrawlAfter: 500, now: () => now })
      await router.route([link(A + '1')])
      now += 499
      await router.route([link(A + '1')])
      assert.deepEqual(added, [A + '1'])
      now += 1
      await router.route([link(A + '1')])
      assert.deepEqual(added, [A + '1', A + '1'])
    })

    it('forgets the oldest links past its size: they reach their owner again', async () => {
      const { frontier, added } = recordingFrontier()
      const router = new Router({ frontier, scope, ownership }, { allowPrivate: true, routedCacheSize: 4 })
      for (let i = 0; i < 6; i++) await router.route([link(A + String(i))])
      added.length = 0
      await router.route([0, 1, 2, 3, 4, 5].map(i => link(A + String(i))))
      assert.ok(added.includes(A + '0'), 'the oldest link is offered again')
      assert.ok(!added.includes(A + '5'), 'the newest is still known')
    })
  })
})

describe('RecentMap', () => {
  it('holds fewer than its size, keeps what is used across a rotation, and nothing at size 0', () => {
    const m = new RecentMap<number>(4)
    m.set('a', 1)
    m.set('b', 2) // young holds 2 = half: rotates
    assert.equal(m.get('a'), 1) // from the old generation, copied to the young one
    m.set('c', 3) // rotates: old = {a, c}
    m.set('d', 4)
    assert.ok(m.size < 4 + 1)
    assert.equal(m.get('b'), undefined, 'b was not used and fell out')
    assert.equal(m.get('a'), 1)
    const none = new RecentMap<number>(0)
    none.set('a', 1)
    assert.equal(none.get('a'), undefined)
    assert.equal(none.size, 0)
    assert.throws(() => new RecentMap(-1), /≥ 0/)
  })
})

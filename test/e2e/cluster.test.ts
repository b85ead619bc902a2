import assert from 'node:assert/strict'
import { LocalCluster } from '../../node/local-cluster.js'
import { Ring } from '../../node/ring.js'
import { hostKeyFast } from '../../node/router.js'
import { startSyntheticWeb, type SyntheticWeb } from '../../sim/web.js'
import { useTempDirs } from '../utils/tmp.js'

/** The short peer id a User-Agent names: `shoal/x (peer <id>; +contact)`. */
function peerOfUserAgent (ua: string): string | undefined {
  return /\(peer ([^;]+);/.exec(ua)?.[1]
}

describe('cluster (real processes, libp2p over TCP on 127.0.0.1)', function () {
  this.timeout(180_000)
  const dirs = useTempDirs('shoal-cluster-')
  let web: SyntheticWeb | undefined
  let cluster: LocalCluster | undefined

  afterEach(async () => {
    await cluster?.stop()
    await web?.close()
    cluster = web = undefined
  })

  it('5 peers joined through one bootstrap address crawl a 12-host web: every URL once, every host by its ring owner only', async () => {
    web = await startSyntheticWeb({ seed: 3, hosts: 12, pages: 600, profile: 'small', log: true })
    cluster = new LocalCluster({
      peers: 5,
      dataDir: await dirs.make(),
      config: { allowPrivate: true, delay: 0, hostConcurrency: 2 }
    })
    await cluster.start()
    const seeded = await cluster.seed([...web.rootUrls])
    assert.equal(seeded.accepted.length, 12)
    const statuses = await cluster.waitIdle(120_000)

    // Every expected URL fetched exactly once, nothing else disallowed fetched.
    const truth = web.summary()
    assert.equal(truth.coverage, 1, `coverage ${truth.coverage}`)
    assert.equal(truth.duplicateFetches, 0)
    assert.equal(truth.disallowedRequests, 0)
    assert.equal(statuses.reduce((a, s) => a + s.local.fetched, 0), truth.pagesExpected)

    // Every host fetched by exactly one peer, and that peer is the ring's owner of the host.
    const peerIds = cluster.peers.map(p => p.peerId)
    const ring = Ring.of(peerIds)
    const byShort = new Map(peerIds.map(id => [id.slice(-8), id]))
    const fetchersByHost = new Map<number, Set<string>>()
    for (const e of web.stats().log ?? []) {
      const short = peerOfUserAgent(e.userAgent)
      assert.ok(short != null && byShort.has(short), `request from an unknown User-Agent: ${e.userAgent}`)
      let set = fetchersByHost.get(e.host)
      if (set == null) fetchersByHost.set(e.host, set = new Set())
      set.add(byShort.get(short) as string)
    }
    assert.equal(fetchersByHost.size, 12, 'every host was crawled')
    const owners = new Set<string>()
    for (const [host, fetchers] of fetchersByHost) {
      assert.equal(fetchers.size, 1, `host ${host} was fetched by ${fetchers.size} peers`)
      const owner = ring.owner(hostKeyFast(web.origins[host] + '/'))
      assert.equal([...fetchers][0], owner, `host ${host} fetched by its ring owner`)
      owners.add(owner as string)
    }
    assert.ok(owners.size >= 3, `the hosts are spread over the peers (${owners.size} peers fetched)`)
    // Links crossed between peers over /shoal/links/1.0.0.
    assert.ok(statuses.reduce((a, s) => a + s.local.linksReceived, 0) > 0, 'links were routed between peers')

    // Any peer answers for any URL (asking its owner over /shoal/query/1.0.0): the same record from
    // every peer, and the body the server sent.
    const sample = web.expectedUrls().filter((_, i) => i % 20 === 0)
    for (const url of sample) {
      const answers: any[] = await Promise.all(cluster.peers.map(async (p): Promise<any> => {
        const res = await fetch(`http://${p.api}/v1/url?u=${encodeURIComponent(url)}`)
        assert.equal(res.status, 200, `${url} via peer ${p.index}`)
        return await res.json()
      }))
      for (const a of answers) assert.deepEqual(a, answers[0])
      assert.equal(answers[0].status, 'fetched')
      const via = cluster.peers[sample.indexOf(url) % cluster.peers.length]
      const body = await fetch(`http://${via.api}/v1/url?u=${encodeURIComponent(url)}&body=1`)
      assert.equal(body.status, 200)
      assert.deepEqual(Buffer.from(await body.arrayBuffer()), web.body(url))
    }
    const unknown = await fetch(`http://${cluster.peers[1].api}/v1/url?u=${encodeURIComponent(web.origins[0] + '/never-linked')}`)
    assert.equal(unknown.status, 404)
    assert.match(((await unknown.json()) as any).verdict, /never seen/)
  })
})

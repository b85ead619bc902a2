import assert from 'node:assert/strict'
import { breakdown, classify } from '../../bench/cpu-breakdown.js'

const root = 'file:///repo'
const frame = (functionName: string, url: string): { functionName: string, url: string } => ({ functionName, url })

describe('bench/cpu-breakdown', () => {
  it('classifies frames by package or shoal file, and leaves the rest to their caller', () => {
    assert.equal(classify(frame('parse', `${root}/node_modules/htmlparser2/dist/esm/Parser.js`)), 'parse')
    assert.equal(classify(frame('request', `${root}/node_modules/undici/lib/api/api-request.js`)), 'fetch')
    assert.equal(classify(frame('write', `${root}/node/db.ts`)), 'storage')
    assert.equal(classify(frame('route', `${root}/node/router.ts`)), 'routing')
    assert.equal(classify(frame('encodeBatch', `${root}/protocols/links/transport.ts`)), 'routing')
    assert.equal(classify(frame('apply', `${root}/protocols/meta/transport.ts`)), 'replication')
    assert.equal(classify(frame('handleFrame', `${root}/node_modules/@libp2p/yamux/dist/src/muxer.js`)), 'libp2p: yamux')
    assert.equal(classify(frame('heartbeat', `${root}/node_modules/@libp2p/gossipsub/dist/src/index.js`)), 'libp2p: gossipsub')
    assert.equal(classify(frame('(garbage collector)', '')), 'GC')
    assert.equal(classify(frame('(idle)', '')), 'idle')
    assert.equal(classify(frame('pack', `${root}/node_modules/msgpackr/pack.js`)), undefined)
  })

  it('charges each sample to its category, an uncategorised frame to its caller, and can keep only the crawl', () => {
    const profile = {
      startTime: 0,
      endTime: 0,
      nodes: [
        { id: 1, callFrame: frame('(root)', ''), children: [2, 4, 6] },
        { id: 2, callFrame: frame('send', `${root}/protocols/links/transport.ts`), children: [3] },
        { id: 3, callFrame: frame('pack', `${root}/node_modules/msgpackr/pack.js`) },
        { id: 4, callFrame: frame('request', `${root}/node_modules/undici/lib/api/api-request.js`) },
        { id: 5, callFrame: frame('(idle)', '') },
        { id: 6, callFrame: frame('import', 'node:internal/modules/esm/loader') }
      ],
      // start-up (6), fetch, msgpack under the links transport, idle, fetch, shut-down (6)
      samples: [6, 4, 3, 5, 4, 6],
      timeDeltas: [5000, 1000, 2000, 4000, 1000, 3000]
    }
    profile.nodes[0].children?.push(5)
    const all = breakdown(profile)
    assert.equal(all.routing, 2)
    assert.equal(all.fetch, 2)
    assert.equal(all.idle, 4)
    assert.equal(all.other, 8)
    const crawl = breakdown(profile, true)
    assert.equal(crawl.other, 0)
    assert.equal(crawl.routing, 2)
    assert.equal(crawl.fetch, 2)
  })
})

import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createNetwork, dhtProtocol, loadOrCreatePeerKey, reason, removeLoopbackMapper } from '../../node/net.js'
import { connectedPeers, freePort, useNetworks, waitFor } from '../utils/libp2p.js'

describe('net', function () {
  this.timeout(30_000)
  const nets = useNetworks()

  it('keeps its identity across restarts: same data dir, same peer id', async () => {
    const dataDir = await nets.dir()
    const first = await nets.start({ dataDir })
    const id = first.peerId
    const key = await readFile(join(dataDir, 'peer.key'))
    await first.stop()
    const again = await nets.start({ dataDir })
    assert.equal(again.peerId, id)
    assert.deepEqual(await readFile(join(dataDir, 'peer.key')), key, 'the key file is not rewritten')
    const other = await nets.start()
    assert.notEqual(other.peerId, id, 'another data dir, another identity')
    assert.ok(again.multiaddrs().length > 0)
    for (const ma of again.multiaddrs()) assert.match(ma, new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${id}$`))
  })

  it('refuses a damaged key file instead of starting as a new peer', async () => {
    const dataDir = await nets.dir()
    await writeFile(join(dataDir, 'peer.key'), 'not a key')
    await assert.rejects(createNetwork({ dataDir }), (err: Error) => {
      assert.equal(err.name, 'PeerKeyError')
      assert.match(err.message, /peer\.key is not a protobuf-marshalled private key/)
      return true
    })
  })

  it('fails fast on options that are wrong, naming them', async () => {
    const dataDir = await nets.dir()
    await assert.rejects(createNetwork({ dataDir, bootstrap: ['127.0.0.1:4001'] }), { name: 'ConfigError', message: /bootstrap address "127.0.0.1:4001" is not a multiaddr/ })
    await assert.rejects(createNetwork({ dataDir, cluster: 'a/b' }), { name: 'ConfigError', message: /cluster must be/ })
    await assert.rejects(createNetwork({ dataDir, bootstrapRetry: 0 }), { name: 'ConfigError', message: /bootstrapRetry must be a positive number/ })
  })

  it('speaks a DHT protocol of its own cluster, never the public IPFS one', async () => {
    const n = await nets.start({ cluster: 'lab' })
    const protocols = n.libp2p.getProtocols()
    assert.ok(protocols.includes(dhtProtocol('lab')), protocols.join(', '))
    assert.equal(dhtProtocol('lab'), '/shoal/lab/kad/1.0.0')
    assert.ok(!protocols.some(p => p.startsWith('/ipfs/kad') || p.startsWith('/ipfs/lan/kad')), protocols.join(', '))
  })

  it('outside a loopback cluster, DHT answers keep LAN addresses and drop loopback ones', async () => {
    const id = peerIdFromPrivateKey(await loadOrCreatePeerKey(await nets.dir()))
    const mapped = removeLoopbackMapper({ id, multiaddrs: ['/ip4/127.0.0.1/tcp/1', '/ip4/10.1.2.3/tcp/1', '/ip4/192.168.1.9/tcp/1', '/ip6/::1/tcp/1', '/ip4/8.8.8.8/tcp/1'].map(a => multiaddr(a)) })
    assert.deepEqual(mapped.multiaddrs.map(String), ['/ip4/10.1.2.3/tcp/1', '/ip4/192.168.1.9/tcp/1', '/ip4/8.8.8.8/tcp/1'])
  })

  it('says in a few words why a dial failed', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })
    assert.equal(reason(new AggregateError([refused], 'All promises were rejected')), 'connection refused')
    assert.equal(reason(Object.assign(new Error('x'), { name: 'TimeoutError' })), 'timed out')
    assert.equal(reason(new Error('something odd\nwith a stack')), 'something odd')
  })

  it('a joiner that knows only the bootstrap peer ends up connected to every peer (kad-dht)', async () => {
    const boot = await nets.start()
    const joiners = await Promise.all([1, 2].map(async () => await nets.start({ bootstrap: boot.multiaddrs() })))
    const all = [boot, ...joiners]
    const ids = all.map(n => n.peerId)
    await waitFor(() => all.every(n => connectedPeers(n).length === all.length - 1), {
      timeout: 15_000,
      message: 'a full mesh of 3 peers',
      describe: () => all.map(n => connectedPeers(n).length)
    })
    for (const n of all) {
      assert.deepEqual(connectedPeers(n), ids.filter(id => id !== n.peerId).sort())
    }
    // a late joiner, also pointed at the bootstrap peer only, finds the others too
    const late = await nets.start({ bootstrap: boot.multiaddrs() })
    await waitFor(() => connectedPeers(late).length === all.length, {
      timeout: 15_000,
      message: 'the late joiner to connect to all 3',
      describe: () => connectedPeers(late)
    })
    assert.deepEqual(connectedPeers(late), [...ids].sort())
  })

  it('keeps retrying an unreachable bootstrap peer, says why, and joins once it is up', async () => {
    // the bootstrap peer's identity and port are fixed in advance, as in a cluster config
    const bootDir = await nets.dir()
    const bootId = peerIdFromPrivateKey(await loadOrCreatePeerKey(bootDir)).toString()
    const port = await freePort()
    const bootAddr = `/ip4/127.0.0.1/tcp/${port}/p2p/${bootId}`
    const lines: string[] = []
    const joiner = await nets.start({ bootstrap: [bootAddr], log: line => { lines.push(line) } })
    const refused = (): string[] => lines.filter(l => l.startsWith(`bootstrap ${bootAddr}: connection refused; retrying in `))
    await waitFor(() => refused().length >= 3, { message: 'three failed rounds in the log', describe: () => lines })
    // backing off: 0.1 s, 0.2 s, 0.4 s, …
    assert.deepEqual(refused().slice(0, 3).map(l => l.slice(l.lastIndexOf(' in ') + 4)), ['0.1 s', '0.2 s', '0.4 s'])
    assert.deepEqual(connectedPeers(joiner), [])

    const boot = await nets.start({ dataDir: bootDir, listen: [`/ip4/127.0.0.1/tcp/${port}`] })
    assert.equal(boot.peerId, bootId)
    await joiner.joined()
    assert.deepEqual(connectedPeers(joiner), [bootId])
    assert.ok(lines.includes(`joined the cluster through ${bootAddr}`), lines.join('\n'))
  })

  it('names a wrong peer id in the log', async () => {
    const a = await nets.start()
    const b = await nets.start()
    const wrong = a.multiaddrs()[0].replace(a.peerId, b.peerId) // a's address, b's id
    const lines: string[] = []
    await nets.start({ bootstrap: [wrong], log: line => { lines.push(line) } })
    await waitFor(() => lines.some(l => l.startsWith(`bootstrap ${wrong}: wrong peer id: the address answers as ${a.peerId}; retrying in`)), {
      message: 'the wrong peer id in the log',
      describe: () => lines
    })
  })

  it('skips its own address in the bootstrap list', async () => {
    const dataDir = await nets.dir()
    const first = await nets.start({ dataDir })
    const own = first.multiaddrs()
    await first.stop()
    const lines: string[] = []
    const restarted = await nets.start({ dataDir, listen: [own[0].replace(/\/p2p\/.*$/, '')], bootstrap: own, log: line => { lines.push(line) } })
    assert.deepEqual(lines, ['bootstrap: only our own address is listed; waiting for other peers to dial us'])
    // it is the first peer of its cluster: others join through it
    const joiner = await nets.start({ bootstrap: own })
    await joiner.joined()
    await waitFor(() => connectedPeers(restarted).includes(joiner.peerId), { message: 'the joiner to be connected', describe: () => connectedPeers(restarted) })
    assert.ok(!lines.some(l => l.includes('retrying')), lines.join('\n'))
  })

  it('rejoins through a known peer after losing every connection', async () => {
    const boot = await nets.start()
    const a = await nets.start({ bootstrap: boot.multiaddrs() })
    const b = await nets.start({ bootstrap: boot.multiaddrs() })
    await waitFor(() => connectedPeers(a).includes(b.peerId), { message: 'a to find b', describe: () => connectedPeers(a) })
    // b is cut off from everyone; its only bootstrap peer is gone for good
    await boot.stop()
    await Promise.all(b.libp2p.getConnections().map(async c => { await c.close() }))
    await waitFor(() => connectedPeers(b).includes(a.peerId), { message: 'b to reconnect to a', describe: () => connectedPeers(b) })
  })
})

// Small libp2p nodes for the protocol tests (links, meta, blocks, query): TCP, noise, yamux and
// identify on 127.0.0.1, and the helpers those tests share.
import '../../node/polyfills.js'
import { noise } from '@chainsafe/libp2p-noise'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

export async function createNode (privateKey?: PrivateKey): Promise<Libp2p> {
  return await createLibp2p({
    ...(privateKey != null ? { privateKey } : {}),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() },
    // Tests open many connections from 127.0.0.1; libp2p otherwise refuses more than 5/s per IP.
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] }
  })
}

/** Let `from` dial `to` by peer id. */
export async function introduce (from: Libp2p, to: Libp2p): Promise<void> {
  await from.peerStore.merge(to.peerId, { multiaddrs: to.getMultiaddrs() })
}

/** Poll `cond` until it holds. */
export async function waitUntil (cond: () => boolean, what: string, timeout = 10_000): Promise<void> {
  const end = Date.now() + timeout
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

export interface Deferred { promise: Promise<void>, resolve: () => void }
export function deferred (): Deferred {
  let resolve!: () => void
  const promise = new Promise<void>(r => { resolve = r })
  return { promise, resolve }
}

/** Settle state of a promise, for asserting that it is still pending. */
export function track<T> (p: Promise<T>): { settled: boolean, value?: T, error?: any, promise: Promise<T> } {
  const t: { settled: boolean, value?: T, error?: any, promise: Promise<T> } = { settled: false, promise: p }
  p.then((v) => { t.settled = true; t.value = v }, (err) => { t.settled = true; t.error = err })
  return t
}

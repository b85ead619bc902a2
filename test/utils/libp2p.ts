import { createServer } from 'node:net'
import { createNetwork } from '../../node/net.js'
import { tempDir } from './tmp.js'
import type { Network, NetworkInit } from '../../node/net.js'
import type { TempDir } from './tmp.js'

/**
 * Poll `condition` until it holds, failing with `message` (and the last value of `describe`, if
 * given) after `timeout` ms. For state that has no event to await.
 */
export async function waitFor (condition: () => boolean | Promise<boolean>, opts: { timeout?: number, interval?: number, message?: string, describe?: () => unknown } = {}): Promise<void> {
  const timeout = opts.timeout ?? 10_000
  const interval = opts.interval ?? 25
  const deadline = Date.now() + timeout
  while (true) {
    if (await condition()) return
    if (Date.now() > deadline) {
      const state = opts.describe == null ? '' : `; last state: ${JSON.stringify(opts.describe())}`
      throw new Error(`timed out after ${timeout} ms waiting for ${opts.message ?? 'a condition'}${state}`)
    }
    await new Promise(resolve => setTimeout(resolve, interval))
  }
}

/** A TCP port that was free a moment ago (for a peer that must listen on a port known in advance). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => { resolve(port) })
    })
  })
}

export interface TestNetworks {
  /** A data dir removed after the test. */
  dir(): Promise<string>
  /** Start a loopback network (allowLoopback, fast retries); stopped after the test. */
  start(init?: Partial<NetworkInit>): Promise<Network>
  /** Register something else to stop after the test, before the networks stop. */
  onCleanup(fn: () => unknown): void
}

/**
 * Loopback libp2p nodes for one mocha suite, all stopped (and their data dirs removed) after each
 * test, whether it passed or not. Call at the top of a `describe`.
 */
export function useNetworks (): TestNetworks {
  const dirs: TempDir[] = []
  const nets: Network[] = []
  const cleanups: Array<() => unknown> = []
  afterEach(async function () {
    this.timeout(20_000)
    for (const fn of cleanups.splice(0).reverse()) {
      try { await fn() } catch {}
    }
    await Promise.allSettled(nets.splice(0).map(async n => { await n.stop() }))
    await Promise.allSettled(dirs.splice(0).map(async d => { await d.remove() }))
  })
  const dir = async (): Promise<string> => {
    const d = await tempDir('shoal-net-')
    dirs.push(d)
    return d.path
  }
  return {
    dir,
    start: async (init = {}) => {
      const n = await createNetwork({
        allowLoopback: true,
        bootstrapRetry: 100,
        discoveryMinInterval: 250,
        discoveryInterval: 2000,
        ...init,
        dataDir: init.dataDir ?? await dir()
      })
      nets.push(n)
      return n
    },
    onCleanup: (fn) => { cleanups.push(fn) }
  }
}

/** Peer ids this network has an open connection to, sorted. */
export function connectedPeers (n: Network): string[] {
  return [...new Set(n.libp2p.getConnections().filter(c => c.status === 'open').map(c => c.remotePeer.toString()))].sort()
}

import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createNetwork } from '../../node/net.js'
import { tempDir } from './tmp.js'
import type { Network, NetworkInit } from '../../node/net.js'
import type { TempDir } from './tmp.js'
import type { ChildProcess } from 'node:child_process'

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

const NET_MODULE = fileURLToPath(new URL('../../node/net.ts', import.meta.url))
const MEMBERSHIP_MODULE = fileURLToPath(new URL('../../node/membership.ts', import.meta.url))

export interface ChildPeer {
  process: ChildProcess
  peerId: string
}

/**
 * A peer (network and membership, heartbeat 200 ms) in a child process, so that it can be killed
 * (SIGKILL: the OS closes its sockets) or hung (SIGSTOP: its sockets stay open). Killed after the test.
 */
export async function spawnPeer (nets: TestNetworks, init: { bootstrap: string[], cluster: string }): Promise<ChildPeer> {
  const code = `
    import { createNetwork } from ${JSON.stringify(NET_MODULE)}
    import { Membership } from ${JSON.stringify(MEMBERSHIP_MODULE)}
    const init = JSON.parse(process.env.SHOAL_CHILD_INIT)
    const net = await createNetwork({ ...init, allowLoopback: true, bootstrapRetry: 100, discoveryMinInterval: 250, discoveryInterval: 2000 })
    new Membership({ libp2p: net.libp2p }, { cluster: init.cluster, heartbeatInterval: 200, silenceTimeout: 3000 }).start()
    process.stdout.write(JSON.stringify({ peerId: net.peerId }) + '\\n')
  `
  const dataDir = await nets.dir()
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    env: { ...process.env, SHOAL_CHILD_INIT: JSON.stringify({ ...init, dataDir }) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  nets.onCleanup(() => {
    if (child.exitCode == null && child.signalCode == null) {
      child.kill('SIGCONT')
      child.kill('SIGKILL')
    }
  })
  let stderr = ''
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString() })
  const peerId = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString()
      const nl = out.indexOf('\n')
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)).peerId)
    })
    child.once('exit', (code, signal) => { reject(new Error(`child peer exited (${code ?? signal}) before it started: ${stderr}`)) })
  })
  return { process: child, peerId }
}

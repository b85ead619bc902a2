import './polyfills.js'
import { setMaxListeners } from 'node:events'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { isLoopback } from '@libp2p/utils'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import debug from 'debug'
import { createLibp2p } from 'libp2p'
import { second } from './constants.js'
import { ConfigError, ShoalError } from './errors.js'
import { FileGate } from './test-gate.js'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { Libp2p, PeerId, PeerInfo, PrivateKey } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Ping } from '@libp2p/ping'
import type { Multiaddr } from '@multiformats/multiaddr'

const debugLog = debug('shoal:net')

export const DEFAULT_LISTEN = ['/ip4/127.0.0.1/tcp/0']
export const DEFAULT_CLUSTER = 'shoal'
/** First wait between two rounds of bootstrap dials; it doubles after each failed round… */
export const DEFAULT_BOOTSTRAP_RETRY = 1 * second
/** …up to this. */
export const MAX_BOOTSTRAP_RETRY = 10 * second
/** One bootstrap or discovery dial, socket to upgraded connection. */
export const DEFAULT_DIAL_TIMEOUT = 5 * second
/** Wait between two DHT discovery rounds while they find new peers (see `discoveryLoop`)… */
export const DEFAULT_DISCOVERY_MIN_INTERVAL = 1 * second
/** …and once one found nothing new. */
export const DEFAULT_DISCOVERY_INTERVAL = 30 * second
/** One DHT lookup of a discovery round. */
export const DISCOVERY_QUERY_TIMEOUT = 10 * second
/** Discovered peers are dialled while we have fewer connections than this. */
export const DEFAULT_MAX_PEERS = 64
/** Peers from the peer store tried, besides the bootstrap list, when a peer lost every connection. */
const MAX_REJOIN_CANDIDATES = 8
const KEY_FILE = 'peer.key'
/** The longest delay setTimeout accepts (2^31 − 1 ms, about 24.8 days). */
const FOREVER = 2 ** 31 - 1

/**
 * Address ranges exempt from libp2p's per-IP inbound rate limit (5 connections/s) and from
 * maxConnections when `allowLoopback` is set: a local cluster opens many connections from one IP.
 */
const LOCAL_RANGES = [
  '/ip4/127.0.0.0/ipcidr/8',
  '/ip4/10.0.0.0/ipcidr/8',
  '/ip4/172.16.0.0/ipcidr/12',
  '/ip4/192.168.0.0/ipcidr/16',
  '/ip6/::1/ipcidr/128',
  '/ip6/fc00::/ipcidr/7'
]

export interface ShoalServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  dht: KadDHT
  pubsub: GossipSub
}

export type ShoalLibp2p = Libp2p<ShoalServices>

export interface NetworkInit {
  /** The peer's data directory; its key is kept in `${dataDir}/peer.key`. */
  dataDir: string
  /** @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /** Multiaddrs of peers to join through, with `/p2p/<peer id>`. Our own is skipped. */
  bootstrap?: string[]
  /** Names the DHT protocol and the gossipsub topics: clusters never mix. @default 'shoal' */
  cluster?: string
  /**
   * A local cluster (loopback, private ranges): keep loopback addresses in the DHT, exempt local
   * ranges from the inbound rate limit, and do not penalise many gossipsub peers on one IP.
   * @default false
   */
  allowLoopback?: boolean
  /** First wait in ms between bootstrap rounds, doubling to 10 s. @default 1000 */
  bootstrapRetry?: number
  /** @default 5000 */
  dialTimeout?: number
  /** Wait in ms between DHT discovery rounds while they find new peers (after joining). @default 1000 */
  discoveryMinInterval?: number
  /** Wait in ms between DHT discovery rounds once one found nothing new. @default 30000 */
  discoveryInterval?: number
  /** Discovered peers are dialled while we have fewer connections than this. @default 64 */
  maxPeers?: number
  /** Receives the lines an operator should see (bootstrap failures, joined). Also on debug `shoal:net`. */
  log?: (msg: string) => void
}

export interface Network {
  libp2p: ShoalLibp2p
  peerId: string
  /** Full listen multiaddrs, each ending in `/p2p/<peer id>`. */
  multiaddrs(): string[]
  /** Resolves once connected to a peer of the cluster; at once when there is no one to join (no bootstrap but self). */
  joined(): Promise<void>
  stop(): Promise<void>
}

/** The peer key in `${dataDir}/peer.key` could not be read or is not a key. */
export class PeerKeyError extends ShoalError {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'PeerKeyError'
  }
}

/**
 * The peer's identity: an Ed25519 key generated on first start and kept (protobuf-marshalled) in
 * the data dir, so a restarted peer keeps its peer id and with it its place on the ring.
 */
export async function loadOrCreatePeerKey (dataDir: string): Promise<PrivateKey> {
  const file = join(dataDir, KEY_FILE)
  let bytes: Uint8Array | undefined
  try {
    bytes = await readFile(file)
  } catch (err: any) {
    if (err?.code !== 'ENOENT') throw new PeerKeyError(`cannot read peer key ${file}: ${String(err?.message ?? err)}`, { cause: err })
  }
  if (bytes != null) {
    try {
      return privateKeyFromProtobuf(bytes)
    } catch (err: any) {
      // Never replace a damaged key silently: the peer would come back as a stranger.
      throw new PeerKeyError(`peer key ${file} is not a protobuf-marshalled private key (${String(err?.message ?? err)}); move it away to start with a new identity`, { cause: err })
    }
  }
  const key = await generateKeyPair('Ed25519')
  await mkdir(dataDir, { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, privateKeyToProtobuf(key), { mode: 0o600 })
  await rename(tmp, file)
  return key
}

interface Resolved {
  listen: string[]
  bootstrap: Multiaddr[]
  cluster: string
  allowLoopback: boolean
  bootstrapRetry: number
  dialTimeout: number
  discoveryMinInterval: number
  discoveryInterval: number
  maxPeers: number
}

function positive (name: string, value: number | undefined, def: number): number {
  const v = value ?? def
  if (!Number.isFinite(v) || v <= 0) throw new ConfigError(`${name} must be a positive number of milliseconds, got ${String(value)}`)
  return v
}

function resolve (init: NetworkInit): Resolved {
  if (typeof init.dataDir !== 'string' || init.dataDir === '') throw new ConfigError('dataDir must be a directory path')
  const cluster = init.cluster ?? DEFAULT_CLUSTER
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(cluster)) throw new ConfigError(`cluster must be 1–64 characters of A–Z, a–z, 0–9, '.', '_' or '-', got ${JSON.stringify(cluster)}`)
  const listen = init.listen ?? DEFAULT_LISTEN
  for (const a of listen) {
    try { multiaddr(a) } catch { throw new ConfigError(`listen address ${JSON.stringify(a)} is not a multiaddr`) }
  }
  const bootstrap = (init.bootstrap ?? []).map(a => {
    try { return multiaddr(a) } catch { throw new ConfigError(`bootstrap address ${JSON.stringify(a)} is not a multiaddr (expected e.g. /ip4/127.0.0.1/tcp/4001/p2p/<peer id>)`) }
  })
  const maxPeers = init.maxPeers ?? DEFAULT_MAX_PEERS
  if (!Number.isInteger(maxPeers) || maxPeers < 1) throw new ConfigError(`maxPeers must be a positive integer, got ${String(init.maxPeers)}`)
  const discoveryMinInterval = positive('discoveryMinInterval', init.discoveryMinInterval, DEFAULT_DISCOVERY_MIN_INTERVAL)
  return {
    listen,
    bootstrap,
    cluster,
    allowLoopback: init.allowLoopback ?? false,
    bootstrapRetry: positive('bootstrapRetry', init.bootstrapRetry, DEFAULT_BOOTSTRAP_RETRY),
    dialTimeout: positive('dialTimeout', init.dialTimeout, DEFAULT_DIAL_TIMEOUT),
    discoveryMinInterval,
    discoveryInterval: Math.max(discoveryMinInterval, positive('discoveryInterval', init.discoveryInterval, DEFAULT_DISCOVERY_INTERVAL)),
    maxPeers
  }
}

/** The DHT protocol of a cluster: a private DHT that never meets the public IPFS one (`/ipfs/kad/1.0.0`). */
export function dhtProtocol (cluster: string): string {
  return `/shoal/${cluster}/kad/1.0.0`
}

/** Start a peer's libp2p node and the loops that join the cluster and find its other peers. */
export async function createNetwork (init: NetworkInit): Promise<Network> {
  const opts = resolve(init)
  const privateKey = await loadOrCreatePeerKey(init.dataDir)
  // Test-only partitions (SHOAL_TEST_GATE): see test-gate.ts. Absent in production.
  const gate = FileGate.fromEnv()
  const libp2p = await createLibp2p<ShoalServices>({
    privateKey,
    ...(gate != null ? { connectionGater: gate.gater() } : {}),
    addresses: { listen: opts.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: opts.allowLoopback ? { allow: LOCAL_RANGES } : {},
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: dhtProtocol(opts.cluster),
        // Every peer answers DHT queries from the start. Left unset, kad-dht starts as a client
        // and turns server only once it sees a publicly dialable address: never on loopback/LAN.
        clientMode: false,
        // The first self-query waits for the first routing-table peer anyway; starting it at once
        // (not after the default 1 s) lets a joiner learn the cluster as soon as it connects. Every
        // other query waits for that first self-query.
        initialQuerySelfInterval: 0,
        // kad-dht's default mapper (made for the public DHT) drops loopback and private addresses
        // from DHT answers: a joiner on 127.0.0.1 or a LAN would learn peer ids it cannot dial.
        peerInfoMapper: opts.allowLoopback ? passthroughMapper : removeLoopbackMapper
      }),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        // Every peer of a local cluster shares one IP; the default colocation penalty would
        // push them below the gossip threshold.
        ...(opts.allowLoopback ? { scoreParams: { IPColocationFactorWeight: 0 } } : {})
      })
    }
  })
  const net = new Net(libp2p, opts, init.log, gate)
  net.start()
  return net
}

/**
 * For a cluster spread over hosts: keep private (LAN) addresses, which a private cluster DHT is
 * made of, and drop loopback ones, which name another process on the asking host.
 */
export function removeLoopbackMapper (peer: PeerInfo): PeerInfo {
  return { ...peer, multiaddrs: peer.multiaddrs.filter(ma => !isLoopback(ma)) }
}

class Net implements Network {
  readonly libp2p: ShoalLibp2p
  readonly peerId: string
  private readonly opts: Resolved
  private readonly userLog?: (msg: string) => void
  private readonly shutdown = new AbortController()
  private readonly dialing = new Set<string>()
  private loops: Array<Promise<void>> = []
  private wake: () => void = () => {}
  private joinedOnce = Promise.withResolvers<void>()
  private stopped = false

  constructor (libp2p: ShoalLibp2p, opts: Resolved, log?: (msg: string) => void, private readonly gate?: FileGate) {
    this.libp2p = libp2p
    this.peerId = libp2p.peerId.toString()
    this.opts = opts
    this.userLog = log
    this.onDiscovery = this.onDiscovery.bind(this)
    this.onConnectionChange = this.onConnectionChange.bind(this)
    setMaxListeners(Infinity, this.shutdown.signal)
  }

  multiaddrs (): string[] {
    return this.libp2p.getMultiaddrs().map(ma => {
      const s = ma.toString()
      return s.includes('/p2p/') ? s : `${s}/p2p/${this.peerId}`
    })
  }

  async joined (): Promise<void> {
    await this.joinedOnce.promise
  }

  start (): void {
    this.libp2p.addEventListener('peer:discovery', this.onDiscovery)
    this.libp2p.addEventListener('peer:connect', this.onConnectionChange)
    this.libp2p.addEventListener('peer:disconnect', this.onConnectionChange)
    this.loops = [this.joinLoop(), this.discoveryLoop()]
    this.gate?.start(this.libp2p)
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.shutdown.abort()
    this.gate?.stop()
    this.wake()
    this.libp2p.removeEventListener('peer:discovery', this.onDiscovery)
    this.libp2p.removeEventListener('peer:connect', this.onConnectionChange)
    this.libp2p.removeEventListener('peer:disconnect', this.onConnectionChange)
    await Promise.allSettled(this.loops)
    await this.libp2p.stop()
  }

  private say (msg: string): void {
    debugLog(msg)
    try {
      this.userLog?.(msg)
    } catch {}
  }

  /** Aborted after `ms` or on stop. libp2p adds a listener per queued job to the signals it is given. */
  private deadline (ms: number): AbortSignal {
    const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(ms)])
    setMaxListeners(Infinity, signal)
    return signal
  }

  private onConnectionChange (): void {
    this.wake()
  }

  private connected (): boolean {
    return this.libp2p.getConnections().some(c => c.status === 'open')
  }

  /** Sleep `ms`, cut short by a connection change or by stop. */
  private async pause (ms: number): Promise<void> {
    if (this.stopped) return
    await new Promise<void>(resolve => {
      const t = setTimeout(done, ms)
      function done (): void { clearTimeout(t); resolve() }
      this.wake = done
    })
    this.wake = () => {}
  }

  /**
   * Keep the peer in the cluster: while it has no connection, dial the bootstrap addresses (and,
   * after a loss, peers it knew) round after round, backing off, saying why each dial failed.
   * `@libp2p/bootstrap` dials once; a peer started before its bootstrap peer would stay alone.
   */
  private async joinLoop (): Promise<void> {
    const self = this.peerId
    const targets = this.opts.bootstrap.filter(ma => ma.getComponents().find(c => c.name === 'p2p')?.value !== self)
    if (this.opts.bootstrap.length > 0 && targets.length === 0) {
      this.say('bootstrap: only our own address is listed; waiting for other peers to dial us')
    }
    if (targets.length === 0) this.joinedOnce.resolve() // the first peer of its cluster
    let delay = this.opts.bootstrapRetry
    let wasConnected = false
    while (!this.stopped) {
      if (this.connected()) {
        this.joinedOnce.resolve()
        delay = this.opts.bootstrapRetry
        wasConnected = true
        await this.pause(FOREVER)
        continue
      }
      if (targets.length === 0 && !wasConnected) {
        await this.pause(FOREVER)
        continue
      }
      const others = wasConnected ? await this.knownPeers(targets) : []
      const attempts = [
        ...targets.map(async ma => { await this.dial(ma); return ma.toString() }),
        ...others.map(async id => { await this.dial(id); return id.toString() })
      ]
      const results = await Promise.allSettled(attempts)
      if (this.stopped) return
      const ok = results.findIndex(r => r.status === 'fulfilled')
      if (ok >= 0) {
        this.say(`joined the cluster through ${(results[ok] as PromiseFulfilledResult<string>).value}`)
        continue
      }
      if (this.connected()) continue // someone dialled us meanwhile
      const wait = `${Number((delay / second).toFixed(1))} s`
      results.forEach((r, i) => {
        if (i >= targets.length) return
        this.say(`bootstrap ${targets[i].toString()}: ${reason((r as PromiseRejectedResult).reason)}; retrying in ${wait}`)
      })
      if (targets.length === 0) this.say(`lost every connection and no known peer answers; retrying in ${wait}`)
      await this.pause(delay)
      delay = Math.min(delay * 2, Math.max(MAX_BOOTSTRAP_RETRY, this.opts.bootstrapRetry))
    }
  }

  /** A few peers of the peer store that have addresses (not the bootstrap targets, which are dialled anyway). */
  private async knownPeers (targets: Multiaddr[]): Promise<PeerId[]> {
    const skip = new Set(targets.map(ma => ma.getComponents().find(c => c.name === 'p2p')?.value))
    const peers = await this.libp2p.peerStore.all({
      filters: [p => p.addresses.length > 0 && !skip.has(p.id.toString()) && !p.id.equals(this.libp2p.peerId)]
    })
    return peers.slice(0, MAX_REJOIN_CANDIDATES).map(p => p.id)
  }

  private async dial (target: Multiaddr | PeerId): Promise<void> {
    await this.libp2p.dial(target, { signal: this.deadline(this.opts.dialTimeout) })
  }

  /**
   * DHT discovery rounds: alternately the peers closest to our own id and to a random key, each
   * found peer dialled if not connected (libp2p 3 has no auto-dialer, and gossipsub only delivers
   * over open connections; in a cluster of up to k (20) peers the lookup of our own id names all of
   * them). While rounds find peers no round found since the last (re)join, the next comes after
   * `discoveryMinInterval` (the cluster is still being learnt); the first that finds nothing new
   * puts the next at `discoveryInterval`; a round that fails or finds no peer at all doubles the
   * wait. Each round costs every peer it asks a stream, a query and peer-store writes: the old
   * schedule (1, 2, 4, 8, 16, then 30 s after every join) cost 4 peers in their first half-minute
   * ~118 CPU ms a second against 62 now (bench/idle.ts); after that both run a round every 30 s.
   * A peer that joins later finds the ones already here by its own rounds.
   */
  private async discoveryLoop (): Promise<void> {
    let interval = this.opts.discoveryMinInterval
    let round = 0
    let wasConnected = false
    const known = new Set<string>()
    while (!this.stopped) {
      const connected = this.connected()
      if (connected && !wasConnected) {
        interval = this.opts.discoveryMinInterval
        known.clear()
      }
      wasConnected = connected
      if (!connected) {
        await this.pauseFor(this.opts.discoveryMinInterval)
        continue
      }
      round++
      const key = round % 2 === 1 ? this.libp2p.peerId.toMultihash().bytes : randomKey()
      const signal = this.deadline(DISCOVERY_QUERY_TIMEOUT)
      let found = 0
      let fresh = 0
      let failed = false
      try {
        for await (const peer of this.libp2p.peerRouting.getClosestPeers(key, { signal })) {
          found++
          const id = peer.id.toString()
          if (!known.has(id)) {
            known.add(id)
            fresh++
          }
          this.dialIfNew(peer)
        }
        debugLog('discovery round %d: %d peers close to %s, %d new', round, found, round % 2 === 1 ? 'self' : 'a random key', fresh)
      } catch (err) {
        if (this.stopped) return
        failed = true
        debugLog('discovery round %d failed: %s', round, reason(err))
      }
      if (fresh > 0) interval = this.opts.discoveryMinInterval
      else if (failed || found === 0) interval = Math.min(interval * 2, this.opts.discoveryInterval)
      else interval = this.opts.discoveryInterval
      await this.pauseFor(interval)
    }
  }

  /** Sleep `ms` or until stop; not woken by connection changes. */
  private async pauseFor (ms: number): Promise<void> {
    if (this.stopped) return
    await new Promise<void>(resolve => {
      const signal = this.shutdown.signal
      const done = (): void => { clearTimeout(t); signal.removeEventListener('abort', done); resolve() }
      const t = setTimeout(done, ms)
      signal.addEventListener('abort', done, { once: true })
    })
  }

  private onDiscovery (evt: CustomEvent<PeerInfo>): void {
    this.dialIfNew(evt.detail)
  }

  private dialIfNew (peer: PeerInfo): void {
    if (this.stopped || peer.id.equals(this.libp2p.peerId)) return
    const id = peer.id.toString()
    if (this.dialing.has(id) || this.libp2p.getConnections(peer.id).length > 0) return
    if (this.libp2p.getConnections().length >= this.opts.maxPeers) return
    this.dialing.add(id)
    const target = peer.multiaddrs.length > 0 ? peer.multiaddrs : peer.id
    this.libp2p.dial(target, { signal: this.deadline(this.opts.dialTimeout) }).then(
      () => { debugLog('connected to discovered peer %s', id) },
      (err) => { if (!this.stopped) debugLog('dial of discovered peer %s failed: %s', id, reason(err)) }
    ).finally(() => { this.dialing.delete(id) })
  }
}

function randomKey (): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32))
}

/** A short, human reason for a failed dial: "connection refused", "timed out", … */
export function reason (err: unknown): string {
  const codes: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    ETIMEDOUT: 'timed out',
    ENOTFOUND: 'host not found',
    EADDRNOTAVAIL: 'address not available'
  }
  const seen = new Set<unknown>()
  const walk = (e: any): string | undefined => {
    if (e == null || seen.has(e)) return undefined
    seen.add(e)
    if (typeof e.code === 'string' && codes[e.code] != null) return codes[e.code]
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out'
    if (e.name === 'EncryptionFailedError' || e.name === 'UnexpectedPeerError') {
      const msg = String(e.message ?? '').split('\n')[0]
      const m = /identity key (\S+) does not match expected remote identity key/.exec(msg)
      if (m != null) return `wrong peer id: the address answers as ${m[1]}`
      return `handshake failed, not a libp2p peer of this cluster? (${msg})`
    }
    for (const inner of [...(Array.isArray(e.errors) ? e.errors : []), e.cause]) {
      const r = walk(inner)
      if (r != null) return r
    }
    return undefined
  }
  const found = walk(err)
  if (found != null) return found
  const e = err as any
  return String(e?.message ?? e ?? 'unknown error').split('\n')[0]
}

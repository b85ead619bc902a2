/**
 * Test-only network partitions: a libp2p connection gater driven by a file.
 *
 * When a peer starts with `SHOAL_TEST_GATE=/path/to/file` in its environment, it reads that file
 * (a JSON array of peer ids) every `interval` ms and refuses every connection to or from the peers
 * it names, closing the ones already open; when a peer leaves the list, it is dialled again at once
 * (the peers of each side are still connected among themselves, so neither side's join loop would).
 * The simulator stages `--partition A|B@T..T` this way, with real processes and real sockets. Without
 * the variable nothing of this runs: a production peer never reads the file.
 */
import { readFile } from 'node:fs/promises'
import debug from 'debug'
import { peerIdFromString } from '@libp2p/peer-id'
import type { ConnectionGater, Libp2p, PeerId } from '@libp2p/interface'

const log = debug('shoal:test-gate')

/** The environment variable naming the gate file. */
export const TEST_GATE_ENV = 'SHOAL_TEST_GATE'
/** How often the file is read. */
export const TEST_GATE_INTERVAL = 100

export class FileGate {
  private blocked = new Set<string>()
  private last = ''
  private timer?: NodeJS.Timeout
  private libp2p?: Libp2p

  constructor (readonly file: string, private readonly interval = TEST_GATE_INTERVAL) {}

  /** The gate from the environment, or undefined (the normal case). */
  static fromEnv (env: NodeJS.ProcessEnv = process.env): FileGate | undefined {
    const file = env[TEST_GATE_ENV]
    return file != null && file !== '' ? new FileGate(file) : undefined
  }

  isBlocked (peer: PeerId): boolean {
    return this.blocked.has(peer.toString())
  }

  /** The libp2p connection gater: deny dials to, and connections from, blocked peers. */
  gater (): ConnectionGater {
    return {
      denyDialPeer: (peer) => this.isBlocked(peer),
      denyInboundEncryptedConnection: (peer) => this.isBlocked(peer),
      denyOutboundEncryptedConnection: (peer) => this.isBlocked(peer)
    }
  }

  start (libp2p: Libp2p): void {
    this.libp2p = libp2p
    const tick = (): void => {
      this.read().catch((err) => log('reading %s: %s', this.file, err.message)).finally(() => {
        if (this.libp2p != null) this.timer = setTimeout(tick, this.interval)
      })
    }
    tick()
  }

  stop (): void {
    this.libp2p = undefined
    clearTimeout(this.timer)
  }

  /** Apply the file's list: hang up on newly blocked peers, dial the ones set free. */
  async read (): Promise<void> {
    let text: string
    try {
      text = await readFile(this.file, 'utf8')
    } catch (err: any) {
      if (err.code !== 'ENOENT') throw err
      text = '[]'
    }
    if (text === this.last) return
    const list: unknown = JSON.parse(text)
    if (!Array.isArray(list) || list.some(x => typeof x !== 'string')) throw new Error('expected a JSON array of peer ids')
    this.last = text
    const next = new Set(list as string[])
    const freed = [...this.blocked].filter(id => !next.has(id))
    const added = [...next].filter(id => !this.blocked.has(id))
    this.blocked = next
    const libp2p = this.libp2p
    if (libp2p == null) return
    log('blocked %d peers (+%d, −%d)', next.size, added.length, freed.length)
    await Promise.allSettled(added.map(async id => { await libp2p.hangUp(peerIdFromString(id)) }))
    await Promise.allSettled(freed.map(async id => { await libp2p.dial(peerIdFromString(id), { signal: AbortSignal.timeout(5000) }) }))
  }
}

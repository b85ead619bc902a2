import { TopicValidatorResult } from '@libp2p/gossipsub'
import { TypedEventEmitter } from '@libp2p/interface'
import debug from 'debug'
import { Packr } from 'msgpackr'
import { KiB, minute, second } from './constants.js'
import { ConfigError } from './errors.js'
import { systemClock } from './types.js'
import type { Clock } from './types.js'
import type { GossipSub, Message, SubscriptionChangeData } from '@libp2p/gossipsub'
import type { Libp2p, PeerId } from '@libp2p/interface'

const debugLog = debug('shoal:membership')

export const DEFAULT_HEARTBEAT_INTERVAL = 2 * second
export const DEFAULT_SILENCE_TIMEOUT = 10 * second
/** A peer whose last connection closed leaves if none is back after this long. */
export const DISCONNECT_GRACE = 500
export const HEARTBEAT_VERSION = 1
/** Encoded heartbeats larger than this are rejected before decoding. */
export const MAX_HEARTBEAT_BYTES = 64 * KiB
/** Caps on what a decoded heartbeat may hold: a small message can decode into something huge. */
export const MAX_COUNTERS = 128
export const MAX_INFO_FIELDS = 32
export const MAX_KEY_LENGTH = 64
export const MAX_INFO_STRING_LENGTH = 1024
export const MAX_API_LENGTH = 256
/** Malformed heartbeats of one sender logged per minute; the rest are counted, not logged. */
export const MAX_MALFORMED_LOGS_PER_MINUTE = 20
/** A peer that left is forgotten (its last heartbeat too) after this many silence timeouts. */
const FORGET_AFTER_SILENCES = 10

export type InfoValue = string | number | boolean
export type CounterMap = Record<string, number>
export type InfoMap = Record<string, InfoValue>

/** What a peer publishes every heartbeat interval on `shoal/<cluster>/members`. */
export interface Heartbeat {
  v: typeof HEARTBEAT_VERSION
  /** The sender's peer id; must be the signer of the gossipsub message. */
  peer: string
  /**
   * Grows by one each heartbeat; starts at the sender's clock (ms) when it starts, so a restarted
   * peer's heartbeats are newer than the ones it sent before (unless its clock went back).
   */
  seq: number
  /** Sender's clock when sent, ms since the epoch. */
  at: number
  counters: CounterMap
  /** The peer's HTTP API address (host:port). */
  api?: string
  /** Free-form fields the peer's owner sets (version, role, …), capped in number and size. */
  info?: InfoMap
}

/** The last heartbeat of a peer, and when we heard it (our clock). */
export interface MemberInfo {
  peer: string
  seq: number
  at: number
  heardAt: number
  counters: CounterMap
  api?: string
  info?: InfoMap
}

export interface MembershipEvents {
  /** The sorted member list, self included, each time it changes. */
  change: CustomEvent<string[]>
}

export interface MembershipComponents {
  libp2p: Libp2p<{ pubsub: GossipSub }>
  clock?: Clock
}

export interface MembershipInit {
  /** @default 'shoal' */
  cluster?: string
  /** @default 2000 (ms) */
  heartbeatInterval?: number
  /** A peer not heard from for this long leaves. @default 10000 (ms) */
  silenceTimeout?: number
  /** Read at each heartbeat. @default () => ({}) */
  getCounters?: () => CounterMap
  /** Our HTTP API address, published in each heartbeat. */
  api?: string
  /** Published in each heartbeat. */
  info?: InfoMap
  /** Receives the lines an operator should see (a peer joined or left, a malformed heartbeat). */
  log?: (msg: string) => void
}

/** The gossipsub topic of a cluster's heartbeats. */
export function membersTopic (cluster: string): string {
  return `shoal/${cluster}/members`
}

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true })

export function encodeHeartbeat (hb: Heartbeat): Uint8Array {
  return packr.pack(hb)
}

/** The reason a heartbeat is refused. */
export class InvalidHeartbeat extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'InvalidHeartbeat'
  }
}

function isPlainObject (v: unknown): v is Record<string, unknown> {
  if (v == null || typeof v !== 'object' || Array.isArray(v) || ArrayBuffer.isView(v)) return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

/**
 * Decode and validate a heartbeat signed by `from`; throws `InvalidHeartbeat` saying what is wrong.
 * The result holds fresh objects with only the known fields.
 */
export function decodeHeartbeat (data: Uint8Array, from: string): Heartbeat {
  if (data.byteLength > MAX_HEARTBEAT_BYTES) throw new InvalidHeartbeat(`${data.byteLength} bytes, more than ${MAX_HEARTBEAT_BYTES}`)
  let v: unknown
  try {
    v = packr.unpack(data)
  } catch (err: any) {
    throw new InvalidHeartbeat(`not msgpack (${String(err?.message ?? err).split('\n')[0]})`)
  }
  if (!isPlainObject(v)) throw new InvalidHeartbeat('not a map')
  if (v.v !== HEARTBEAT_VERSION) throw new InvalidHeartbeat(`version ${JSON.stringify(v.v)}, expected ${HEARTBEAT_VERSION}`)
  if (v.peer !== from) throw new InvalidHeartbeat(`peer field ${JSON.stringify(String(v.peer).slice(0, 80))} is not the signer ${from}`)
  if (typeof v.seq !== 'number' || !Number.isSafeInteger(v.seq) || v.seq < 0) throw new InvalidHeartbeat('seq must be a non-negative integer')
  if (typeof v.at !== 'number' || !Number.isFinite(v.at)) throw new InvalidHeartbeat('at must be a number')
  const hb: Heartbeat = { v: HEARTBEAT_VERSION, peer: from, seq: v.seq, at: v.at, counters: checkCounters(v.counters) }
  if (v.api !== undefined && v.api !== null) {
    if (typeof v.api !== 'string' || v.api.length > MAX_API_LENGTH) throw new InvalidHeartbeat(`api must be a string of at most ${MAX_API_LENGTH} characters`)
    hb.api = v.api
  }
  if (v.info !== undefined && v.info !== null) hb.info = checkInfo(v.info)
  return hb
}

function checkCounters (v: unknown): CounterMap {
  if (!isPlainObject(v)) throw new InvalidHeartbeat('counters must be a map')
  const keys = Object.keys(v)
  if (keys.length > MAX_COUNTERS) throw new InvalidHeartbeat(`${keys.length} counters, more than ${MAX_COUNTERS}`)
  const out: CounterMap = {}
  for (const k of keys) {
    const n = v[k]
    if (k.length > MAX_KEY_LENGTH) throw new InvalidHeartbeat(`counter name longer than ${MAX_KEY_LENGTH} characters`)
    if (typeof n !== 'number' || !Number.isFinite(n)) throw new InvalidHeartbeat(`counter ${JSON.stringify(k)} is not a finite number`)
    Object.defineProperty(out, k, { value: n, enumerable: true, writable: true, configurable: true })
  }
  return out
}

function checkInfo (v: unknown): InfoMap {
  if (!isPlainObject(v)) throw new InvalidHeartbeat('info must be a map')
  const keys = Object.keys(v)
  if (keys.length > MAX_INFO_FIELDS) throw new InvalidHeartbeat(`${keys.length} info fields, more than ${MAX_INFO_FIELDS}`)
  const out: InfoMap = {}
  for (const k of keys) {
    const x = v[k]
    if (k.length > MAX_KEY_LENGTH) throw new InvalidHeartbeat(`info field name longer than ${MAX_KEY_LENGTH} characters`)
    const ok = typeof x === 'boolean' ||
      (typeof x === 'number' && Number.isFinite(x)) ||
      (typeof x === 'string' && x.length <= MAX_INFO_STRING_LENGTH)
    if (!ok) throw new InvalidHeartbeat(`info field ${JSON.stringify(k)} must be a boolean, a finite number or a string of at most ${MAX_INFO_STRING_LENGTH} characters`)
    Object.defineProperty(out, k, { value: x, enumerable: true, writable: true, configurable: true })
  }
  return out
}

/** Our own counters and info, clipped to what the other peers accept (else they would drop us). */
function clip<T> (map: Record<string, T>, max: number, ok: (v: T) => boolean): { out: Record<string, T>, dropped: number } {
  const out: Record<string, T> = {}
  let n = 0
  let dropped = 0
  for (const [k, x] of Object.entries(map)) {
    if (n >= max || k.length > MAX_KEY_LENGTH || !ok(x)) { dropped++; continue }
    Object.defineProperty(out, k, { value: x, enumerable: true, writable: true, configurable: true })
    n++
  }
  return { out, dropped }
}

interface Entry extends MemberInfo {
  member: boolean
  /** Our clock when it stopped being a member. */
  leftAt?: number
}

function positive (name: string, value: number | undefined, def: number): number {
  const v = value ?? def
  if (!Number.isFinite(v) || v <= 0) throw new ConfigError(`${name} must be a positive number of milliseconds, got ${String(value)}`)
  return v
}

/**
 * Who is in the cluster, as this peer sees it. Each peer publishes a heartbeat with its counters
 * on a gossipsub topic. A peer joins the member set when a heartbeat of it arrives, and leaves
 *  - at once when its last connection to us closes (a killed peer: the OS closes its sockets), or
 *  - when nothing has been heard of it for `silenceTimeout` (a hung peer keeps its TCP connections
 *    open, and a peer we only hear through others has none to lose).
 * A heartbeat no newer than the last one seen (by `seq`) never brings a peer back: a copy still in
 * flight when it died must not resurrect it. Self is always a member.
 */
export class Membership extends TypedEventEmitter<MembershipEvents> {
  readonly topic: string
  readonly heartbeatInterval: number
  readonly silenceTimeout: number
  private readonly libp2p: Libp2p<{ pubsub: GossipSub }>
  private readonly clock: Clock
  private readonly getCounters: () => CounterMap
  private readonly userLog?: (msg: string) => void
  private readonly self: string
  private readonly peers = new Map<string, Entry>()
  /** Heartbeats decoded by the topic validator, picked up by the message handler. */
  private readonly decoded = new WeakMap<Message, Heartbeat>()
  /** Per sender: the minute being counted and how many malformed heartbeats it sent in it. */
  private readonly malformed = new Map<string, { since: number, count: number }>()
  private current: string[]
  private api?: string
  private extra?: InfoMap
  private seq = 0
  private lastSent?: Heartbeat
  private heartbeatTimer?: unknown
  private sweepTimer?: unknown
  private soonTimer?: unknown
  private paused = false
  private running = false

  constructor (components: MembershipComponents, init: MembershipInit = {}) {
    super()
    this.libp2p = components.libp2p
    this.clock = components.clock ?? systemClock
    this.topic = membersTopic(init.cluster ?? 'shoal')
    this.heartbeatInterval = positive('heartbeatInterval', init.heartbeatInterval, DEFAULT_HEARTBEAT_INTERVAL)
    this.silenceTimeout = positive('silenceTimeout', init.silenceTimeout, DEFAULT_SILENCE_TIMEOUT)
    if (this.silenceTimeout <= this.heartbeatInterval) {
      throw new ConfigError(`silenceTimeout (${this.silenceTimeout} ms) must be longer than heartbeatInterval (${this.heartbeatInterval} ms)`)
    }
    this.getCounters = init.getCounters ?? (() => ({}))
    this.userLog = init.log
    this.api = init.api
    this.extra = init.info
    this.self = this.libp2p.peerId.toString()
    this.current = [this.self]
    this.onMessage = this.onMessage.bind(this)
    this.onDisconnect = this.onDisconnect.bind(this)
    this.onSubscriptionChange = this.onSubscriptionChange.bind(this)
    this.validate = this.validate.bind(this)
  }

  start (): void {
    if (this.running) return
    this.running = true
    this.seq = Math.max(this.seq, Math.floor(this.clock.now()))
    const pubsub = this.libp2p.services.pubsub
    pubsub.topicValidators.set(this.topic, this.validate)
    pubsub.addEventListener('message', this.onMessage)
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    this.libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    pubsub.subscribe(this.topic)
    this.beat()
    this.scheduleSweep()
  }

  stop (): void {
    if (!this.running) return
    this.running = false
    for (const t of [this.heartbeatTimer, this.sweepTimer, this.soonTimer]) {
      if (t !== undefined) this.clock.clearTimeout(t)
    }
    this.heartbeatTimer = this.sweepTimer = this.soonTimer = undefined
    const pubsub = this.libp2p.services.pubsub
    pubsub.removeEventListener('message', this.onMessage)
    pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    this.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    if (pubsub.topicValidators.get(this.topic) === this.validate) pubsub.topicValidators.delete(this.topic)
    try {
      pubsub.unsubscribe(this.topic)
    } catch {} // already stopped with libp2p
  }

  /** Sorted peer ids of the members, self included. */
  members (): string[] {
    return [...this.current]
  }

  /** The last heartbeat of `peer` (ours for self), while we remember it. */
  info (peer: string): MemberInfo | undefined {
    if (peer === this.self) {
      const hb = this.lastSent ?? this.heartbeat()
      return { peer, seq: hb.seq, at: hb.at, heardAt: hb.at, counters: hb.counters, api: hb.api, info: hb.info }
    }
    const e = this.peers.get(peer)
    if (e == null) return undefined
    const { member: _m, leftAt: _l, ...info } = e
    return info
  }

  /** Set the HTTP API address published from the next heartbeat on. */
  setApi (api: string | undefined): void {
    this.api = api
  }

  /** Set the free-form fields published from the next heartbeat on. */
  setInfo (info: InfoMap | undefined): void {
    this.extra = info
  }

  /** Test hook: stop publishing heartbeats but stay connected and keep listening (a hung peer, seen from outside). */
  pauseHeartbeats (): void {
    this.paused = true
    if (this.heartbeatTimer !== undefined) this.clock.clearTimeout(this.heartbeatTimer)
    this.heartbeatTimer = undefined
  }

  /** Test hook: undo `pauseHeartbeats`. */
  resumeHeartbeats (): void {
    if (!this.paused) return
    this.paused = false
    if (this.running) this.beat()
  }

  private say (msg: string): void {
    debugLog(msg)
    try {
      this.userLog?.(msg)
    } catch {}
  }

  private heartbeat (): Heartbeat {
    let raw: CounterMap = {}
    try {
      raw = this.getCounters()
    } catch (err: any) {
      debugLog('getCounters threw: %s', err?.message ?? err)
    }
    const counters = clip(raw ?? {}, MAX_COUNTERS, n => typeof n === 'number' && Number.isFinite(n))
    const hb: Heartbeat = { v: HEARTBEAT_VERSION, peer: this.self, seq: this.seq, at: this.clock.now(), counters: counters.out }
    if (this.api != null) {
      if (this.api.length <= MAX_API_LENGTH) hb.api = this.api
      else debugLog('api address longer than %d characters not published', MAX_API_LENGTH)
    }
    if (this.extra != null) {
      const info = clip(this.extra, MAX_INFO_FIELDS, x => typeof x === 'boolean' || (typeof x === 'number' && Number.isFinite(x)) || (typeof x === 'string' && x.length <= MAX_INFO_STRING_LENGTH))
      hb.info = info.out
      if (info.dropped > 0) debugLog('%d info fields over the caps not published', info.dropped)
    }
    if (counters.dropped > 0) debugLog('%d counters over the caps not published', counters.dropped)
    return hb
  }

  /** Publish a heartbeat now and schedule the next one. */
  private beat (): void {
    if (this.heartbeatTimer !== undefined) this.clock.clearTimeout(this.heartbeatTimer)
    this.heartbeatTimer = undefined
    if (!this.running || this.paused) return
    this.seq++
    const hb = this.heartbeat()
    this.lastSent = hb
    this.libp2p.services.pubsub.publish(this.topic, encodeHeartbeat(hb)).catch((err: any) => {
      if (this.running) debugLog('heartbeat %d not published: %s', hb.seq, err?.message ?? err)
    })
    this.heartbeatTimer = this.clock.setTimeout(() => { this.beat() }, this.heartbeatInterval)
  }

  /** A peer subscribed to the topic: let it hear from us now rather than at the next beat. */
  private onSubscriptionChange (evt: CustomEvent<SubscriptionChangeData>): void {
    if (!evt.detail.subscriptions.some(s => s.subscribe && s.topic === this.topic)) return
    if (this.soonTimer !== undefined || !this.running || this.paused) return
    this.soonTimer = this.clock.setTimeout(() => {
      this.soonTimer = undefined
      this.beat()
    }, 0)
  }

  /** gossipsub topic validator: a rejected heartbeat is neither delivered nor forwarded, and its sender is penalised. */
  private validate (_from: PeerId, msg: Message): TopicValidatorResult {
    if (msg.type !== 'signed') {
      this.logMalformed('an unknown sender', 'unsigned message')
      return TopicValidatorResult.Reject
    }
    const from = msg.from.toString()
    try {
      this.decoded.set(msg, decodeHeartbeat(msg.data, from))
      return TopicValidatorResult.Accept
    } catch (err: any) {
      this.logMalformed(from, String(err?.message ?? err))
      return TopicValidatorResult.Reject
    }
  }

  /** One line per malformed heartbeat, up to a limit per sender and minute: a flood must not flood the log. */
  private logMalformed (from: string, why: string): void {
    const now = this.clock.now()
    let w = this.malformed.get(from)
    if (w == null || now - w.since >= minute) {
      if (w != null && w.count > MAX_MALFORMED_LOGS_PER_MINUTE) {
        this.say(`${w.count - MAX_MALFORMED_LOGS_PER_MINUTE} more malformed heartbeats from ${from} were not logged`)
      }
      w = { since: now, count: 0 }
      this.malformed.set(from, w)
    }
    w.count++
    if (w.count <= MAX_MALFORMED_LOGS_PER_MINUTE) this.say(`malformed heartbeat from ${from}: ${why}; ignored`)
    else debugLog('malformed heartbeat from %s: %s; ignored', from, why)
  }

  private onMessage (evt: CustomEvent<Message>): void {
    const msg = evt.detail
    if (msg.topic !== this.topic || !this.running) return
    const hb = this.decoded.get(msg)
    if (hb == null) return // not validated by us (a validator installed after the message arrived)
    if (hb.peer === this.self) return
    this.heard(hb)
  }

  private heard (hb: Heartbeat): void {
    const now = this.clock.now()
    const e = this.peers.get(hb.peer)
    if (e != null && hb.seq <= e.seq) {
      debugLog('stale heartbeat %d from %s (have %d)', hb.seq, hb.peer, e.seq)
      return
    }
    const wasMember = e?.member ?? false
    this.peers.set(hb.peer, {
      peer: hb.peer,
      seq: hb.seq,
      at: hb.at,
      heardAt: now,
      counters: hb.counters,
      api: hb.api,
      info: hb.info,
      member: true
    })
    if (!wasMember) {
      this.say(`member ${hb.peer} joined`)
      this.update()
    }
  }

  private leave (peer: string, why: string): void {
    const e = this.peers.get(peer)
    if (e == null || !e.member) return
    e.member = false
    e.leftAt = this.clock.now()
    this.say(`member ${peer} left: ${why}`)
    this.update()
  }

  private onDisconnect (evt: CustomEvent<PeerId>): void {
    if (!this.running) return
    const peerId = evt.detail
    // Two peers that dial each other at once keep one connection and close the other, and a
    // connection can be replaced: leave only if there is still none a moment later (a killed
    // peer is still noticed within about a second).
    this.clock.setTimeout(() => {
      if (!this.running) return
      if (typeof this.libp2p.getConnections === 'function' && this.libp2p.getConnections(peerId).length > 0) return
      this.leave(peerId.toString(), 'connection closed')
    }, DISCONNECT_GRACE)
  }

  private scheduleSweep (): void {
    const every = Math.max(10, Math.min(this.heartbeatInterval, this.silenceTimeout / 4))
    this.sweepTimer = this.clock.setTimeout(() => {
      this.sweepTimer = undefined
      if (!this.running) return
      this.sweep()
      this.scheduleSweep()
    }, every)
  }

  private sweep (): void {
    const now = this.clock.now()
    for (const [from, w] of this.malformed) {
      if (now - w.since < minute) continue
      if (w.count > MAX_MALFORMED_LOGS_PER_MINUTE) {
        this.say(`${w.count - MAX_MALFORMED_LOGS_PER_MINUTE} more malformed heartbeats from ${from} were not logged`)
      }
      this.malformed.delete(from)
    }
    for (const [peer, e] of this.peers) {
      if (e.member && now - e.heardAt > this.silenceTimeout) {
        this.leave(peer, `silent for ${now - e.heardAt} ms`)
      } else if (!e.member && e.leftAt != null && now - e.leftAt > FORGET_AFTER_SILENCES * this.silenceTimeout) {
        this.peers.delete(peer)
      }
    }
  }

  private update (): void {
    const next = [this.self]
    for (const [peer, e] of this.peers) if (e.member) next.push(peer)
    next.sort()
    if (next.length === this.current.length && next.every((p, i) => p === this.current[i])) return
    this.current = next
    this.safeDispatchEvent('change', { detail: [...next] })
  }
}

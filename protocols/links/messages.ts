/**
 * The messages of `/shoal/links/1.0.0`, their validation, and the batch builder that turns links
 * into the compact wire form.
 *
 * Wire form of a batch: links are grouped by (depth, redirects, referrer, origin), and each group
 * carries what its links share once: the referrer (a page's 150 links all name the same one) and
 * the longest common prefix of their URLs (all links in a batch belong to hosts one peer owns, so a
 * group is usually one site: `https://host/section/`). On realistic pages this puts the bytes on
 * the wire per link below the URL's own length (bench/links-wire.ts).
 */
import { InvalidMessageError } from './errors.js'
import { describe, fieldChecks, type Fields } from '../batch/validate.js'
import { MAX_DEPTH_VALUE, MAX_ERROR_LENGTH, MAX_HOPS_VALUE, MAX_ID, MAX_REDIRECTS_VALUE } from './constants.js'
import type { Link } from '../../node/types.js'

const { isFields, int, str } = fieldChecks(InvalidMessageError)

/** Links that share depth, redirects, referrer and a URL prefix. */
export interface LinkGroup {
  /** Depth of every link of the group. */
  d: number
  /** URL suffixes: each URL is `p + u[i]`. */
  u: string[]
  /** Referrer of every link of the group. */
  r?: string
  /** Redirect hops of every link of the group. */
  x?: number
  /** Prefix shared by the group's URLs. */
  p?: string
}

/** A batch of links for the receiver's frontier. `hops`: times it was forwarded by a peer that wasn't the owner. */
export interface LinksMessage { t: 'links', id: number, hops: number, g: LinkGroup[] }
/** The batch `id` is durable on the receiver; `admitted` of its links were new to its frontier. */
export interface AckMessage { t: 'ack', id: number, admitted: number }
/** The batch `id` was not taken; `retry` says whether sending it again (maybe elsewhere) may succeed. */
export interface NackMessage { t: 'nack', id: number, error: string, retry: boolean }

export type Message = LinksMessage | AckMessage | NackMessage
export type MessageType = Message['t']

/** What a decoded message may hold, beyond the byte cap of its frame. */
export interface MessageLimits {
  /** Links in one batch, all groups together. */
  maxBatchLinks: number
  /** Characters of a URL (prefix + suffix), of a referrer and of a prefix. */
  maxUrlLength: number
}






function validateLinks (m: Fields, limits: MessageLimits): LinksMessage {
  const id = int(m.id, 0, MAX_ID, 'id')
  const hops = int(m.hops, 0, MAX_HOPS_VALUE, 'hops')
  const g = m.g
  if (!Array.isArray(g)) throw new InvalidMessageError(`g must be an array, got ${describe(g)}`)
  if (g.length === 0) throw new InvalidMessageError('g must hold at least one group')
  // Every group holds at least one link, so the group count is capped by the link cap too.
  if (g.length > limits.maxBatchLinks) throw new InvalidMessageError(`g holds ${g.length} groups, more than maxBatchLinks (${limits.maxBatchLinks})`)
  const groups: LinkGroup[] = new Array(g.length)
  let links = 0
  for (let i = 0; i < g.length; i++) {
    const e: unknown = g[i]
    if (!isFields(e)) throw new InvalidMessageError(`g[${i}] must be a map, got ${describe(e)}`)
    const group: LinkGroup = { d: int(e.d, 0, MAX_DEPTH_VALUE, `g[${i}].d`), u: [] }
    if (e.r !== undefined) {
      group.r = str(e.r, limits.maxUrlLength, `g[${i}].r`)
      if (group.r.length === 0) throw new InvalidMessageError(`g[${i}].r must not be empty`)
    }
    if (e.x !== undefined) group.x = int(e.x, 0, MAX_REDIRECTS_VALUE, `g[${i}].x`)
    const p = e.p === undefined ? '' : str(e.p, limits.maxUrlLength, `g[${i}].p`)
    if (e.p !== undefined) group.p = p
    const u = e.u
    if (!Array.isArray(u)) throw new InvalidMessageError(`g[${i}].u must be an array, got ${describe(u)}`)
    if (u.length === 0) throw new InvalidMessageError(`g[${i}].u must hold at least one URL`)
    links += u.length
    if (links > limits.maxBatchLinks) throw new InvalidMessageError(`the batch holds more than maxBatchLinks (${limits.maxBatchLinks}) links`)
    const room = limits.maxUrlLength - p.length
    for (let j = 0; j < u.length; j++) {
      const s: unknown = u[j]
      if (typeof s !== 'string') throw new InvalidMessageError(`g[${i}].u[${j}] must be a string, got ${describe(s)}`)
      if (s.length > room) throw new InvalidMessageError(`g[${i}].u[${j}] makes a URL longer than ${limits.maxUrlLength} characters`)
      if (s.length === 0 && p.length === 0) throw new InvalidMessageError(`g[${i}].u[${j}] is an empty URL`)
    }
    group.u = u as string[]
    groups[i] = group
  }
  return { t: 'links', id, hops, g: groups }
}

function validateAck (m: Fields, limits: MessageLimits): AckMessage {
  return { t: 'ack', id: int(m.id, 0, MAX_ID, 'id'), admitted: int(m.admitted, 0, limits.maxBatchLinks, 'admitted') }
}

function validateNack (m: Fields): NackMessage {
  const id = int(m.id, 0, MAX_ID, 'id')
  const error = str(m.error, MAX_ERROR_LENGTH, 'error')
  if (typeof m.retry !== 'boolean') throw new InvalidMessageError(`retry must be a boolean, got ${describe(m.retry)}`)
  return { t: 'nack', id, error, retry: m.retry }
}

/** One validator per message type. Each builds a fresh object holding only the known fields. */
const validators: { [T in MessageType]: (m: Fields, limits: MessageLimits) => Extract<Message, { t: T }> } = {
  links: validateLinks,
  ack: validateAck,
  nack: validateNack
}

/**
 * Check a decoded value against the message types and the caps in `limits`. Throws
 * `InvalidMessageError` naming the first field at fault; never truncates.
 */
export function validateMessage (value: unknown, limits: MessageLimits): Message {
  if (!isFields(value)) throw new InvalidMessageError(`a message must be a map, got ${describe(value)}`)
  const t = value.t
  if (typeof t !== 'string' || !Object.hasOwn(validators, t)) {
    throw new InvalidMessageError(`unknown message type ${typeof t === 'string' ? JSON.stringify(t.slice(0, 32)) : describe(t)}`)
  }
  return validators[t as MessageType](value, limits)
}

/** The links of a validated batch. */
export function linksOf (msg: LinksMessage): Link[] {
  let n = 0
  for (const g of msg.g) n += g.u.length
  const out: Link[] = new Array(n)
  let k = 0
  for (const g of msg.g) {
    const p = g.p ?? ''
    for (const s of g.u) {
      const link: Link = { url: p + s, depth: g.d }
      if (g.r !== undefined) link.referrer = g.r
      if (g.x !== undefined) link.redirects = g.x
      out[k++] = link
    }
  }
  return out
}

/** Upper bounds, in bytes, of the msgpack framing around the strings (map and array headers, keys, numbers). */
const MESSAGE_OVERHEAD_BYTES = 64
const GROUP_OVERHEAD_BYTES = 48
const STRING_HEADER_BYTES = 5
/** A shared prefix shorter than this is not worth its key and header. */
const MIN_PREFIX_LENGTH = 8

interface OpenGroup {
  d: number
  x: number | undefined
  r: string | undefined
  origin: string
  urls: string[]
}

/** `scheme://authority` of a URL, or the whole string when it has no path: only a grouping hint. */
function originOf (url: string): string {
  const s = url.indexOf('//')
  const e = s === -1 ? -1 : url.indexOf('/', s + 2)
  return e === -1 ? url : url.slice(0, e)
}

/** Is `origin` the `scheme://authority` of `url`? */
function sameOrigin (url: string, origin: string): boolean {
  return url.startsWith(origin) && (url.length === origin.length || url.charCodeAt(origin.length) === 47 /* / */)
}

/**
 * Gathers the links of one batch in wire groups and keeps an upper bound of its encoded size, so
 * the sender can cut a batch before it would exceed the receiver's byte cap.
 */
export class BatchBuilder {
  /** Links held. */
  count = 0
  /** Upper bound of the encoded message's size in bytes (length prefix included). */
  bytes = MESSAGE_OVERHEAD_BYTES
  private readonly groups: OpenGroup[] = []
  private readonly index = new Map<string, OpenGroup>()
  private last: OpenGroup | undefined

  constructor (readonly hops: number) {}

  /**
   * Add `link` unless the batch would then be larger than `maxBytes` (a batch always takes its
   * first link: the transport's option checks make sure one link fits). Returns whether it was added.
   */
  tryAdd (link: Link, maxBytes: number): boolean {
    const { url, depth: d, redirects: x } = link
    // An empty referrer says no more than an absent one, and costs a key on the wire.
    const r = link.referrer === '' ? undefined : link.referrer
    let cost = Buffer.byteLength(url) + STRING_HEADER_BYTES
    let g = this.last
    // Links arrive page by page: most share the previous link's group, checked without slicing.
    if (g == null || g.d !== d || g.x !== x || g.r !== r || !sameOrigin(url, g.origin)) {
      const origin = originOf(url)
      const key = `${d}|${x ?? ''}|${origin}|${r ?? ''}`
      g = this.index.get(key)
      // The key can't be confused by odd characters: a hit is checked field by field.
      if (g != null && (g.d !== d || g.x !== x || g.r !== r || g.origin !== origin)) g = undefined
      if (g == null) cost += GROUP_OVERHEAD_BYTES + (r === undefined ? 0 : Buffer.byteLength(r) + STRING_HEADER_BYTES)
      if (this.count > 0 && this.bytes + cost > maxBytes) return false
      if (g == null) {
        g = { d, x, r, origin, urls: [] }
        this.groups.push(g)
        this.index.set(key, g)
      }
      this.last = g
    } else if (this.count > 0 && this.bytes + cost > maxBytes) {
      return false
    }
    this.bytes += cost
    g.urls.push(url)
    this.count++
    return true
  }

  /** The batch as a message with id `id`. */
  toMessage (id: number): LinksMessage {
    const g: LinkGroup[] = new Array(this.groups.length)
    for (let i = 0; i < this.groups.length; i++) {
      const o = this.groups[i]
      const group: LinkGroup = { d: o.d, u: o.urls }
      if (o.r !== undefined) group.r = o.r
      if (o.x !== undefined) group.x = o.x
      const n = commonPrefixLength(o.urls)
      if (n >= MIN_PREFIX_LENGTH) {
        group.p = o.urls[0].slice(0, n)
        group.u = o.urls.map(u => u.slice(n))
      }
      g[i] = group
    }
    return { t: 'links', id, hops: this.hops, g }
  }
}

/** Length of the prefix all of `urls` share (0 for fewer than two), never splitting a surrogate pair. */
export function commonPrefixLength (urls: string[]): number {
  if (urls.length < 2) return 0
  const first = urls[0]
  let prefix = first
  for (let i = 1; i < urls.length && prefix.length > 0; i++) {
    const u = urls[i]
    // The usual case, a URL that shares the whole prefix, is one native comparison.
    if (u.startsWith(prefix)) continue
    const max = Math.min(prefix.length, u.length)
    let j = 0
    while (j < max && first.charCodeAt(j) === u.charCodeAt(j)) j++
    prefix = first.slice(0, j)
  }
  let n = prefix.length
  // A prefix ending in a high surrogate would leave both halves lone, and UTF-8 can't carry those.
  if (n > 0) {
    const c = first.charCodeAt(n - 1)
    if (c >= 0xd800 && c <= 0xdbff) n--
  }
  return n
}

/**
 * Turning a response body into text: which character encoding it is in, decoding it, and whether it
 * is HTML at all.
 *
 * The order of evidence follows the HTML Standard's encoding sniffing algorithm
 * (https://html.spec.whatwg.org/multipage/parsing.html#encoding-sniffing-algorithm), minus the parts
 * that need a browser (user choice, parent document, frequency analysis): byte order mark, then the
 * Content-Type charset, then a prescan of the first 1024 bytes for `<meta>`, then UTF-8.
 * Labels are mapped to encodings by the WHATWG Encoding Standard, which is what `TextDecoder` does.
 */

import { Buffer } from 'node:buffer'
import { TextDecoder } from 'node:util'

/** The HTML Standard's prescan looks at no more than this many bytes. */
const PRESCAN_BYTES = 1024

const DEFAULT_ENCODING = 'utf-8'

/** One decoder per encoding: a non-streaming TextDecoder keeps no state between calls. */
const decoders = new Map<string, TextDecoder>()

/**
 * The canonical name of the encoding a label stands for (`latin1` → `windows-1252`), or `undefined`
 * when the label is unknown or names an encoding we cannot decode.
 *
 * `replacement` (the labels of ISO-2022-KR, HZ-GB-2312…) is unknown here: the standard maps those
 * labels to an encoding that decodes any input to a single U+FFFD so that a browser renders nothing
 * attacker-shaped. A crawler renders nothing; decoding such a page as UTF-8 still finds its ASCII
 * links, which is more useful than finding none. Node's TextDecoder rejects `replacement` anyway.
 */
function encodingForLabel (label: string): string | undefined {
  try {
    return decoderFor(label).encoding
  } catch {
    return undefined
  }
}

function decoderFor (label: string): TextDecoder {
  let decoder = decoders.get(label)
  if (decoder === undefined) {
    // Throws RangeError for an unknown label; nothing is cached then.
    decoder = new TextDecoder(label, { fatal: false })
    // Bounded: only labels TextDecoder accepts get here, and there are a few hundred of them.
    decoders.set(label, decoder)
  }
  return decoder
}

/** The encoding named by a byte order mark, per the Encoding Standard's "BOM sniff". */
function bomEncoding (bytes: Uint8Array): string | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xEF && bytes[1] === 0xBB && bytes[2] === 0xBF) return 'utf-8'
  if (bytes.length >= 2 && bytes[0] === 0xFE && bytes[1] === 0xFF) return 'utf-16be'
  if (bytes.length >= 2 && bytes[0] === 0xFF && bytes[1] === 0xFE) return 'utf-16le'
  return undefined
}

/**
 * The value of the `charset` parameter of a Content-Type (RFC 9110 §8.3), quotes removed, or
 * `undefined`. Tolerant of the spacing and casing seen in the wild: `text/html;Charset = "UTF-8"`.
 */
function contentTypeCharset (contentType: string): string | undefined {
  const params = contentType.split(';')
  for (let i = 1; i < params.length; i++) {
    const param = params[i]
    const eq = param.indexOf('=')
    if (eq < 0) continue
    if (param.slice(0, eq).trim().toLowerCase() !== 'charset') continue
    let value = param.slice(eq + 1).trim()
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) {
      value = value.slice(1, -1).trim()
    }
    return value === '' ? undefined : value
  }
  return undefined
}

/**
 * Guess the character encoding of a response body. Returns a canonical encoding name that
 * `TextDecoder` accepts (`utf-8`, `windows-1252`, `shift_jis`, `utf-16le`…).
 *
 * An unknown label is skipped and the next kind of evidence is looked at, as the HTML Standard does
 * for an unsupported transport-layer encoding; with no usable evidence the answer is UTF-8.
 */
export function sniffCharset (contentType: string | undefined, bytes: Uint8Array): string {
  const bom = bomEncoding(bytes)
  if (bom !== undefined) return bom

  if (contentType !== undefined) {
    const label = contentTypeCharset(contentType)
    if (label !== undefined) {
      const encoding = encodingForLabel(label)
      if (encoding !== undefined) return encoding
    }
  }

  const label = prescanMetaCharset(bytes)
  if (label !== undefined) return label

  return DEFAULT_ENCODING
}

/**
 * Decode a body to text in its sniffed encoding. Never throws: malformed sequences become U+FFFD.
 * A byte order mark is removed (it always agrees with the encoding, since the BOM decides it).
 */
export function decodeBody (contentType: string | undefined, bytes: Uint8Array): string {
  const encoding = sniffCharset(contentType, bytes)
  if (encoding === 'windows-1252' && !NATIVE_WINDOWS_1252) return decodeWindows1252(bytes)
  return decoderFor(encoding).decode(bytes)
}

/**
 * Node's TextDecoder decodes windows-1252 as ISO-8859-1, so bytes 0x80–0x9F (€, ‘ ’ “ ” – —, …)
 * become C1 control characters (https://github.com/nodejs/node/issues/56542, Node 20 and later).
 * windows-1252 is what `iso-8859-1`, `latin1` and `us-ascii` mean on the web, so this is the most
 * common legacy encoding there is. Checked once: when Node is fixed, its decoder is used again.
 */
const NATIVE_WINDOWS_1252 = new TextDecoder('windows-1252').decode(Uint8Array.of(0x80)) === '\u20AC'

/**
 * The code points of bytes 0x80–0x9F in windows-1252, from the Encoding Standard's
 * index-windows-1252 (https://encoding.spec.whatwg.org/index-windows-1252.txt); every other byte is
 * the code point of the same value. The five bytes the index leaves as C1 controls map to themselves.
 */
const WINDOWS_1252_C1 = [
  0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
  0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178
]

function decodeWindows1252 (bytes: Uint8Array): string {
  const latin1 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1')
  return latin1.replace(/[\x80-\x9F]/g, c => String.fromCharCode(WINDOWS_1252_C1[c.charCodeAt(0) - 0x80]))
}

/** MIME types that say nothing about the content (WHATWG MIME Sniffing §7.1 "unknown" types, plus the generic binary one). */
const UNKNOWN_TYPES = new Set(['', 'application/octet-stream', 'application/unknown', 'unknown/unknown', '*/*'])

/**
 * Whether a response body is HTML that the parser should look at.
 *
 * A present and specific Content-Type is respected: `image/png` over bytes that look like HTML is not
 * HTML. Guessing against the header would make us parse error pages served as images, and browsers
 * do not sniff a declared non-HTML type into HTML either (MIME Sniffing §7, "no-sniff" for
 * specific types). Only a missing or generic type (`application/octet-stream`) is sniffed, with the
 * two patterns that are safe: `<!doctype html` and `<html`, after leading whitespace.
 */
export function isHtml (contentType: string | undefined, bytes: Uint8Array): boolean {
  const essence = (contentType ?? '').split(';', 1)[0].trim().toLowerCase()
  if (essence === 'text/html' || essence === 'application/xhtml+xml') return true
  if (!UNKNOWN_TYPES.has(essence)) return false
  return looksLikeHtml(bytes)
}

const LT = 0x3C
const GT = 0x3E

function isAsciiWhitespace (b: number | undefined): boolean {
  return b === 0x09 || b === 0x0A || b === 0x0C || b === 0x0D || b === 0x20
}

/** `bytes` at `pos` start with the lower-case ASCII `pattern`, compared case-insensitively. */
function startsWithCi (bytes: Uint8Array, pos: number, pattern: string): boolean {
  if (pos + pattern.length > bytes.length) return false
  for (let i = 0; i < pattern.length; i++) {
    let b = bytes[pos + i]
    if (b >= 0x41 && b <= 0x5A) b += 0x20
    if (b !== pattern.charCodeAt(i)) return false
  }
  return true
}

function looksLikeHtml (bytes: Uint8Array): boolean {
  let pos = 0
  // A UTF-8 BOM before the markup is common in hand-written pages.
  if (bytes.length >= 3 && bytes[0] === 0xEF && bytes[1] === 0xBB && bytes[2] === 0xBF) pos = 3
  while (pos < bytes.length && isAsciiWhitespace(bytes[pos])) pos++
  for (const pattern of ['<!doctype html', '<html']) {
    if (startsWithCi(bytes, pos, pattern)) {
      // MIME Sniffing §7.1: the pattern must end at a tag-terminating byte (`<htmlx` is not HTML).
      const next = bytes[pos + pattern.length]
      if (next === undefined || next === GT || isAsciiWhitespace(next)) return true
    }
  }
  return false
}

/**
 * The HTML Standard's "prescan a byte stream to determine its encoding", over the first 1024 bytes:
 * the encoding of the first `<meta charset>` or `<meta http-equiv=content-type content="…charset=…">`
 * whose label is known. Comments and the attributes of other tags are skipped properly, so that
 * `<!-- <meta charset=x> -->` or `<img alt="<meta charset=x>">` do not count.
 * https://html.spec.whatwg.org/multipage/parsing.html#prescan-a-byte-stream-to-determine-its-encoding
 */
function prescanMetaCharset (bytes: Uint8Array): string | undefined {
  const end = Math.min(bytes.length, PRESCAN_BYTES)
  // Latin-1 maps each byte to one char, so string positions are byte positions.
  const s = Buffer.from(bytes.buffer, bytes.byteOffset, end).toString('latin1')
  let pos = 0
  while (pos < end) {
    if (s.charCodeAt(pos) !== LT) {
      const next = s.indexOf('<', pos)
      if (next < 0) break
      pos = next
      continue
    }
    if (s.startsWith('<!--', pos)) {
      const close = s.indexOf('-->', pos + 2)
      if (close < 0) break
      pos = close + 3
      continue
    }
    const head = s.slice(pos, pos + 5).toLowerCase()
    if (head === '<meta' && isWsOrSlash(s.charCodeAt(pos + 5))) {
      const found = prescanMeta(s, pos + 6)
      if (found.encoding !== undefined) return found.encoding
      pos = found.pos
      continue
    }
    const c1 = s.charCodeAt(pos + 1)
    if (isAsciiLetter(c1) || (c1 === 0x2F /* / */ && isAsciiLetter(s.charCodeAt(pos + 2)))) {
      // Another start or end tag: skip its name, then its attributes one by one.
      pos += c1 === 0x2F ? 2 : 1
      while (pos < end && !isAsciiWhitespace(s.charCodeAt(pos)) && s.charCodeAt(pos) !== GT) pos++
      let attr = getAttribute(s, pos)
      while (attr !== undefined) {
        pos = attr.pos
        attr = getAttribute(s, pos)
      }
      pos = skipPastGt(s, pos)
      continue
    }
    if (c1 === 0x21 /* ! */ || c1 === 0x2F /* / */ || c1 === 0x3F /* ? */) {
      pos = skipPastGt(s, pos + 1)
      continue
    }
    pos++
  }
  return undefined
}

function skipPastGt (s: string, pos: number): number {
  const gt = s.indexOf('>', pos)
  return gt < 0 ? s.length : gt + 1
}

function isAsciiLetter (c: number): boolean {
  return (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
}

function isWsOrSlash (c: number): boolean {
  return isAsciiWhitespace(c) || c === 0x2F
}

/** The attributes of one `<meta>` (position just after `<meta` and its separator); the spec's steps for it. */
function prescanMeta (s: string, start: number): { encoding?: string, pos: number } {
  const seen = new Set<string>()
  let gotPragma = false
  let needPragma: boolean | undefined
  let charset: string | undefined
  let pos = start
  for (;;) {
    const attr = getAttribute(s, pos)
    if (attr === undefined) break
    pos = attr.pos
    if (seen.has(attr.name)) continue
    seen.add(attr.name)
    if (attr.name === 'http-equiv') {
      if (attr.value.toLowerCase() === 'content-type') gotPragma = true
    } else if (attr.name === 'content') {
      if (charset === undefined) {
        const label = charsetFromContent(attr.value)
        if (label !== undefined) {
          charset = label
          needPragma = true
        }
      }
    } else if (attr.name === 'charset') {
      charset = attr.value
      needPragma = false
    }
  }
  pos = skipPastGt(s, pos)
  if (needPragma === undefined || charset === undefined) return { pos }
  if (needPragma && !gotPragma) return { pos }
  let encoding = encodingForLabel(charset)
  // A page cannot really be UTF-16 if its ASCII-compatible prescan found this; x-user-defined is
  // windows-1252 for HTML (both per the prescan's final steps).
  if (encoding === 'utf-16le' || encoding === 'utf-16be') encoding = 'utf-8'
  if (encoding === undefined && charset.trim().toLowerCase() === 'x-user-defined') encoding = 'windows-1252'
  if (encoding === undefined) return { pos }
  return { encoding, pos }
}

/**
 * "Get an attribute" from the prescan: the next attribute name and value at `pos`, lower-cased
 * name, or `undefined` at the end of the tag (`>`) or of the input.
 */
function getAttribute (s: string, start: number): { name: string, value: string, pos: number } | undefined {
  const end = s.length
  let pos = start
  while (pos < end && (isAsciiWhitespace(s.charCodeAt(pos)) || s.charCodeAt(pos) === 0x2F)) pos++
  if (pos >= end || s.charCodeAt(pos) === GT) return undefined
  let name = ''
  let value = ''
  // Name: up to `=` (not as first char), whitespace, `/` or `>`.
  for (;;) {
    if (pos >= end) return undefined
    const c = s.charCodeAt(pos)
    if (c === 0x3D /* = */ && name !== '') { pos++; break }
    if (isAsciiWhitespace(c)) {
      while (pos < end && isAsciiWhitespace(s.charCodeAt(pos))) pos++
      if (s.charCodeAt(pos) !== 0x3D) return { name, value, pos }
      pos++
      break
    }
    if (c === 0x2F || c === GT) return { name, value, pos }
    name += s[pos].toLowerCase()
    pos++
  }
  while (pos < end && isAsciiWhitespace(s.charCodeAt(pos))) pos++
  if (pos >= end) return undefined
  const q = s.charCodeAt(pos)
  if (q === 0x22 || q === 0x27) {
    const close = s.indexOf(s[pos], pos + 1)
    if (close < 0) return undefined
    value = s.slice(pos + 1, close).toLowerCase()
    return { name, value, pos: close + 1 }
  }
  if (q === GT) return { name, value, pos }
  while (pos < end) {
    const c = s.charCodeAt(pos)
    if (isAsciiWhitespace(c) || c === GT) break
    value += s[pos].toLowerCase()
    pos++
  }
  return { name, value, pos }
}

/**
 * "Extract a character encoding from a meta element" (the `content` of a Content-Type pragma):
 * the label after `charset=`, quoted or not, or `undefined`.
 * https://html.spec.whatwg.org/multipage/urls-and-fetching.html#algorithm-for-extracting-a-character-encoding-from-a-meta-element
 */
function charsetFromContent (content: string): string | undefined {
  const lower = content.toLowerCase()
  let from = 0
  for (;;) {
    const at = lower.indexOf('charset', from)
    if (at < 0) return undefined
    let pos = at + 7
    while (pos < lower.length && isAsciiWhitespace(lower.charCodeAt(pos))) pos++
    if (lower[pos] !== '=') { from = at + 7; continue }
    pos++
    while (pos < lower.length && isAsciiWhitespace(lower.charCodeAt(pos))) pos++
    if (pos >= lower.length) return undefined
    const q = lower[pos]
    if (q === '"' || q === "'") {
      const close = lower.indexOf(q, pos + 1)
      return close < 0 ? undefined : lower.slice(pos + 1, close)
    }
    let stop = pos
    while (stop < lower.length && !isAsciiWhitespace(lower.charCodeAt(stop)) && lower[stop] !== ';') stop++
    return lower.slice(pos, stop)
  }
}

/**
 * A tokenizer for link extraction: it finds the start tags a caller asks for, with their
 * attributes, and skips everything else without looking at it character by character.
 *
 * A general HTML tokenizer (htmlparser2's, which shoal used before) runs a state machine over
 * every character of the page, text included, and builds a name and an attribute object for
 * every tag. A crawler reads a few attributes of a few tags: this scanner jumps from `<` to `<`
 * with `indexOf` (native and vectorised), reads a tag's name, and only builds attributes for the
 * tags asked for; other tags are walked just far enough to find their end (a `>` inside a quoted
 * attribute value does not end a tag). Raw-text elements (`<script>`, `<style>` …) and comments
 * are skipped to their ends the same way. On the generated 30 KB pages of bench/ this is ~10×
 * faster than htmlparser2's Parser (BENCHMARKS.md §2).
 *
 * It tokenizes as htmlparser2 12 does in HTML mode with `decodeEntities` and lower-cased names —
 * test/node/html-scan.test.ts checks that on random tag soup, event for event — which is the HTML
 * Standard's tokenizer (https://html.spec.whatwg.org/multipage/parsing.html#tokenization) for
 * everything that decides where a tag starts and ends and what its attributes are:
 *   - `<` + ASCII letter starts a tag; its name runs to whitespace, `/` or `>`; `</` + letter an
 *     end tag (skipped to the next `>`); `<!--` a comment (to `-->` or `--!>`; `<!-->` and
 *     `<!--->` are empty ones); `<![CDATA[` to `]]>` (as htmlparser2; in HTML content the
 *     Standard reads it as a bogus comment to the next `>`); any other `<!` or `<?` a bogus comment
 *     to the next `>`; any other `<` is text.
 *   - Attribute names run to `=`, whitespace, `/` or `>` (their first character may be `=`); values
 *     are quoted with `"` or `'`, or run to whitespace or `>`; character references in values are
 *     decoded as in an attribute (`&amp` before `=` or a letter stays as written); of a repeated
 *     attribute the first counts; a tag that the input ends inside is dropped.
 *   - The text of `script`, `style`, `xmp`, `iframe`, `noembed`, `noframes` (raw text) and `title`,
 *     `textarea` (escapable raw text) runs to the next `</name` followed by whitespace, `/` or `>`,
 *     in any case; `<plaintext>` makes the rest of the page text.
 *   - Inside `<svg>` and `<math>` those elements are ordinary ones (foreign content), except inside
 *     an HTML integration point (`foreignObject`, `desc`, `title`; `mi`, `mo`, `mn`, `ms`, `mtext`,
 *     `annotation-xml`); `<image>` outside them is `<img>`. Where htmlparser2 tracks every open
 *     element to know when an `<svg>` ends, this keeps only the foreign roots and integration points
 *     and closes them on their own end tags: an `<svg>` closed only implicitly (`<p><svg></p>`)
 *     stays open here, which changes whether a later `<script>`'s text is read as markup.
 *
 * Linear in the page: every search moves forward, and what an unterminated construct (a comment, a
 * quoted value, a `<script>`) leaves is read once and dropped.
 */
import { decodeHTMLAttribute } from 'entities/decode'

/** Called for each start tag asked for, in document order, with its lower-cased attribute names. */
export type StartTagHandler = (name: string, attribs: Record<string, string>) => void

const WANTED = 1
const RAW_TEXT = 2
const PLAINTEXT = 4
const FOREIGN_ROOT = 8
const INTEGRATION = 16

const RAW_TEXT_ELEMENTS = ['script', 'style', 'xmp', 'iframe', 'noembed', 'noframes', 'title', 'textarea']
const INTEGRATION_ELEMENTS = ['foreignobject', 'desc', 'title', 'mi', 'mo', 'mn', 'ms', 'mtext', 'annotation-xml']

/** Open foreign roots and integration points kept at most (each `<svg>` costs an entry). */
const MAX_FOREIGN_DEPTH = 512

/**
 * The start tags a scan reports, compiled once: tag name (lower case) → what it means to the scan;
 * and, when given, the only attributes reported (others are walked over without becoming strings).
 */
export class TagSet {
  /** @internal */
  readonly flags = new Map<string, number>()
  /** @internal longest name with a meaning: longer names are not looked up */
  readonly maxNameLength: number
  /** @internal lower-cased attribute names to report, or undefined for all */
  readonly attributes: string[] | undefined

  constructor (wanted: readonly string[], attributes?: readonly string[]) {
    this.attributes = attributes?.map(a => a.toLowerCase())
    const add = (name: string, flag: number): void => { this.flags.set(name, (this.flags.get(name) ?? 0) | flag) }
    for (const name of wanted) add(name.toLowerCase(), WANTED)
    for (const name of RAW_TEXT_ELEMENTS) add(name, RAW_TEXT)
    for (const name of INTEGRATION_ELEMENTS) add(name, INTEGRATION)
    add('plaintext', PLAINTEXT)
    add('svg', FOREIGN_ROOT)
    add('math', FOREIGN_ROOT)
    // `<image>` is read as `<img>` in HTML content.
    if (this.flags.has('img')) add('image', WANTED)
    this.maxNameLength = Math.max(...[...this.flags.keys()].map(k => k.length))
  }
}

const LT = 0x3C
const GT = 0x3E
const SLASH = 0x2F
const BANG = 0x21
const QUESTION = 0x3F
const EQ = 0x3D
const DQ = 0x22
const SQ = 0x27
const DASH = 0x2D

function isWs (c: number): boolean {
  return c === 0x20 || c === 0x0A || c === 0x09 || c === 0x0C || c === 0x0D
}

/** Whitespace, `/` or `>`: what ends a tag name. */
function endsName (c: number): boolean {
  return c === 0x20 || c === GT || c === SLASH || c === 0x0A || c === 0x09 || c === 0x0C || c === 0x0D
}

function isAsciiAlpha (c: number): boolean {
  return (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A)
}

/** `s.slice(start, end)` in lower case, without a second string when it has no upper-case letter. */
function lowerSlice (s: string, start: number, end: number): string {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x41 && c <= 0x5A) return s.slice(start, end).toLowerCase()
  }
  return s.slice(start, end)
}

/**
 * Report every start tag of `tags`' wanted names in `html` to `onTag`. Never throws because of the
 * page.
 */
export function scanStartTags (html: string, tags: TagSet, onTag: StartTagHandler): void {
  const n = html.length
  const flagsOf = tags.flags
  const maxName = tags.maxNameLength
  /** Open foreign roots (`svg`, `math`) and integration points inside them, innermost last. */
  const foreign: string[] = []
  let inForeign = false
  let i = 0
  while (i < n) {
    const lt = html.indexOf('<', i)
    if (lt === -1 || lt + 1 >= n) return
    const c = html.charCodeAt(lt + 1)

    if (isAsciiAlpha(c)) {
      // A start tag.
      let pos = lt + 2
      while (pos < n && !endsName(html.charCodeAt(pos))) pos++
      if (pos >= n) return
      const nameLength = pos - lt - 1
      let flags = 0
      let name = ''
      if (nameLength <= maxName) {
        name = lowerSlice(html, lt + 1, pos)
        flags = flagsOf.get(name) ?? 0
        if (inForeign) {
          // Foreign content: no raw text, and `<image>` is itself.
          flags &= ~(RAW_TEXT | PLAINTEXT)
          if (name === 'image') flags &= ~WANTED
        } else if (name === 'image') {
          name = 'img'
        }
      }
      const attribs: Record<string, string> | undefined = (flags & WANTED) !== 0 ? {} : undefined
      const end = scanAttributes(html, pos, attribs, tags.attributes)
      if (end < 0) return // the page ends inside the tag: it is dropped
      const selfClosing = lastSelfClosing
      if (attribs !== undefined) onTag(name, attribs)
      i = end

      if ((flags & (FOREIGN_ROOT | INTEGRATION)) !== 0) {
        if ((flags & FOREIGN_ROOT) !== 0) {
          // `<svg/>` is closed at once (a self-closing foreign element).
          if (!selfClosing && foreign.length < MAX_FOREIGN_DEPTH) foreign.push(name)
        } else if (foreign.length > 0 && foreign.length < MAX_FOREIGN_DEPTH && !(inForeign && selfClosing)) {
          foreign.push(name)
        }
        inForeign = isForeign(foreign, flagsOf)
      }
      if ((flags & PLAINTEXT) !== 0) return
      if ((flags & RAW_TEXT) !== 0) {
        i = endOfRawText(html, i, name)
        if (i < 0) return
      }
      continue
    }

    if (c === SLASH) {
      // `</name …>` an end tag; `</>` nothing; `</ …>`, `</1…>` bogus comments: all to the next `>`.
      const d = lt + 2 < n ? html.charCodeAt(lt + 2) : -1
      if (d === GT) { i = lt + 3; continue }
      if (foreign.length > 0 && isAsciiAlpha(d)) {
        let pos = lt + 3
        while (pos < n && !endsName(html.charCodeAt(pos))) pos++
        const name = lowerSlice(html, lt + 2, pos)
        const at = foreign.lastIndexOf(name)
        if (at >= 0) {
          foreign.length = at
          inForeign = isForeign(foreign, flagsOf)
        }
      }
      const gt = html.indexOf('>', lt + 2)
      if (gt === -1) return
      i = gt + 1
      continue
    }

    if (c === BANG) {
      if (html.charCodeAt(lt + 2) === DASH && html.charCodeAt(lt + 3) === DASH) {
        i = endOfComment(html, lt + 4)
      } else if (html.startsWith('[CDATA[', lt + 2)) {
        const close = html.indexOf(']]>', lt + 9)
        i = close === -1 ? -1 : close + 3
      } else {
        // `<!doctype …>`, `<!>`, `<!-x>`, `<![if …]>`: to the next `>`.
        const gt = html.indexOf('>', lt + 2)
        i = gt === -1 ? -1 : gt + 1
      }
      if (i < 0) return
      continue
    }

    if (c === QUESTION) {
      // `<?xml …?>`: a bogus comment in HTML, to the next `>`.
      const gt = html.indexOf('>', lt + 2)
      if (gt === -1) return
      i = gt + 1
      continue
    }

    // `<` before anything else is text; what follows is read again (`<<a>` holds a tag).
    i = lt + 1
  }
}

/** Whether the innermost open foreign root or integration point is a foreign root. */
function isForeign (foreign: string[], flagsOf: Map<string, number>): boolean {
  return foreign.length > 0 && ((flagsOf.get(foreign[foreign.length - 1]) ?? 0) & FOREIGN_ROOT) !== 0
}

/**
 * Set by `scanAttributes`: whether the tag it walked ended with `/>` (and not `<a href=/x/>`, whose
 * `/` belongs to the value). A second result without an object per tag.
 */
let lastSelfClosing = false

/**
 * Walk a start tag's attributes from `pos` (just after its name) to its `>`, putting them in
 * `attribs` when given (only those named in `names`, when given). Returns the index after the `>`,
 * or -1 when the page ends inside the tag.
 */
function scanAttributes (html: string, pos: number, attribs: Record<string, string> | undefined, names: string[] | undefined): number {
  const n = html.length
  lastSelfClosing = false
  for (;;) {
    // Before an attribute name.
    let c = 0
    while (pos < n && isWs(c = html.charCodeAt(pos))) pos++
    if (pos >= n) return -1
    if (c === GT) return pos + 1
    if (c === SLASH) {
      pos++
      while (pos < n && isWs(c = html.charCodeAt(pos))) pos++
      if (pos >= n) return -1
      if (c === GT) {
        lastSelfClosing = true
        return pos + 1
      }
      continue // `<a / href=x>`, `<a/b>`: what follows is read as an attribute
    }

    // The name: its first character is taken as it is, even `=`.
    const nameStart = pos++
    while (pos < n && (c = html.charCodeAt(pos)) !== EQ && !endsName(c)) pos++
    if (pos >= n) return -1
    const nameEnd = pos
    while (pos < n && isWs(c = html.charCodeAt(pos))) pos++
    if (pos >= n) return -1

    let valueStart = 0
    let valueEnd = 0
    if (c === EQ) {
      pos++
      while (pos < n && isWs(c = html.charCodeAt(pos))) pos++
      if (pos >= n) return -1
      if (c === DQ || c === SQ) {
        valueStart = pos + 1
        valueEnd = html.indexOf(c === DQ ? '"' : "'", valueStart)
        if (valueEnd === -1) return -1
        pos = valueEnd + 1
      } else {
        valueStart = pos
        while (pos < n && !isWs(c = html.charCodeAt(pos)) && c !== GT) pos++
        if (pos >= n) return -1
        valueEnd = pos
      }
    }
    // else: an attribute without a value; the character that ended it is read again.

    if (attribs !== undefined) {
      const name = names === undefined ? lowerSlice(html, nameStart, nameEnd) : findName(html, nameStart, nameEnd, names)
      if (name !== undefined && !Object.hasOwn(attribs, name)) {
        const raw = html.slice(valueStart, valueEnd)
        attribs[name] = raw.includes('&') ? decodeHTMLAttribute(raw) : raw
      }
    }
  }
}

/** The one of `names` (lower case) that `html` holds from `start` to `end`, in any case. */
function findName (html: string, start: number, end: number, names: string[]): string | undefined {
  const length = end - start
  for (const name of names) {
    if (name.length === length && matchesLower(html, start, name)) return name
  }
  return undefined
}

/**
 * The index after the comment whose text starts at `start` (just after `<!--`), or -1 when the page
 * ends inside it.
 */
function endOfComment (html: string, start: number): number {
  // `<!-->` and `<!--->` end at once.
  const first = html.charCodeAt(start)
  if (first === GT) return start + 1
  if (first === DASH && html.charCodeAt(start + 1) === GT) return start + 2
  let at = html.indexOf('--', start)
  while (at !== -1) {
    const c = html.charCodeAt(at + 2)
    if (c === GT) return at + 3
    if (c === BANG && html.charCodeAt(at + 3) === GT) return at + 4
    at = html.indexOf('--', at + 1)
  }
  return -1
}

/**
 * The index of the `<` that starts the end tag of raw-text element `name`, whose text starts at
 * `start`: `</name` in any case, then whitespace, `/` or `>`. -1 when the page ends first.
 */
function endOfRawText (html: string, start: number, name: string): number {
  const n = html.length
  let at = html.indexOf('</', start)
  while (at !== -1) {
    const after = at + 2 + name.length
    if (after < n && endsName(html.charCodeAt(after)) && matchesLower(html, at + 2, name)) return at
    at = html.indexOf('</', at + 1)
  }
  return -1
}

/** Whether `s` holds `lower` at `at`, ASCII case-insensitively (`lower` is in lower case). */
function matchesLower (s: string, at: number, lower: string): boolean {
  for (let k = 0; k < lower.length; k++) {
    const c = s.charCodeAt(at + k)
    const l = lower.charCodeAt(k)
    if (c !== l && !(c >= 0x41 && c <= 0x5A && c + 0x20 === l)) return false
  }
  return true
}

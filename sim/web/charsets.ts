/**
 * Legacy character encodings for the synthetic web's non-UTF-8 pages. Node can decode
 * windows-1252 and Shift_JIS but encodes only UTF-8, so the encoders are built here: windows-1252
 * from its table (WHATWG Encoding Standard, index-windows-1252), Shift_JIS by inverting Node's own
 * decoder over every two-byte code once, on first use.
 */

export type Charset = 'utf-8' | 'windows-1252' | 'shift_jis'

/** windows-1252 bytes 0x80–0x9F (the rest of 0xA0–0xFF is Latin-1). Unassigned bytes are absent. */
const CP1252_HIGH: Record<number, number> = {
  0x20ac: 0x80, 0x201a: 0x82, 0x0192: 0x83, 0x201e: 0x84, 0x2026: 0x85, 0x2020: 0x86, 0x2021: 0x87,
  0x02c6: 0x88, 0x2030: 0x89, 0x0160: 0x8a, 0x2039: 0x8b, 0x0152: 0x8c, 0x017d: 0x8e, 0x2018: 0x91,
  0x2019: 0x92, 0x201c: 0x93, 0x201d: 0x94, 0x2022: 0x95, 0x2013: 0x96, 0x2014: 0x97, 0x02dc: 0x98,
  0x2122: 0x99, 0x0161: 0x9a, 0x203a: 0x9b, 0x0153: 0x9c, 0x017e: 0x9e, 0x0178: 0x9f
}

let sjisTable: Map<string, number> | undefined

function shiftJisTable (): Map<string, number> {
  if (sjisTable !== undefined) return sjisTable
  const table = new Map<string, number>()
  const decoder = new TextDecoder('shift_jis')
  const pair = new Uint8Array(2)
  for (let lead = 0x81; lead <= 0xfc; lead++) {
    if (lead > 0x9f && lead < 0xe0) continue
    for (let trail = 0x40; trail <= 0xfc; trail++) {
      if (trail === 0x7f) continue
      pair[0] = lead
      pair[1] = trail
      const s = decoder.decode(pair)
      if (s.length === 1 && s !== '\ufffd' && !table.has(s)) table.set(s, (lead << 8) | trail)
    }
  }
  // Half-width katakana are single bytes.
  for (let b = 0xa1; b <= 0xdf; b++) {
    const s = decoder.decode(Uint8Array.of(b))
    if (!table.has(s)) table.set(s, b)
  }
  sjisTable = table
  return table
}

/**
 * `text` in `charset`. Throws on a character the charset cannot hold: the texts are fixed below,
 * so that is a bug here, not something a seed can cause.
 */
export function encode (text: string, charset: Charset): Buffer {
  if (charset === 'utf-8') return Buffer.from(text, 'utf8')
  const out: number[] = []
  if (charset === 'windows-1252') {
    for (const ch of text) {
      const c = ch.codePointAt(0) as number
      if (c < 0x80 || (c >= 0xa0 && c <= 0xff)) out.push(c)
      else if (CP1252_HIGH[c] !== undefined) out.push(CP1252_HIGH[c])
      else throw new Error(`windows-1252 cannot encode U+${c.toString(16)}`)
    }
  } else {
    const table = shiftJisTable()
    for (const ch of text) {
      const c = ch.codePointAt(0) as number
      if (c < 0x80) { out.push(c); continue }
      const code = table.get(ch)
      if (code === undefined) throw new Error(`Shift_JIS cannot encode U+${c.toString(16)}`)
      if (code > 0xff) out.push(code >> 8, code & 0xff)
      else out.push(code)
    }
  }
  return Buffer.from(out)
}

const CP1252_DECODE = new Map(Object.entries(CP1252_HIGH).map(([c, b]) => [b, String.fromCodePoint(Number(c))]))

/**
 * `bytes` decoded from `charset`. Node's own windows-1252 decoder reads 0x80–0x9F as C1 controls
 * (https://github.com/nodejs/node/issues/56542), so that one is decoded from the table here.
 */
export function decode (bytes: Uint8Array, charset: Charset): string {
  if (charset !== 'windows-1252') return new TextDecoder(charset).decode(bytes)
  let out = ''
  for (const b of bytes) out += b >= 0x80 && b < 0xa0 ? (CP1252_DECODE.get(b) ?? '\ufffd') : String.fromCharCode(b)
  return out
}

/**
 * Words that name pages (`/w/<word>`) linked from non-UTF-8 pages with the word written raw in the
 * page's charset: a crawler that decodes the page wrongly asks for a URL that does not exist. The
 * windows-1252 ones include bytes 0x80–0x9F (€, –, ‘ ’), which a plain Latin-1 decoder gets wrong.
 */
export const WORDS: Readonly<Record<Exclude<Charset, 'utf-8'>, readonly string[]>> = {
  'windows-1252': ['café', 'naïve', 'crème-brûlée', '€uro', 'façade', '–tiret', '‘quoted’', 'Ærø'],
  shift_jis: ['日本', '東京', 'さくら', 'カタカナ', '富士山', '漢字', 'ﾊﾝｶｸ']
}

/** Every word, UTF-8 pages take theirs from here too. */
export const ALL_WORDS: readonly string[] = [...WORDS['windows-1252'], ...WORDS.shift_jis]

/** Filler text of a page in a charset, so that its bytes are not plain ASCII. */
export const SAMPLE_TEXT: Readonly<Record<Charset, readonly string[]>> = {
  'utf-8': ['Grüße aus Köln — 東京の天気は晴れ。', 'Ελληνικά, русский, 한국어 and “quotes”.'],
  'windows-1252': ['Déjà vu: the café’s crème brûlée costs 5 € – “très bon”.', 'Ça coûte très cher… naïve façade, Œuvre ‰ ™.'],
  shift_jis: ['今日は東京で桜を見ました。', 'カタカナとひらがなと漢字の文章です。ﾊﾝｶｸｶﾀｶﾅも。']
}

/** The `/w/<word>` request-target: the path as a URL parser percent-encodes it (UTF-8). */
export function wordTarget (word: string): string {
  return '/w/' + encodeURIComponent(word)
}

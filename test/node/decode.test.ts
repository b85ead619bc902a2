import assert from 'node:assert/strict'
import { decodeBody, isHtml, sniffCharset } from '../../node/decode.js'

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const bytes = (...parts: Array<string | number[]>): Uint8Array => {
  const chunks = parts.map(p => typeof p === 'string' ? utf8(p) : Uint8Array.from(p))
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.length
  }
  return out
}

// "日本語" in Shift_JIS, "café €" in windows-1252, "한국어" in EUC-KR.
const SHIFT_JIS_NIHONGO = [0x93, 0xFA, 0x96, 0x7B, 0x8C, 0xEA]
const WINDOWS_1252_CAFE_EURO = [0x63, 0x61, 0x66, 0xE9, 0x20, 0x80]
const EUC_KR_HANGUGEO = [0xC7, 0xD1, 0xB1, 0xB9, 0xBE, 0xEE]

describe('decode', () => {
  describe('sniffCharset', () => {
    it('defaults to utf-8 with no evidence', () => {
      assert.equal(sniffCharset(undefined, utf8('<p>plain</p>')), 'utf-8')
      assert.equal(sniffCharset('text/html', new Uint8Array()), 'utf-8')
    })

    it('takes a byte order mark first, over the header and meta', () => {
      assert.equal(sniffCharset('text/html; charset=iso-8859-1', bytes([0xEF, 0xBB, 0xBF], '<meta charset="shift_jis">')), 'utf-8')
      assert.equal(sniffCharset('text/html; charset=utf-8', bytes([0xFF, 0xFE], [0x3C, 0])), 'utf-16le')
      assert.equal(sniffCharset(undefined, bytes([0xFE, 0xFF], [0, 0x3C])), 'utf-16be')
    })

    it('takes the Content-Type charset over a meta charset', () => {
      assert.equal(sniffCharset('text/html; charset=Shift_JIS', utf8('<meta charset="utf-8">')), 'shift_jis')
    })

    it('reads the charset parameter in any case, spacing and quoting', () => {
      assert.equal(sniffCharset('text/html;charset=utf-8', new Uint8Array()), 'utf-8')
      assert.equal(sniffCharset('text/html; Charset = "ISO-8859-1"', new Uint8Array()), 'windows-1252')
      assert.equal(sniffCharset("text/html; foo=bar; CHARSET='euc-kr'", new Uint8Array()), 'euc-kr')
      assert.equal(sniffCharset('text/html; charset=', utf8('<meta charset="euc-kr">')), 'euc-kr')
    })

    it('maps labels to encodings as the Encoding Standard does', () => {
      assert.equal(sniffCharset('text/html; charset=latin1', new Uint8Array()), 'windows-1252')
      assert.equal(sniffCharset('text/html; charset=us-ascii', new Uint8Array()), 'windows-1252')
      assert.equal(sniffCharset('text/html; charset=sjis', new Uint8Array()), 'shift_jis')
      assert.equal(sniffCharset('text/html; charset=UTF8', new Uint8Array()), 'utf-8')
    })

    it('skips an unknown header label and looks at the meta, then falls back to utf-8', () => {
      assert.equal(sniffCharset('text/html; charset=no-such-charset', utf8('<meta charset="windows-1252">')), 'windows-1252')
      assert.equal(sniffCharset('text/html; charset=no-such-charset', utf8('<p>x</p>')), 'utf-8')
      // A "replacement" label (ISO-2022-KR) decodes to nothing in a browser; we read it as unknown.
      assert.equal(sniffCharset('text/html; charset=iso-2022-kr', utf8('<p>x</p>')), 'utf-8')
    })

    it('finds <meta charset> in the first 1024 bytes', () => {
      assert.equal(sniffCharset(undefined, utf8('<!doctype html><html><head><meta charset="Shift_JIS">')), 'shift_jis')
      assert.equal(sniffCharset('text/html', utf8("<META CHARSET='euc-kr'>")), 'euc-kr')
      assert.equal(sniffCharset(undefined, utf8('<meta charset=windows-1252>')), 'windows-1252')
      assert.equal(sniffCharset(undefined, utf8('<meta/charset=iso-8859-2>')), 'iso-8859-2')
      // Unquoted, the value runs to whitespace or `>`: `iso-8859-2/` is not a label.
      assert.equal(sniffCharset(undefined, utf8('<meta charset=iso-8859-2/>')), 'utf-8')
    })

    it('finds an http-equiv Content-Type pragma, in either attribute order', () => {
      assert.equal(sniffCharset(undefined, utf8('<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">')), 'shift_jis')
      assert.equal(sniffCharset(undefined, utf8('<meta content="text/html;charset=\'euc-kr\'" http-equiv=content-type>')), 'euc-kr')
    })

    it('ignores a content charset without the http-equiv pragma', () => {
      assert.equal(sniffCharset(undefined, utf8('<meta name="x" content="text/html; charset=shift_jis">')), 'utf-8')
    })

    it('ignores a meta past the first 1024 bytes', () => {
      const padding = '<p>' + 'x'.repeat(1100) + '</p>'
      assert.equal(sniffCharset(undefined, utf8(padding + '<meta charset="shift_jis">')), 'utf-8')
    })

    it('ignores a meta inside a comment or an attribute value', () => {
      assert.equal(sniffCharset(undefined, utf8('<!-- <meta charset="shift_jis"> --><p>')), 'utf-8')
      assert.equal(sniffCharset(undefined, utf8('<img alt="<meta charset=shift_jis>"><p>')), 'utf-8')
      assert.equal(sniffCharset(undefined, utf8('<!-- <meta charset="shift_jis"> --><meta charset="euc-kr">')), 'euc-kr')
    })

    it('skips a meta with an unknown label and takes the next', () => {
      assert.equal(sniffCharset(undefined, utf8('<meta charset="bogus"><meta charset="shift_jis">')), 'shift_jis')
    })

    it('reads a meta utf-16 label as utf-8 and x-user-defined as windows-1252, as the prescan does', () => {
      assert.equal(sniffCharset(undefined, utf8('<meta charset="utf-16le">')), 'utf-8')
      assert.equal(sniffCharset(undefined, utf8('<meta charset="x-user-defined">')), 'windows-1252')
    })

    it('does not throw on binary junk', () => {
      const junk = new Uint8Array(4096)
      for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919) % 256
      assert.equal(typeof sniffCharset('text/html; charset', junk), 'string')
      assert.equal(sniffCharset(undefined, utf8('<meta charset="')), 'utf-8')
      assert.equal(sniffCharset(undefined, utf8('<meta')), 'utf-8')
      assert.equal(sniffCharset(undefined, utf8('<meta http-equiv="content-type" content="charset=')), 'utf-8')
    })
  })

  describe('decodeBody', () => {
    it('decodes utf-8 and strips its BOM', () => {
      assert.equal(decodeBody('text/html', bytes([0xEF, 0xBB, 0xBF], 'héllo')), 'héllo')
      assert.equal(decodeBody(undefined, utf8('日本語')), '日本語')
    })

    it('decodes utf-16le and utf-16be by their BOM', () => {
      assert.equal(decodeBody('text/html', bytes([0xFF, 0xFE], [0x68, 0, 0x69, 0])), 'hi')
      assert.equal(decodeBody('text/html; charset=utf-8', bytes([0xFE, 0xFF], [0, 0x68, 0, 0x69])), 'hi')
    })

    it('decodes windows-1252 bytes labelled iso-8859-1, with 0x80 as the euro sign', () => {
      assert.equal(decodeBody('text/html; charset=iso-8859-1', bytes(WINDOWS_1252_CAFE_EURO)), 'café €')
    })

    // Node's TextDecoder decodes windows-1252 as ISO-8859-1 (nodejs/node#56542).
    it('windows-1252 decoded as latin1: maps 0x80-0x9F to the characters of windows-1252', () => {
      assert.equal(decodeBody('text/html; charset=windows-1252', bytes([0x85, 0x91, 0x92, 0x93, 0x94, 0x96, 0x97, 0x99, 0x9F])), '…‘’“”–—™Ÿ')
      // The five bytes windows-1252 leaves undefined stay C1 controls, as in the Encoding Standard's index.
      assert.equal(decodeBody('text/html; charset=us-ascii', bytes([0x81, 0x8D, 0x8F, 0x90, 0x9D])), '\u0081\u008D\u008F\u0090\u009D')
      assert.equal(decodeBody('text/html; charset=latin1', bytes([0x41, 0xA0, 0xFF])), 'A\u00A0ÿ')
      assert.equal(decodeBody(undefined, bytes('<meta charset="iso-8859-1">', [0x93, 0x78, 0x94])), '<meta charset="iso-8859-1">“x”')
    })

    it('decodes shift_jis bytes named by a meta charset', () => {
      assert.equal(decodeBody('text/html', bytes('<meta charset="shift_jis"><p>', SHIFT_JIS_NIHONGO)), '<meta charset="shift_jis"><p>日本語')
    })

    it('decodes euc-kr bytes named by the header', () => {
      assert.equal(decodeBody('text/html; charset=euc-kr', bytes(EUC_KR_HANGUGEO)), '한국어')
    })

    it('replaces malformed sequences instead of throwing', () => {
      assert.equal(decodeBody('text/html; charset=utf-8', bytes('a', [0xFF, 0xC3], 'b')), 'a\uFFFD\uFFFDb')
    })
  })

  describe('isHtml', () => {
    const page = utf8('<!DOCTYPE html><html><body>x</body></html>')

    it('trusts text/html and application/xhtml+xml, with parameters and in any case', () => {
      assert.equal(isHtml('text/html', new Uint8Array()), true)
      assert.equal(isHtml('Text/HTML; charset=utf-8', utf8('not markup at all')), true)
      assert.equal(isHtml('application/xhtml+xml', page), true)
    })

    it('trusts a specific non-HTML type over HTML-looking bytes', () => {
      assert.equal(isHtml('image/png', page), false)
      assert.equal(isHtml('text/plain', page), false)
      assert.equal(isHtml('application/json', page), false)
    })

    it('sniffs a missing or generic type: doctype or <html> after whitespace', () => {
      assert.equal(isHtml(undefined, page), true)
      assert.equal(isHtml('', utf8('<html lang="en">')), true)
      assert.equal(isHtml('application/octet-stream', utf8(' \r\n\t<!doctype HTML>')), true)
      assert.equal(isHtml(undefined, utf8('<HTML>')), true)
      assert.equal(isHtml(undefined, bytes([0xEF, 0xBB, 0xBF], '<!DOCTYPE html>')), true)
    })

    it('does not sniff other content as HTML', () => {
      assert.equal(isHtml(undefined, utf8('%PDF-1.7')), false)
      assert.equal(isHtml(undefined, bytes([0x89], 'PNG\r\n')), false)
      assert.equal(isHtml('application/octet-stream', utf8('<htmlx>')), false)
      assert.equal(isHtml(undefined, utf8('text before <html>')), false)
      assert.equal(isHtml(undefined, new Uint8Array()), false)
    })
  })
})

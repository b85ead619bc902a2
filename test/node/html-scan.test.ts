import assert from 'node:assert/strict'
import { scanStartTags, TagSet } from '../../node/html-scan.js'
import { Htmlparser2 } from '../../node/htmlparser2-ref.js'
import { SiteModel } from '../../sim/web.js'
import { prng } from '../utils/random.js'

const WANTED = ['a', 'area', 'link', 'img', 'source', 'script', 'iframe', 'frame', 'video', 'audio', 'base', 'meta']
const TAGS = new TagSet(WANTED)
/** As parser.ts asks: only the attributes it reads. */
const LINK_ATTRIBUTES = ['href', 'rel', 'src', 'srcset', 'name', 'content', 'http-equiv']
const LINK_TAGS = new TagSet(WANTED, LINK_ATTRIBUTES)

type Event = [string, Record<string, string>]

function scan (html: string, tags = TAGS): Event[] {
  const events: Event[] = []
  scanStartTags(html, tags, (name, attribs) => events.push([name, attribs]))
  return events
}

/** The same start tags as htmlparser2's Parser reports them with the options shoal used. */
function reference (html: string, attributes?: string[]): Event[] {
  const events: Event[] = []
  const parser = new Htmlparser2({
    onopentag (name, attribs) {
      if (!WANTED.includes(name)) return
      events.push([name, attributes === undefined ? { ...attribs } : Object.fromEntries(Object.entries(attribs).filter(([k]) => attributes.includes(k)))])
    }
  }, { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true })
  parser.end(html)
  return events
}

function hrefs (html: string): string[] {
  return scan(html).map(([name, a]) => `${name} ${a.href ?? a.src ?? ''}`)
}

const NAMES = ['a', 'A', 'area', 'link', 'img', 'IMG', 'image', 'source', 'script', 'SCRIPT', 'Script', 'style', 'title', 'textarea',
  'xmp', 'iframe', 'noembed', 'noframes', 'div', 'p', 'span', 'br', 'base', 'meta', 'video', 'audio', 'frame', 'scripts', 'b', 'form', 'a"b', 'a<b']
const ATTRS = ['href', 'HREF', 'src', 'srcset', 'rel', 'name', 'content', 'http-equiv', 'x', '=x', '"q"', 'data-a', 'hReF', 'a<b', "'"]
const VALUE_PARTS = ['/p', '/x?a=1', '&amp;', '&amp', '&ampx', '&amp=', '&gt', '&#38;', '&#x26;', '&#', '&', '>', '<', '"', "'", ' ', '\n', '/', 'nofollow', '=', 'ü', '😀', '-->', '</script>']
const TEXT = ['hello ', 'a<b', '<', '>', '<<', '&amp;', '&lt;a href=/t>', '&', '=', '"', "'", ' ', '\n\t', '/', '-', '--', '!', '?', ']]>', '-->', '--!>', 'x', '</', '<!', '<?']
const MARKUP = ['<!--', '-->', '<!-->', '<!--->', '<!---->', '--!>', '<!doctype html>', '<!DOCTYPE>', '<!', '<![CDATA[', '<![CDATA', '<?xml version="1.0"?>',
  '<!-x>', '<!->', '<!>', '</>', '</ a>', '</1>', '</a title=">">', '</script >', '</SCRIPT>', '</script/', '</style>', '</title>', '</textarea>', '</xmp>',
  '</iframe>', '</noembed>', '</noframes>', '</scripts>', '<plaintext>']

function soup (random: () => number, pieces: number): string {
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)]
  let html = ''
  for (let p = 0; p < pieces; p++) {
    const r = random()
    if (r < 0.35) html += pick(TEXT)
    else if (r < 0.55) html += pick(MARKUP)
    else if (r < 0.6) html += '</' + pick(NAMES) + (random() < 0.8 ? '>' : ' x="y">')
    else {
      html += '<' + pick(NAMES)
      const attrs = Math.floor(random() * 4)
      for (let k = 0; k < attrs; k++) {
        html += pick([' ', '  ', '\n', '/', ' / ', ''])
        html += pick(ATTRS)
        const form = random()
        let value = ''
        const parts = Math.floor(random() * 3)
        for (let v = 0; v < parts; v++) value += pick(VALUE_PARTS)
        if (form < 0.2) continue
        html += pick(['=', ' = ', '=\n'])
        if (form < 0.5) html += '"' + value.replaceAll('"', '') + '"'
        else if (form < 0.7) html += "'" + value.replaceAll("'", '') + "'"
        else html += value.replace(/[\s>]/g, '')
      }
      html += pick(['>', '>', '>', '/>', ' />', ' / >', '', ' '])
    }
  }
  return html
}

describe('html-scan', () => {
  it('reports the same start tags and attributes as htmlparser2 on 4,000 random tag soups', function () {
    this.timeout(20_000)
    for (let seed = 1; seed <= 4000; seed++) {
      const html = soup(prng(seed), 4 + (seed % 60))
      assert.deepEqual(scan(html), reference(html), `seed ${seed}: ${JSON.stringify(html)}`)
      assert.deepEqual(scan(html, LINK_TAGS), reference(html, LINK_ATTRIBUTES), `seed ${seed}, link attributes only: ${JSON.stringify(html)}`)
    }
  })

  it('reports the same start tags as htmlparser2 on the generated site of bench/', () => {
    for (const profile of ['large', 'small'] as const) {
      const site = new SiteModel({ seed: 1, pages: 200, profile })
      for (let i = 0; i < 200; i++) {
        const html = site.body(0, i, ['http://site.test']).toString('utf8')
        const events = scan(html)
        assert.ok(events.length > 0)
        assert.deepEqual(events, reference(html), `${profile} page ${i}`)
        assert.deepEqual(scan(html, LINK_TAGS), reference(html, LINK_ATTRIBUTES), `${profile} page ${i}, link attributes only`)
      }
    }
  })

  it('can fail: a different tokenizer disagrees with the reference on the soups', () => {
    // Reading `>` inside a quoted value as the end of the tag, as a naive regex scanner would.
    const naive = (html: string): Event[] => [...html.matchAll(/<(a|img)\s[^>]*?href="([^"]*)"[^>]*>/gi)].map(m => [m[1].toLowerCase(), { href: m[2] }] as Event)
    let differ = 0
    for (let seed = 1; seed <= 200; seed++) {
      const html = soup(prng(seed), 30)
      if (JSON.stringify(naive(html)) !== JSON.stringify(reference(html))) differ++
    }
    assert.ok(differ > 100, `only ${differ} of 200 soups tell a naive scanner apart`)
  })

  it('reads attribute syntax as the HTML tokenizer does', () => {
    assert.deepEqual(scan('<a href=/x/>'), [['a', { href: '/x/' }]])
    assert.deepEqual(scan('<a/href=x>'), [['a', { href: 'x' }]])
    assert.deepEqual(scan('<a =x href=y>'), [['a', { '=x': '', href: 'y' }]])
    assert.deepEqual(scan('<a title="a>b" href=\'/q\'>'), [['a', { title: 'a>b', href: '/q' }]])
    assert.deepEqual(scan('<a href rel=x>'), [['a', { href: '', rel: 'x' }]])
    assert.deepEqual(scan('<A HREF="/1" href="/2">'), [['a', { href: '/1' }]])
    assert.deepEqual(scan('<a href="?a=1&amp;b=2&ampc&amp=d&#x2F;">'), [['a', { href: '?a=1&b=2&ampc&amp=d/' }]])
    assert.deepEqual(scan('<A Title="t" HTTP-EQUIV=x hreff=1 HReF=/h>', LINK_TAGS), [['a', { 'http-equiv': 'x', href: '/h' }]])
  })

  it('drops a tag the page ends inside', () => {
    assert.deepEqual(hrefs('<a href="/1"><a href="/2'), ['a /1'])
    assert.deepEqual(hrefs('<a href="/1"><a href=/2'), ['a /1'])
    assert.deepEqual(hrefs('<a href="/1"><a'), ['a /1'])
  })

  it('skips raw text, comments, CDATA and bogus comments to their ends', () => {
    assert.deepEqual(hrefs('<script>"<a href=/s>"</scripts></SCRIPT ><a href=/1>'), ['script ', 'a /1'])
    assert.deepEqual(hrefs('<style><a href=/s></style><title><a href=/t></title><textarea><a href=/x></textarea/><a href=/2>'), ['a /2'])
    assert.deepEqual(hrefs('<!--<a href=/c>--!><!--><a href=/3><!-- --><a href=/4>'), ['a /3', 'a /4'])
    assert.deepEqual(hrefs('<![CDATA[<a href=/cd>]]><a href=/5><!doctype <a href=/d><a href=/6><?x <a href=/q><a href=/7>'), ['a /5', 'a /6', 'a /7'])
    assert.deepEqual(hrefs('<a href=/8><plaintext><a href=/p>'), ['a /8'])
    assert.deepEqual(hrefs('<!-- never closed <a href=/x>'), [])
    assert.deepEqual(hrefs('<script src=/s.js>never closed <a href=/x>'), ['script /s.js'])
  })

  it('reads foreign content: raw-text elements are ordinary inside <svg> and <math>, <image> is <img> outside them', () => {
    assert.deepEqual(hrefs('<svg><script><a href="/in-svg"></script></svg><script><a href="/no"></script><a href="/after">'), ['script ', 'a /in-svg', 'script ', 'a /after'])
    assert.deepEqual(hrefs('<svg/><style><a href="/no"></style>'), [])
    assert.deepEqual(hrefs('<math><mi><style><a href="/no"></style></mi><style><a href="/yes"></style></math>'), ['a /yes'])
    assert.deepEqual(hrefs('<image src=/i.png><svg><image href=/svg.png src=/s.png></svg>'), ['img /i.png'])
    for (const html of ['<svg><script><a href="/in-svg"></script></svg><script><a href="/no"></script>', '<svg/><style><a href="/no"></style>',
      '<math><mi><style><a href="/no"></style></mi><style><a href="/yes"></style></math>', '<image src=/i.png><svg><image href=/svg.png></svg>']) {
      assert.deepEqual(scan(html), reference(html), html)
    }
  })

  it('is linear on inputs that make naive scanners quadratic', function () {
    // Each of these would search to the end of the page once per construct if searches restarted.
    this.timeout(10_000)
    const inputs = [
      '<!--x-->'.repeat(200_000), // a search for '--!>' from every comment
      '<script>x</scrip'.repeat(100_000), // an end tag that never comes
      '<a title="'.repeat(1) + '</'.repeat(300_000),
      '<'.repeat(500_000),
      '<a '.repeat(200_000)
    ]
    for (const html of inputs) scan(html)
    assert.equal(scan('<!--x-->'.repeat(200_000) + '<a href=/end>').length, 1)
  })
})

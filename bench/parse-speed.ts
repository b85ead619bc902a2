/**
 * Throughput of the page parser on a realistic page: ~50 KB of HTML with ~150 links of every kind
 * (relative, absolute, protocol-relative, with entities and query strings, duplicates, srcset,
 * scripts and stylesheets), inline script and style, and a lot of text.
 *
 *   node --import tsx bench/parse-speed.ts [seconds]
 *
 * Prints pages/s for the full `parsePage` and, for comparison, for htmlparser2 tokenizing alone.
 */

import { pathToFileURL } from 'node:url'
import { Htmlparser2 as Parser } from '../node/htmlparser2-ref.js'
import { parsePage } from '../node/parser.js'

const PAGE_URL = 'https://www.example.com/news/2024/05/some-article.html'
const WORDS = 'the quick brown fox jumps over lazy dog crawler peer shoal frontier robots politeness'.split(' ')

function text (words: number, seed: number): string {
  const out: string[] = []
  for (let i = 0; i < words; i++) out.push(WORDS[(seed * 7 + i * 13) % WORDS.length])
  return out.join(' ')
}

export function buildPage (): string {
  const parts: string[] = []
  parts.push('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">')
  parts.push('<title>Some article — Example News</title>')
  parts.push('<meta name="viewport" content="width=device-width, initial-scale=1">')
  parts.push('<meta name="description" content="' + text(30, 1) + '">')
  parts.push('<link rel="preconnect" href="https://fonts.example.net">')
  parts.push('<link rel="dns-prefetch" href="//cdn.example.net">')
  parts.push('<link rel="canonical" href="https://www.example.com/news/2024/05/some-article.html">')
  parts.push('<link rel="icon" href="/favicon.ico"><link rel="alternate" hreflang="de" href="https://de.example.com/news/2024/05/some-article.html">')
  for (let i = 0; i < 4; i++) parts.push(`<link rel="stylesheet" href="/static/css/main.${i}.css?v=20240501">`)
  for (let i = 0; i < 4; i++) parts.push(`<script src="https://cdn.example.net/js/bundle.${i}.js" defer></script>`)
  parts.push('<style>' + '.c{color:#333;margin:0 auto;padding:4px 8px}\n'.repeat(60) + '</style>')
  parts.push('<script>window.__STATE__ = ' + JSON.stringify({ items: Array.from({ length: 60 }, (_, i) => ({ id: i, title: text(6, i), url: `/item/${i}` })) }) + ';</script>')
  parts.push('</head><body class="article"><header><nav class="top"><ul>')
  for (let i = 0; i < 30; i++) parts.push(`<li class="nav-item"><a class="nav-link" href="/section/${i}/">Section ${i}</a></li>`)
  parts.push('</ul></nav></header><main><article><h1>Some article</h1>')
  for (let p = 0; p < 44; p++) {
    parts.push(`<p class="para">${text(70, p)} <a href="/news/2024/05/related-${p}.html?ref=body&amp;utm_source=x">${text(3, p)}</a> ${text(25, p + 1)}`)
    if (p % 4 === 0) parts.push(` <a href="https://other${p}.example.org/path/${p}?a=1&amp;b=2" rel="noopener">ext</a>`)
    if (p % 5 === 0) parts.push(` <a href="//cdn.example.net/doc/${p}.pdf">pdf</a> <a href="#sec-${p}">§</a> <a href="mailto:desk${p}@example.com">mail</a>`)
    parts.push('</p>')
    if (p % 6 === 0) {
      parts.push(`<figure><img src="/img/photo-${p}.jpg" srcset="/img/photo-${p}-480.jpg 480w, /img/photo-${p}-960.jpg 960w, /img/photo-${p}-1440.jpg 1440w" alt="${text(5, p)}" width="960" height="540" loading="lazy"><figcaption>${text(12, p)}</figcaption></figure>`)
    }
  }
  parts.push('</article><aside><ul class="most-read">')
  for (let i = 0; i < 25; i++) parts.push(`<li><a href="../04/popular-${i}.html" title="${text(4, i)}">${text(8, i)}</a></li>`)
  parts.push('</ul></aside></main><footer><ul>')
  for (let i = 0; i < 20; i++) parts.push(`<li><a href="/about/page-${i}">${text(2, i)}</a></li>`)
  // Repeated navigation, as on real pages.
  for (let i = 0; i < 10; i++) parts.push(`<li><a class="nav-link" href="/section/${i}/">Section ${i}</a></li>`)
  parts.push('</ul></footer></body></html>')
  return parts.join('\n')
}

function measure (name: string, seconds: number, fn: () => void): number {
  // Warm up so the JIT has compiled the hot paths before timing.
  for (let i = 0; i < 200; i++) fn()
  let pages = 0
  const start = process.hrtime.bigint()
  const deadline = start + BigInt(Math.round(seconds * 1e9))
  let now = start
  while (now < deadline) {
    for (let i = 0; i < 50; i++) fn()
    pages += 50
    now = process.hrtime.bigint()
  }
  const rate = pages / (Number(now - start) / 1e9)
  console.log(`${name.padEnd(34)} ${rate.toFixed(0).padStart(6)} pages/s  (${(1000 / rate).toFixed(3)} ms/page)`)
  return rate
}

function main (): void {
  const seconds = Number(process.argv[2] ?? 3)
  const html = buildPage()
  const sample = parsePage(html, PAGE_URL)
  console.log(`page: ${(html.length / 1024).toFixed(1)} KiB, ${sample.links.length} distinct links`)

  measure('htmlparser2 tokenize only', seconds, () => {
    new Parser({ onopentag () {} }, { decodeEntities: true, lowerCaseTags: true }).end(html)
  })
  measure('parsePage', seconds, () => { parsePage(html, PAGE_URL) })
  const stripParams = ['utm_*', 'ref']
  measure('parsePage + stripParams', seconds, () => { parsePage(html, PAGE_URL, { stripParams }) })
  measure('parsePage + extract (cheerio)', seconds / 2, () => {
    parsePage(html, PAGE_URL, { extract: { title: 'h1', images: 'img@src' } })
  })
}

// Importable (for buildPage) without running.
if (import.meta.url === pathToFileURL(process.argv[1]).href) main()

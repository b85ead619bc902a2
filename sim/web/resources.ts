/**
 * The URL space of one host of the synthetic web: every kind of resource, the request-target that
 * names it, and back. Pure string work; whether a resource exists on a host (a page number in
 * range, a feature turned on) is the model's call (`SiteModel.resolveTarget`).
 *
 *   /  /page/N.html              pages                     /img/N.png        images
 *   /robots.txt                                            /private/N.html   disallowed by robots.txt
 *   /private/open/N.html         allowed by an Allow line  /search?q=W       disallowed (model robots)
 *   /index.html  /page/N.html?ref=R  …?utm_source=…        aliases: the same body under another URL
 *   /moved/H/P/S                 hop S of the redirect chain that page P of host H links to
 *   /missing/N.html  /gone/N.html                          404, 410
 *   /stall/N.html                never answered in time    /huge/N.html  /bomb/N.html  over the caps
 *   /w/<word>                    a page named by a non-ASCII word (linked raw from non-UTF-8 pages)
 *   /calendar/YYYY/MM/  /cart?sid=X  /files/(files/)*      spider traps
 *   /commented/N.html            only ever linked from comments and scripts: must never be requested
 */
import { ALL_WORDS, wordTarget } from './charsets.js'

export type Resource =
  | { kind: 'page', page: number }
  | { kind: 'image', image: number }
  | { kind: 'private', page: number }
  | { kind: 'robots' }
  | { kind: 'none' }
  | { kind: 'open', n: number }
  | { kind: 'search' }
  | { kind: 'alias', page: number, via: 'index' | 'ref' | 'utm' }
  | { kind: 'redirect', origin: number, page: number, step: number }
  | { kind: 'missing' }
  | { kind: 'gone' }
  | { kind: 'stall', n: number }
  | { kind: 'huge', n: number }
  | { kind: 'bomb', n: number }
  | { kind: 'word', word: number }
  | { kind: 'calendar', month: number }
  | { kind: 'cart', sid: number | undefined }
  | { kind: 'files', level: number }

export type ResourceKind = Resource['kind']

/** The `?ref=` values of aliases. */
export const REFS = ['nav', 'footer', 'related', 'feed', 'share'] as const
/** ASCII words of `/search?q=` links. */
export const QUERIES = ['news', 'weather', 'prices', 'maps', 'jobs', 'games'] as const
/** Calendar months are counted from January of year 0; pages exist for years 1000–9999. */
export const FIRST_MONTH = 1000 * 12
export const LAST_MONTH = 9999 * 12 + 11
/** The calendar trap opens at June 2024. */
export const CALENDAR_ENTRY = 2024 * 12 + 5

const NUM = '(0|[1-9][0-9]{0,8})'
const PAGE_PATH = /^\/page\/([1-9][0-9]{0,8})\.html$/
const IMAGE_PATH = new RegExp(`^/img/${NUM}\\.png$`)
const PRIVATE_PATH = new RegExp(`^/private/${NUM}\\.html$`)
const OPEN_PATH = new RegExp(`^/private/open/${NUM}\\.html$`)
const MOVED_PATH = new RegExp(`^/moved/${NUM}/${NUM}/([0-9])$`)
const LEAF_PATH = new RegExp(`^/(missing|gone|stall|huge|bomb)/${NUM}\\.html$`)
const CALENDAR_PATH = /^\/calendar\/([1-9][0-9]{3})\/(0[1-9]|1[0-2])\/$/
const FILES_PATH = /^\/files\/((?:files\/){0,1000})$/
const SID = /^sid=([0-9a-f]{8})$/

const WORD_TARGETS = new Map(ALL_WORDS.map((w, i) => [wordTarget(w), i]))

export const pagePath = (page: number): string => page === 0 ? '/' : `/page/${page}.html`
export const calendarPath = (month: number): string =>
  `/calendar/${Math.floor(month / 12)}/${String(month % 12 + 1).padStart(2, '0')}/`
export const cartPath = (sid: number | undefined): string => sid === undefined ? '/cart' : `/cart?sid=${sid.toString(16).padStart(8, '0')}`
export const filesPath = (level: number): string => '/files/' + 'files/'.repeat(level)
export const movedPath = (origin: number, page: number, step: number): string => `/moved/${origin}/${page}/${step}`

/** What a request-target (path and query, as sent) names, before the model checks it exists. */
export function parseTarget (target: string): Resource {
  const q = target.indexOf('?')
  const path = q === -1 ? target : target.slice(0, q)
  const query = q === -1 ? undefined : target.slice(q + 1)
  if (query !== undefined) return parseQuery(path, query)
  if (path === '/') return { kind: 'page', page: 0 }
  if (path === '/robots.txt') return { kind: 'robots' }
  let m = PAGE_PATH.exec(path)
  if (m !== null) return { kind: 'page', page: Number(m[1]) }
  m = IMAGE_PATH.exec(path)
  if (m !== null) return { kind: 'image', image: Number(m[1]) }
  m = PRIVATE_PATH.exec(path)
  if (m !== null) return { kind: 'private', page: Number(m[1]) }
  m = OPEN_PATH.exec(path)
  if (m !== null) return { kind: 'open', n: Number(m[1]) }
  if (path === '/index.html') return { kind: 'alias', page: 0, via: 'index' }
  m = MOVED_PATH.exec(path)
  if (m !== null) return { kind: 'redirect', origin: Number(m[1]), page: Number(m[2]), step: Number(m[3]) }
  m = LEAF_PATH.exec(path)
  if (m !== null) {
    const kind = m[1] as 'missing' | 'gone' | 'stall' | 'huge' | 'bomb'
    return kind === 'missing' || kind === 'gone' ? { kind } : { kind, n: Number(m[2]) }
  }
  const word = WORD_TARGETS.get(path)
  if (word !== undefined) return { kind: 'word', word }
  m = CALENDAR_PATH.exec(path)
  if (m !== null) return { kind: 'calendar', month: Number(m[1]) * 12 + Number(m[2]) - 1 }
  if (path === '/cart') return { kind: 'cart', sid: undefined }
  m = FILES_PATH.exec(path)
  if (m !== null) return { kind: 'files', level: m[1].length / 6 }
  return { kind: 'none' }
}

function parseQuery (path: string, query: string): Resource {
  let page: number | undefined
  if (path === '/') page = 0
  else {
    const m = PAGE_PATH.exec(path)
    if (m !== null) page = Number(m[1])
  }
  if (page !== undefined) {
    const ref = /^ref=([a-z]+)$/.exec(query)
    if (ref !== null && (REFS as readonly string[]).includes(ref[1])) return { kind: 'alias', page, via: 'ref' }
    const params = query.split('&')
    if (params.every(p => /^utm_[a-z]+=[a-z0-9]+$/.test(p))) return { kind: 'alias', page, via: 'utm' }
    return { kind: 'none' }
  }
  if (path === '/search' && /^q=[a-z]+$/.test(query)) return { kind: 'search' }
  if (path === '/cart') {
    const m = SID.exec(query)
    if (m !== null) return { kind: 'cart', sid: parseInt(m[1], 16) }
  }
  return { kind: 'none' }
}

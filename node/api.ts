import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import debug from 'debug'
import { ConfigError } from './errors.js'
import { normalizeUrl } from './normalize.js'
import type { UrlRecord } from './types.js'
import { VERSION, KiB } from './constants.js'

const log = debug('shoal:api')

/** What the API needs of a peer (or of the cluster, as this peer sees it). */
export interface ApiBackend {
  status(): Promise<Record<string, unknown> & { idle: boolean }>
  seed(urls: string[]): Promise<{ accepted: string[], rejected: Array<{ url: string, reason: string }> }>
  /** A URL's record (and its body when asked and at hand), or a verdict saying why there is none. */
  lookup(url: string, opts?: { body?: boolean }): Promise<{ record?: UrlRecord, verdict: string, body?: Uint8Array }>
  body(record: UrlRecord): Promise<Uint8Array | undefined>
  /** Counters for /metrics: name → value. */
  metrics(): Record<string, number>
}

export interface ApiInit {
  /** HOST:PORT; 127.0.0.1 by default, port 0 picks one. */
  listen?: string
  maxBodyBytes?: number
}

export function parseHostPort (value: string, what = '--api'): { host: string, port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim())
  if (m == null) throw new ConfigError(`${what} must be HOST:PORT (e.g. 127.0.0.1:8080), got "${value}"`)
  const host = m[1] ?? (m[2] === '' ? '127.0.0.1' : m[2])
  const port = Number(m[3])
  if (port > 65535) throw new ConfigError(`${what}: port must be 0–65535, got ${port}`)
  return { host, port }
}

/**
 * The HTTP API of a peer (DESIGN.md §6): GET /v1/url?u=URL[&body=1], GET /v1/status,
 * POST /v1/seeds, GET /metrics (Prometheus text), GET / (a status page). Binds 127.0.0.1 by default.
 */
export class Api {
  private server?: Server
  private readonly listen: { host: string, port: number }
  private readonly maxBodyBytes: number
  address = ''

  constructor (private readonly backend: ApiBackend, init: ApiInit = {}) {
    this.listen = parseHostPort(init.listen ?? '127.0.0.1:0')
    this.maxBodyBytes = init.maxBodyBytes ?? 1024 * KiB
  }

  async start (): Promise<string> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: any) => {
        log.extend('error')('%s %s: %s', req.method, req.url, err.stack ?? err.message)
        if (!res.headersSent) json(res, 500, { error: `internal error: ${err.message}` })
        else res.destroy()
      })
    })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.listen.port, this.listen.host, () => { server.off('error', reject); resolve() })
    })
    const a = server.address() as AddressInfo
    this.address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
    return this.address
  }

  async stop (): Promise<void> {
    const s = this.server
    if (s == null) return
    this.server = undefined
    s.closeAllConnections()
    await new Promise<void>((resolve) => s.close(() => resolve()))
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://api.invalid')
    const route = `${req.method ?? 'GET'} ${url.pathname}`
    switch (route) {
      case 'GET /v1/status':
        json(res, 200, await this.backend.status())
        return
      case 'POST /v1/seeds': {
        const text = await readBody(req, this.maxBodyBytes).catch((err: Error) => { json(res, 413, { error: err.message }); return undefined })
        if (text == null) return
        let urls: unknown
        try {
          urls = (req.headers['content-type'] ?? '').includes('json') ? JSON.parse(text).urls : text.split(/\s+/).filter(Boolean)
        } catch (err: any) {
          json(res, 400, { error: `body is not valid JSON: ${err.message}` })
          return
        }
        if (!Array.isArray(urls) || !urls.every(u => typeof u === 'string') || urls.length === 0) {
          json(res, 400, { error: 'expected {"urls": ["http://…", …]} or URLs separated by white space' })
          return
        }
        json(res, 200, await this.backend.seed(urls))
        return
      }
      case 'GET /v1/url': {
        const u = url.searchParams.get('u')
        if (u == null || u === '') { json(res, 400, { error: 'missing query parameter u (the URL)' }); return }
        const normalized = normalizeUrl(u)
        if (normalized == null) { json(res, 400, { error: `not an absolute http(s) URL: ${u.slice(0, 200)}` }); return }
        const wantBody = url.searchParams.get('body') === '1'
        const found = await this.backend.lookup(normalized, { body: wantBody })
        const { record, verdict } = found
        if (record == null) { json(res, 404, { url: normalized, found: false, verdict }); return }
        if (wantBody) {
          const body = found.body ?? await this.backend.body(record)
          if (body == null) { json(res, 404, { url: normalized, found: true, verdict: `no stored body (status ${record.status})` }); return }
          res.writeHead(200, {
            'content-type': record.contentType ?? 'application/octet-stream',
            'content-length': body.byteLength,
            'x-shoal-cid': record.cid ?? ''
          })
          res.end(body)
          return
        }
        json(res, 200, record)
        return
      }
      case 'GET /metrics': {
        const lines: string[] = []
        for (const [name, value] of Object.entries(this.backend.metrics())) {
          lines.push(`# TYPE shoal_${name} gauge`, `shoal_${name} ${value}`)
        }
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
        res.end(lines.join('\n') + '\n')
        return
      }
      case 'GET /': {
        const s = await this.backend.status()
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
        res.end(`<!doctype html><meta charset="utf-8"><title>shoal peer</title><h1>shoal ${VERSION}</h1><pre>${escapeHtml(JSON.stringify(s, null, 2))}</pre>`)
        return
      }
      default:
        json(res, 404, { error: `no route ${route}; see GET /v1/status, GET /v1/url?u=, POST /v1/seeds, GET /metrics` })
    }
  }
}

function json (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

async function readBody (req: IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of req) {
    total += chunk.length
    if (total > max) throw new Error(`request body over ${max} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function escapeHtml (s: string): string {
  return s.replace(/[&<>]/g, c => c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;')
}

import type { BatchOp, Store } from './db.js'
import type { UrlRecord } from './types.js'

/** url → record, in the `meta` sublevel. */
export class MetadataStore {
  constructor (private readonly store: Store) {}

  async get (url: string): Promise<UrlRecord | undefined> {
    return await this.store.get<UrlRecord>('meta', url)
  }

  async getMany (urls: string[]): Promise<Array<UrlRecord | undefined>> {
    return await this.store.getMany<UrlRecord>('meta', urls)
  }

  putOp (record: UrlRecord): BatchOp {
    // Drop undefined fields: msgpack would store them as nil.
    const clean: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(record)) if (v !== undefined) clean[k] = v
    return { type: 'put', sublevel: 'meta', key: record.url, value: clean }
  }

  /** The records of one origin's URLs (`http://host:port`), in key order. */
  async * recordsOf (origin: string): AsyncGenerator<UrlRecord> {
    // Normalized URLs of an origin all start with origin + '/'; '0' is the character after '/'.
    for await (const value of this.store.subs.meta.values({ gte: origin + '/', lt: origin + '0' })) {
      yield value as UrlRecord
    }
  }

  async * records (opts: { limit?: number } = {}): AsyncGenerator<UrlRecord> {
    for await (const value of this.store.subs.meta.values({ limit: opts.limit ?? -1 })) {
      yield value as UrlRecord
    }
  }
}

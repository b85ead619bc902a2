import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A fresh directory under the OS temp dir (a peer's data dir), removed by `remove()`. */
export interface TempDir {
  path: string
  remove(): Promise<void>
}

export async function tempDir (prefix = 'shoal-test-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix))
  return {
    path,
    remove: async () => { await rm(path, { recursive: true, force: true }) }
  }
}

/**
 * Temp dirs for one mocha suite: `make()` in a test, all removed after each test. Call at the top
 * of a `describe`.
 */
export function useTempDirs (prefix?: string): { make: () => Promise<string> } {
  const dirs: TempDir[] = []
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map(async d => { await d.remove() }))
  })
  return {
    make: async () => {
      const d = await tempDir(prefix)
      dirs.push(d)
      return d.path
    }
  }
}

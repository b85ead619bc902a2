import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The project's root directory, from the URL of a module of shoal: the sources live in node/ and
 * sim/, the launcher's bundle in dist/ and, code split, dist/chunks/ (bin/bundle.mjs). A module that
 * finds a file relative to itself would look in the wrong place once bundled into a chunk.
 */
export function projectRoot (moduleUrl: string): string {
  let dir = dirname(fileURLToPath(moduleUrl))
  if (basename(dir) === 'chunks' && basename(dirname(dir)) === 'dist') dir = dirname(dir)
  return dirname(dir)
}

/** bin/shoal.js, the launcher. */
export function launcherPath (moduleUrl: string): string {
  return join(projectRoot(moduleUrl), 'bin', 'shoal.js')
}

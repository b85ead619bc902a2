import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { resolve } from 'node:path'
import { ConfigError } from './errors.js'

/**
 * CPU profiles of a shoal process (`--profile [FILE]`, or `SHOAL_PROFILE=1|FILE`): V8's sampling
 * profiler through node:inspector, written as a `.cpuprofile` (the Chrome DevTools format, which
 * speedscope also reads) when the command ends, a signal's clean shutdown included. Only this
 * process's main thread is profiled (not the TypeScript loader's thread, nor other peers' processes).
 */

/** V8's default: one sample per millisecond of CPU. */
export const DEFAULT_PROFILE_INTERVAL_US = 1000

export interface ProfileRequest {
  /** The command line without the profile flag. */
  args: string[]
  /** Where to write the profile; undefined: not asked for. */
  file?: string
}

/** `shoal-crawl-20260101-120000-1234.cpuprofile`: sortable, and distinct per process. */
export function defaultProfileFile (command: string, now = new Date(), pid = process.pid): string {
  const p = (n: number): string => String(n).padStart(2, '0')
  const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`
  return `shoal-${command}-${stamp}-${pid}.cpuprofile`
}

const LOOKS_LIKE_URL = /^[a-z][a-z0-9+.-]*:\/\//i

/**
 * Take `--profile [FILE]` / `--profile=FILE` out of a command's arguments. node:util's parseArgs has
 * no optional values, so this is done before it: the word after `--profile` is its FILE unless it is
 * another flag or a URL (a seed). `SHOAL_PROFILE` asks for a profile without the flag: `1` or `true`
 * for the default file name, anything else (but `0`, `false`) is the file. The flag wins.
 */
export function takeProfileOption (command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ProfileRequest {
  const out: string[] = []
  let asked = false
  let file: string | undefined
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (a === '--') { out.push(...args.slice(i)); break }
    if (a === '--profile') {
      asked = true
      const next = args[i + 1]
      if (next !== undefined && !next.startsWith('-') && !LOOKS_LIKE_URL.test(next)) {
        file = next
        i++
      }
      continue
    }
    if (a.startsWith('--profile=')) {
      file = a.slice('--profile='.length)
      if (file === '') throw new ConfigError('--profile= needs a file name (or use --profile alone for the default one)')
      asked = true
      continue
    }
    out.push(a)
  }
  if (!asked) {
    const v = env.SHOAL_PROFILE?.trim()
    if (v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false') {
      asked = true
      if (v !== '1' && v.toLowerCase() !== 'true') file = v
    }
  }
  if (!asked) return { args: out }
  return { args: out, file: resolve(file ?? defaultProfileFile(command)) }
}

export interface CpuProfiler {
  /** Stop sampling and write the profile; resolves with its path. */
  stop(): Promise<string>
}

/** Start sampling this thread's CPU; `stop()` writes the profile to `file`. */
export async function startCpuProfile (file: string, intervalUs = DEFAULT_PROFILE_INTERVAL_US): Promise<CpuProfiler> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs })
  await session.post('Profiler.start')
  let stopped: Promise<string> | undefined
  return {
    stop: async () => {
      stopped ??= (async () => {
        try {
          const { profile } = await session.post('Profiler.stop')
          await writeFile(file, JSON.stringify(profile))
          return file
        } finally {
          session.disconnect()
        }
      })()
      return await stopped
    }
  }
}

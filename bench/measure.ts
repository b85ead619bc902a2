/**
 * Run a command as a child process and measure what it cost: wall time, CPU time (user + sys) of the
 * process and all its descendants, and peak memory. Shared by the benchmarks in bench/.
 *
 * CPU and peak RSS come from GNU time (`/usr/bin/time -f`, Debian package `time`), which reads the
 * rusage of the whole waited-for process tree from the kernel at exit: nothing is missed between two
 * samples. Without GNU time, CPU comes from bash's `times` builtin (same rusage, children's line) and
 * peak RSS from /proc/<pid>/status VmHWM of every process of the tree, polled.
 * Either way the tree's summed resident memory is polled from /proc too (`peakTreeRssMiB`), which
 * matters for tools that run several processes at once.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export type CpuMethod = 'gnu-time' | 'bash-times'

export interface RunSpec {
  command: string
  args: string[]
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** Killed (the whole process group, SIGKILL) after this long. */
  timeoutMs: number
  /** Keep this many trailing bytes of stdout and of stderr. @default 256 KiB */
  keepBytes?: number
}

export interface RunResult {
  exitCode: number | null
  signal: string | null
  timedOut: boolean
  /** Spawn to exit, as seen by the parent. */
  wallSeconds: number
  /** user + sys of the process and every descendant it waited for; undefined when not measurable. */
  userSeconds?: number
  sysSeconds?: number
  cpuSeconds?: number
  /** Largest resident set of any single process of the tree (GNU time %M, or polled VmHWM). */
  peakRssMiB?: number
  /** Largest sum of the tree's resident sets over the polls. */
  peakTreeRssMiB: number
  cpuMethod: CpuMethod
  stdoutTail: string
  stderrTail: string
}

/** True when /usr/bin/time is GNU time (BusyBox and BSD ones take other flags). */
export function hasGnuTime (): boolean {
  const r = spawnSync('/usr/bin/time', ['--version'], { encoding: 'utf8' })
  return r.status === 0 && /GNU/.test(r.stdout + r.stderr)
}

/** Install a Debian package if we are root and it is missing; true if the command is there afterwards. */
export function ensureDebianPackage (pkg: string, probe: () => boolean, log: (s: string) => void): boolean {
  if (probe()) return true
  if (process.getuid?.() !== 0) {
    log(`${pkg} is missing and we are not root: install it with apt-get install ${pkg}`)
    return false
  }
  log(`installing the Debian package ${pkg} (apt-get install -y ${pkg})…`)
  let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { encoding: 'utf8' })
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { encoding: 'utf8' })
    r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { encoding: 'utf8' })
  }
  if (r.status !== 0) log(`apt-get install ${pkg} failed: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' / ')}`)
  return probe()
}

/** A bounded tail of a stream. */
class Tail {
  private chunks: Buffer[] = []
  private size = 0
  constructor (private readonly max: number) {}
  push (b: Buffer): void {
    this.chunks.push(b)
    this.size += b.length
    while (this.size - this.chunks[0].length >= this.max) this.size -= this.chunks.shift()!.length
  }

  toString (): string {
    const all = Buffer.concat(this.chunks)
    return all.subarray(Math.max(0, all.length - this.max)).toString('utf8')
  }
}

/** Every process whose ancestry reaches `root`, root included. */
export function processTree (root: number): number[] {
  const children = new Map<number, number[]>()
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0)
    if (c < 48 || c > 57) continue
    let stat: string
    try { stat = readFileSync(`/proc/${name}/stat`, 'latin1') } catch { continue }
    // The command name in parentheses may hold spaces: fields start after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ', 2)[1])
    let list = children.get(ppid)
    if (list === undefined) children.set(ppid, list = [])
    list.push(Number(name))
  }
  const out = [root]
  for (let i = 0; i < out.length; i++) for (const c of children.get(out[i]) ?? []) out.push(c)
  return out
}

/** VmRSS and VmHWM of a process, in KiB; undefined once it is gone. */
function memoryKiB (pid: number): { rss: number, hwm: number } | undefined {
  let status: string
  try { status = readFileSync(`/proc/${pid}/status`, 'latin1') } catch { return undefined }
  const rss = /VmRSS:\s+(\d+)/.exec(status)
  const hwm = /VmHWM:\s+(\d+)/.exec(status)
  if (rss === null || hwm === null) return undefined // a zombie has no memory lines
  return { rss: Number(rss[1]), hwm: Number(hwm[1]) }
}

/** Poll the tree of `root` every `intervalMs`; excluded pids (the measuring wrapper) are not counted. */
class TreeSampler {
  peakTreeKiB = 0
  peakHwmKiB = 0
  private readonly timer: NodeJS.Timeout
  constructor (private readonly root: number, private readonly exclude: number | undefined, intervalMs: number) {
    this.timer = setInterval(() => { this.sample() }, intervalMs)
    this.sample()
  }

  sample (): void {
    let sum = 0
    for (const pid of processTree(this.root)) {
      if (pid === this.exclude) continue
      const m = memoryKiB(pid)
      if (m === undefined) continue
      sum += m.rss
      if (m.hwm > this.peakHwmKiB) this.peakHwmKiB = m.hwm
    }
    if (sum > this.peakTreeKiB) this.peakTreeKiB = sum
  }

  stop (): void {
    clearInterval(this.timer)
  }
}

const BASH_TIMES = 'exec 3>"$1"; shift; "$@"; rc=$?; times >&3; exit $rc'

/** `0m1.234s` → 1.234 */
function parseBashTime (s: string): number {
  const m = /^(\d+)m([\d.]+)s$/.exec(s)
  return m === null ? NaN : Number(m[1]) * 60 + Number(m[2])
}

export async function measure (spec: RunSpec, gnuTime: boolean): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-measure-'))
  const report = join(dir, 'rusage')
  const [command, args] = gnuTime
    ? ['/usr/bin/time', ['-f', '%e %U %S %M', '-o', report, spec.command, ...spec.args]]
    : ['bash', ['-c', BASH_TIMES, 'bash', report, spec.command, ...spec.args]]
  const keep = spec.keepBytes ?? 256 * 1024
  const out = new Tail(keep)
  const err = new Tail(keep)
  const started = performance.now()
  // detached: its own process group, so a timeout can kill the tool and everything it started.
  const child = spawn(command, args, { cwd: spec.cwd, env: spec.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  child.stdout.on('data', (b: Buffer) => { out.push(b) })
  child.stderr.on('data', (b: Buffer) => { err.push(b) })
  const pid = child.pid
  // Poll the tree below the wrapper (time or bash), not the wrapper itself.
  const sampler = pid === undefined ? undefined : new TreeSampler(pid, pid, 500)
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    if (pid !== undefined) { try { process.kill(-pid, 'SIGKILL') } catch {} }
  }, spec.timeoutMs)
  const [exitCode, signal] = await new Promise<[number | null, string | null]>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, sig) => { resolve([code, sig]) })
  })
  const wallSeconds = (performance.now() - started) / 1000
  clearTimeout(timer)
  sampler?.stop()
  const result: RunResult = {
    exitCode,
    signal,
    timedOut,
    wallSeconds,
    peakTreeRssMiB: (sampler?.peakTreeKiB ?? 0) / 1024,
    cpuMethod: gnuTime ? 'gnu-time' : 'bash-times',
    stdoutTail: out.toString(),
    stderrTail: err.toString()
  }
  let text = ''
  try { text = readFileSync(report, 'utf8') } catch {}
  if (gnuTime) {
    // GNU time writes "Command exited with non-zero status N" before the format line.
    const line = text.trim().split('\n').pop() ?? ''
    const [, user, sys, maxKiB] = line.split(' ').map(Number)
    if (Number.isFinite(user) && Number.isFinite(sys)) {
      result.userSeconds = user
      result.sysSeconds = sys
      result.cpuSeconds = user + sys
      result.peakRssMiB = maxKiB / 1024
    }
  } else {
    // Line 1: the shell's own times; line 2: its children's (the tool and all it waited for).
    const children = text.trim().split('\n')[1]?.trim().split(/\s+/) ?? []
    const user = parseBashTime(children[0] ?? '')
    const sys = parseBashTime(children[1] ?? '')
    if (Number.isFinite(user) && Number.isFinite(sys)) {
      result.userSeconds = user
      result.sysSeconds = sys
      result.cpuSeconds = user + sys
    }
    if (sampler !== undefined && sampler.peakHwmKiB > 0) result.peakRssMiB = sampler.peakHwmKiB / 1024
  }
  rmSync(dir, { recursive: true, force: true })
  return result
}

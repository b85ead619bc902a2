import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const SHOAL_BIN = fileURLToPath(new URL('../../bin/shoal.js', import.meta.url))

export interface CliResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

const running = new Set<ChildProcess>()

/** Start `shoal ARGS…` as a real process. */
export function startShoal (args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, [SHOAL_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  running.add(child)
  child.once('exit', () => running.delete(child))
  return child
}

/** SIGKILL every shoal process a test started that is still running (call in afterEach). */
export function killAllShoals (): void {
  for (const child of running) child.kill('SIGKILL')
  running.clear()
}

/** Wait for a process to end, collecting its output. */
export async function finished (child: ChildProcess): Promise<CliResult> {
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  return await new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => { resolve({ code, signal, stdout, stderr }) })
  })
}

export async function runShoal (args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return await finished(startShoal(args, env))
}

/** The JSON object a `--json` command prints on its last line. */
export function lastJson (stdout: string): any {
  const lines = stdout.trim().split('\n')
  return JSON.parse(lines[lines.length - 1])
}

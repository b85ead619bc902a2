import { execFile, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Why network namespaces can't be used here, or undefined when they can. */
export function netnsUnavailable (): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root'
  const probe = `shoal-probe-${randomBytes(3).toString('hex')}`
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'ignore' })
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' })
    return undefined
  } catch (err: any) {
    return `ip netns is not available (${err.code === 'ENOENT' ? 'no ip command: apt-get install iproute2' : 'ip netns add failed'})`
  }
}

async function ip (...args: string[]): Promise<void> {
  await run('ip', args)
}

/**
 * Test hosts on one machine: one network namespace per host, each with its own address on a bridge
 * that lives in a namespace of its own, so the machine's own network is never touched. Addresses
 * are 10.<net>.0.<n>/24 inside these namespaces only.
 */
export class TestLan {
  readonly id = randomBytes(2).toString('hex')
  private readonly bridgeNs = `shb-${this.id}`
  private readonly hosts = new Map<string, { ns: string, address: string }>()
  private nextHost = 1
  private readonly net = 64 + Math.floor(Math.random() * 64)

  async start (): Promise<void> {
    await ip('netns', 'add', this.bridgeNs)
    await ip('-n', this.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge')
    await ip('-n', this.bridgeNs, 'link', 'set', 'br0', 'up')
  }

  /** A new host: its namespace name and its address. */
  async addHost (name: string): Promise<{ ns: string, address: string }> {
    const n = this.nextHost++
    const ns = `shh-${this.id}-${n}`
    const address = `10.${this.net}.0.${n}`
    const inner = `sv${this.id}${n}`
    const outer = `sb${this.id}${n}`
    await ip('netns', 'add', ns)
    await ip('-n', ns, 'link', 'set', 'lo', 'up')
    await ip('link', 'add', inner, 'netns', ns, 'type', 'veth', 'peer', 'name', outer, 'netns', this.bridgeNs)
    await ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', inner)
    await ip('-n', ns, 'link', 'set', inner, 'up')
    await ip('-n', this.bridgeNs, 'link', 'set', outer, 'master', 'br0')
    await ip('-n', this.bridgeNs, 'link', 'set', outer, 'up')
    const host = { ns, address }
    this.hosts.set(name, host)
    return host
  }

  /** Argv that runs `argv` inside a host's namespace. */
  exec (name: string, argv: string[]): string[] {
    const host = this.hosts.get(name)
    if (host == null) throw new Error(`no host ${name}`)
    return ['ip', 'netns', 'exec', host.ns, ...argv]
  }

  async stop (): Promise<void> {
    for (const { ns } of this.hosts.values()) await ip('netns', 'del', ns).catch(() => {})
    await ip('netns', 'del', this.bridgeNs).catch(() => {})
  }
}

/**
 * A reusable lab of Linux network namespaces for end-to-end tests: N nodes on one bridge, which
 * lives in a namespace of its own so the host's network is never touched (STACK.md recipe). Each
 * node runs real `mesh` processes (`ip netns exec`) with its own MESH_HOME. `destroy()` kills every
 * process in the lab's namespaces and deletes them; namespaces left by a crashed test run (their
 * name carries the owner's pid) are removed when the next lab is created.
 */
import { execFile, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const MESH_JS = fileURLToPath(new URL('../../dist/cli/mesh.js', import.meta.url))

/** Why packet loss cannot be emulated here (iptables missing), or undefined when it can. */
export function lossUnavailable (): string | undefined {
  try { execFileSync('iptables', ['--version'], { stdio: 'ignore' }) } catch { return 'iptables is not installed (apt-get install -y iptables)' }
  return undefined
}

/** lossUnavailable() after trying to install iptables (Debian), as a test's own set-up may. */
export function installLossTools (): string | undefined {
  if (lossUnavailable() !== undefined) {
    try { execFileSync('apt-get', ['install', '-y', 'iptables'], { stdio: 'ignore', timeout: 300_000 }) } catch { /* reported below */ }
  }
  return lossUnavailable()
}

/** Why namespace tests cannot run here, or undefined when they can. */
export function netnsUnavailable (): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux'
  if (process.getuid?.() !== 0) return 'network namespaces need root (run the tests as root to include them)'
  try { execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' }) } catch { return 'the `ip` command (iproute2) is missing' }
  return undefined
}

export interface LabNode {
  name: string
  ns: string
  address: string
  home: string
}

export interface RunResult { code: number, stdout: string, stderr: string }

// every lab's namespaces start with this, then the owner's pid, so leftovers can be told apart
const FAMILY = 'mshe2e'

/** Run `ip ARGS`; throws with ip's stderr when it fails. */
export function ip (...args: string[]): void { execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] }) }

/** Run a command inside a namespace; throws when it fails. */
export function inNs (ns: string, cmd: string, ...args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

function listNamespaces (): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n !== '')
}

/** Kill every process in a namespace, then delete it. */
export function killNamespace (ns: string): void {
  let pids: string[] = []
  try { pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter((p) => p.trim() !== '') } catch { /* gone */ }
  for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL') } catch { /* exited */ } }
  try { ip('netns', 'del', ns) } catch { /* already gone */ }
}

/** Remove namespaces of labs whose test process is gone (a crash or a kill -9 of vitest). */
export function cleanLeftovers (): void {
  for (const ns of listNamespaces()) {
    const m = new RegExp(`^${FAMILY}(\\d+)`).exec(ns)
    if (m !== null && !alive(Number(m[1]))) killNamespace(ns)
  }
}

let labCounter = 0

/** A fresh namespace prefix for a lab of this process (leftovers of dead processes removed first). */
export function newLabPrefix (): string {
  cleanLeftovers()
  return `${FAMILY}${process.pid}${String.fromCharCode(97 + (labCounter++ % 26))}`
}

/** Run `mesh ARGS` inside a node's namespace with its MESH_HOME; resolves with the exit code and output. */
export async function meshIn (node: Pick<LabNode, 'ns' | 'home'>, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000, meshJs = MESH_JS): Promise<RunResult> {
  return await new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', node.ns, process.execPath, meshJs, ...args], {
      env: { ...process.env, MESH_HOME: node.home, ...env }, timeout: timeoutMs
    }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, stdout, stderr })
    })
  })
}

/** Like meshIn() but throws with the output when the command fails; resolves with stdout. */
export async function meshInOk (node: Pick<LabNode, 'ns' | 'home' | 'name'>, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await meshIn(node, args, env)
  if (r.code !== 0) throw new Error(`mesh ${args.join(' ')} on ${node.name} exited ${r.code}: ${r.stderr.trim()}`)
  return r.stdout
}

/** Every node's agent log and daemon output, for a failed test's report. */
export function labLogs (nodes: readonly LabNode[]): string {
  const parts: string[] = []
  for (const n of nodes) {
    for (const f of ['logs/agent.log', 'logs/agent.out', 'logs/relay.log']) {
      const file = path.join(n.home, f)
      if (fs.existsSync(file)) parts.push(`===== ${n.name} ${f}\n${fs.readFileSync(file, 'utf8').slice(-20_000)}`)
    }
  }
  return parts.join('\n')
}

/** Whether a TCP connection from `from` to host:port opens (a RST counts as reachable: something answered). */
export async function tcpReachable (from: Pick<LabNode, 'ns'>, host: string, port: number): Promise<boolean> {
  const js = `const s = require('net').connect(${port}, '${host}'); s.setTimeout(1500)
    s.on('connect', () => process.exit(0)); s.on('error', (e) => process.exit(e.code === 'ECONNREFUSED' ? 0 : 1)); s.on('timeout', () => process.exit(1))`
  return await new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', from.ns, process.execPath, '-e', js], { timeout: 10_000 }, (err) => { resolve(err === null) })
  })
}

export class NetnsLab {
  readonly nodes: LabNode[] = []
  private readonly namespaces: string[] = []
  private constructor (readonly prefix: string, readonly dir: string) {}

  /** N nodes 10.77.0.1..N/24 on one bridge, multicast routed to eth0. */
  static create (n: number): NetnsLab {
    const prefix = newLabPrefix()
    const lab = new NetnsLab(prefix, fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`)))
    try {
      const sw = `${prefix}sw`
      lab.addNs(sw)
      ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge')
      ip('-n', sw, 'link', 'set', 'br0', 'up')
      for (let i = 0; i < n; i++) lab.addNode(sw, i)
    } catch (err) {
      lab.destroy()
      throw err
    }
    return lab
  }

  private addNs (ns: string): void {
    ip('netns', 'add', ns)
    this.namespaces.push(ns)
    ip('-n', ns, 'link', 'set', 'lo', 'up')
  }

  private addNode (sw: string, i: number): void {
    const ns = `${this.prefix}n${i}`
    const address = `10.77.0.${i + 1}`
    this.addNs(ns)
    ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `v${i}`, 'netns', sw)
    ip('-n', sw, 'link', 'set', `v${i}`, 'master', 'br0')
    ip('-n', sw, 'link', 'set', `v${i}`, 'up')
    ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0')
    ip('-n', ns, 'link', 'set', 'eth0', 'up')
    ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0')
    const home = path.join(this.dir, `n${i}`)
    fs.mkdirSync(home, { mode: 0o700 })
    this.nodes.push({ name: `n${i}`, ns, address, home })
  }

  node (i: number): LabNode {
    const n = this.nodes[i]
    if (n === undefined) throw new RangeError(`no node ${i}`)
    return n
  }

  /** Unplug a node at the bridge, or plug it back in: its own interface and routes stay as they are. */
  setLink (node: LabNode, up: boolean): void {
    const i = this.nodes.indexOf(node)
    if (i < 0) throw new RangeError(`${node.name} is not in this lab`)
    ip('-n', `${this.prefix}sw`, 'link', 'set', `v${i}`, up ? 'up' : 'down')
  }

  /**
   * Two nodes lose every unicast route to each other (blackhole routes on both sides), as behind a
   * NAT or a firewall; multicast and their routes to everyone else stay. No iptables needed.
   */
  blockUnicast (a: LabNode, b: LabNode): void {
    ip('-n', a.ns, 'route', 'add', 'blackhole', `${b.address}/32`)
    ip('-n', b.ns, 'route', 'add', 'blackhole', `${a.address}/32`)
  }

  /**
   * The bridge stops carrying multicast (Wi-Fi client isolation, some VPNs and switches): snooping
   * off so every group counts as unknown, and unknown multicast flooded to no port. Unicast stays.
   */
  blockMulticast (): void {
    const sw = `${this.prefix}sw`
    ip('-n', sw, 'link', 'set', 'br0', 'type', 'bridge', 'mcast_snooping', '0')
    this.nodes.forEach((_n, i) => { execFileSync('bridge', ['-n', sw, 'link', 'set', 'dev', `v${i}`, 'mcast_flood', 'off'], { stdio: ['ignore', 'ignore', 'pipe'] }) })
  }

  /**
   * Drop this share of the packets that arrive at a node (0 removes the rule): real random loss
   * by iptables' statistic match in the node's namespace, as this kernel has no netem qdisc.
   * Every packet crosses one receiver, so each link loses `probability` of its packets.
   */
  setLoss (node: LabNode, probability: number): void {
    execFileSync('ip', ['netns', 'exec', node.ns, 'iptables', '-F', 'INPUT'], { stdio: ['ignore', 'ignore', 'pipe'] })
    if (probability <= 0) return
    execFileSync('ip', ['netns', 'exec', node.ns, 'iptables', '-A', 'INPUT', '-i', 'eth0', '-m', 'statistic', '--mode', 'random',
      '--probability', String(probability), '-j', 'DROP'], { stdio: ['ignore', 'ignore', 'pipe'] })
  }

  /** Packets the loss rule of a node has dropped so far. */
  droppedPackets (node: LabNode): number {
    const out = execFileSync('ip', ['netns', 'exec', node.ns, 'iptables', '-L', 'INPUT', '-v', '-n', '-x'], { encoding: 'utf8' })
    return out.split('\n').filter((l) => l.includes('DROP')).reduce((sum, l) => sum + Number(l.trim().split(/\s+/)[0] ?? 0), 0)
  }

  /**
   * Run `mesh ARGS` inside a node's namespace with its MESH_HOME; resolves with the exit code and output.
   * `meshJs`: another copy of mesh's entry point (a test that must not see a rebuild of this checkout).
   */
  async mesh (node: LabNode, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000, meshJs = MESH_JS): Promise<RunResult> {
    return await meshIn(node, args, env, timeoutMs, meshJs)
  }

  /** Like mesh() but throws with the output when the command fails. */
  async meshOk (node: LabNode, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
    return await meshInOk(node, args, env)
  }

  /** Every node's agent log and daemon output, for a failed test's report. */
  logs (): string {
    return labLogs(this.nodes)
  }

  /** Kill every process in the lab, delete its namespaces and files. Safe to call twice. */
  destroy (): void {
    for (const ns of this.namespaces.splice(0).reverse()) killNamespace(ns)
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

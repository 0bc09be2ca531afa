/**
 * A NAT lab of Linux network namespaces, shaped like libp2p's hole-punch interop tests:
 *
 *   "internet": a bridge in 11.0.0.0/24 (public-looking: js-libp2p calls 10/8, 172.16/12,
 *   192.168/16, 100.64/10 and the TEST-NETs private). On it the relay host 11.0.0.2, public hosts
 *   11.0.0.3…, and one router per site at 11.0.0.(10 + site).
 *   sites: a router namespace doing NAT with iptables between its WAN (eth0, on the internet) and
 *   a LAN bridge 192.168.(site + 1).0/24 (eth1 = .1); members at .10, .11, … behind it, default
 *   route through the router, multicast on their LAN only (routers forward none).
 *
 * NAT kinds: 'cone' is MASQUERADE (keeps the source port, one mapping per inside socket:
 * endpoint-independent mapping) with conntrack filtering (only replies come in: what a home router
 * does); 'symmetric' is MASQUERADE --random-fully (a fresh port per destination: endpoint-dependent
 * mapping). Neither hairpins (no DNAT of the router's own address back inside).
 *
 * Every process started through the lab runs in its namespaces and dies with them in destroy();
 * a crashed run's namespaces are removed by the next lab (netns.ts cleanLeftovers).
 *
 * The API (create, relay, publicHost, member, sites, mesh/meshOk, spawn, startRelay, tcpReachable,
 * natPackets, forwardDrops, logs, destroy) is shared by the NAT e2e tests: extend, do not change it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { inNs, ip, killNamespace, labLogs, meshIn, meshInOk, MESH_JS, newLabPrefix, tcpReachable, type LabNode, type RunResult } from './netns.js'

export const RELAY_JS = fileURLToPath(new URL('../../dist/relay/main.js', import.meta.url))

export type NatKind = 'cone' | 'symmetric'

export interface NatSiteSpec {
  kind: NatKind
  /** members on the site's LAN */
  members: number
}

export interface NatLabSpec {
  sites: NatSiteSpec[]
  /** hosts straight on the internet bridge besides the relay host (11.0.0.3, .4, …) */
  publicHosts?: number
}

export interface NatSite {
  index: number
  kind: NatKind
  /** the router's namespace */
  router: string
  /** the router's address on the internet: what every member of the site looks like from outside */
  wanAddress: string
  /** the router's LAN address, the members' gateway */
  gateway: string
  /** e.g. 192.168.1.0/24 */
  lanSubnet: string
  members: LabNode[]
}

export interface LabRelay {
  proc: ChildProcess
  peerId: string
  /** every address the relay printed */
  addresses: string[]
  /** its TCP address on the internet, …/p2p/RELAY_ID (what --relay takes) */
  addr: string
  /** STUN ports it answers on (UDP) */
  stunPorts: number[]
}

export const INTERNET_PREFIX = '11.0.0'
export const RELAY_ADDRESS = `${INTERNET_PREFIX}.2`

export class NatLab {
  readonly sites: NatSite[] = []
  readonly publicHosts: LabNode[] = []
  /** the relay host, 11.0.0.2 (nothing runs there until startRelay) */
  relayHost!: LabNode
  private readonly namespaces: string[] = []
  private readonly procs: ChildProcess[] = []
  private constructor (readonly prefix: string, readonly dir: string) {}

  static create (spec: NatLabSpec): NatLab {
    const prefix = newLabPrefix()
    const lab = new NatLab(prefix, fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`)))
    try {
      lab.build(spec)
    } catch (err) {
      lab.destroy()
      throw err
    }
    return lab
  }

  private build (spec: NatLabSpec): void {
    const inet = this.addNs('inet')
    ip('-n', inet, 'link', 'add', 'br0', 'type', 'bridge')
    ip('-n', inet, 'link', 'set', 'br0', 'up')
    this.relayHost = this.addHost('relay', inet, `p0`, `${RELAY_ADDRESS}/24`)
    for (let i = 0; i < (spec.publicHosts ?? 0); i++) this.publicHosts.push(this.addHost(`pub${i}`, inet, `p${i + 1}`, `${INTERNET_PREFIX}.${3 + i}/24`))
    spec.sites.forEach((s, i) => { this.sites.push(this.addSite(inet, i, s)) })
  }

  private addNs (name: string): string {
    const ns = `${this.prefix}${name}`
    ip('netns', 'add', ns)
    this.namespaces.push(ns)
    ip('-n', ns, 'link', 'set', 'lo', 'up')
    return ns
  }

  /** A host whose eth0 is a veth into `bridgeNs`'s br0 (port name `port` there), with its own MESH_HOME. */
  private addHost (name: string, bridgeNs: string, port: string, cidr: string, gateway?: string): LabNode {
    const ns = this.addNs(name)
    ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', port, 'netns', bridgeNs)
    ip('-n', bridgeNs, 'link', 'set', port, 'master', 'br0')
    ip('-n', bridgeNs, 'link', 'set', port, 'up')
    ip('-n', ns, 'addr', 'add', cidr, 'dev', 'eth0')
    ip('-n', ns, 'link', 'set', 'eth0', 'up')
    ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0')
    if (gateway !== undefined) ip('-n', ns, 'route', 'add', 'default', 'via', gateway)
    const home = path.join(this.dir, name)
    fs.mkdirSync(home, { mode: 0o700 })
    return { name, ns, address: cidr.split('/')[0] as string, home }
  }

  private addSite (inet: string, i: number, spec: NatSiteSpec): NatSite {
    const lanNs = this.addNs(`l${i}`)
    ip('-n', lanNs, 'link', 'add', 'br0', 'type', 'bridge')
    ip('-n', lanNs, 'link', 'set', 'br0', 'up')
    const router = this.addNs(`r${i}`)
    const wanAddress = `${INTERNET_PREFIX}.${10 + i}`
    const lan = `192.168.${i + 1}`
    ip('-n', router, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `r${i}`, 'netns', inet)
    ip('-n', inet, 'link', 'set', `r${i}`, 'master', 'br0')
    ip('-n', inet, 'link', 'set', `r${i}`, 'up')
    ip('-n', router, 'addr', 'add', `${wanAddress}/24`, 'dev', 'eth0')
    ip('-n', router, 'link', 'set', 'eth0', 'up')
    ip('-n', router, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'up0', 'netns', lanNs)
    ip('-n', lanNs, 'link', 'set', 'up0', 'master', 'br0')
    ip('-n', lanNs, 'link', 'set', 'up0', 'up')
    ip('-n', router, 'addr', 'add', `${lan}.1/24`, 'dev', 'eth1')
    ip('-n', router, 'link', 'set', 'eth1', 'up')
    inNs(router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1')
    const ipt = (...args: string[]): void => { inNs(router, 'iptables', ...args) }
    ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', 'eth0', '-j', 'MASQUERADE', ...(spec.kind === 'symmetric' ? ['--random-fully'] : []))
    ipt('-A', 'FORWARD', '-i', 'eth1', '-o', 'eth0', '-j', 'ACCEPT')
    ipt('-A', 'FORWARD', '-i', 'eth0', '-o', 'eth1', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT')
    ipt('-A', 'FORWARD', '-i', 'eth0', '-o', 'eth1', '-j', 'DROP')
    const members: LabNode[] = []
    for (let j = 0; j < spec.members; j++) members.push(this.addHost(`s${i}m${j}`, lanNs, `m${j}`, `${lan}.${10 + j}/24`, `${lan}.1`))
    return { index: i, kind: spec.kind, router, wanAddress, gateway: `${lan}.1`, lanSubnet: `${lan}.0/24`, members }
  }

  publicHost (i: number): LabNode {
    const n = this.publicHosts[i]
    if (n === undefined) throw new RangeError(`no public host ${i}`)
    return n
  }

  member (site: number, j: number): LabNode {
    const n = this.sites[site]?.members[j]
    if (n === undefined) throw new RangeError(`no member ${j} at site ${site}`)
    return n
  }

  /** Every host that can run mesh: the relay host, public hosts, members. */
  nodes (): LabNode[] {
    return [this.relayHost, ...this.publicHosts, ...this.sites.flatMap((s) => s.members)]
  }

  async mesh (node: LabNode, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000, meshJs = MESH_JS): Promise<RunResult> {
    return await meshIn(node, args, env, timeoutMs, meshJs)
  }

  async meshOk (node: LabNode, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
    return await meshInOk(node, args, env)
  }

  /** A long-running process in a node's namespace (killed by destroy()); stdout and stderr piped. */
  spawn (node: LabNode, argv: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const proc = spawn('ip', ['netns', 'exec', node.ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MESH_HOME: node.home, ...env } })
    this.procs.push(proc)
    return proc
  }

  /**
   * mesh-relay on the relay host (TCP 4001, STUN on UDP 3478 and 3479 unless `args` say otherwise);
   * resolves once it printed its addresses (--json).
   */
  async startRelay (args: string[] = []): Promise<LabRelay> {
    const proc = this.spawn(this.relayHost, [process.execPath, RELAY_JS, '--home', this.relayHost.home, '--json', '--port', '4001', ...args])
    let out = ''
    let err = ''
    proc.stderr?.on('data', (d: Buffer) => { err += d.toString() })
    const info = await new Promise<{ peerId: string, addresses: string[], stun?: { ports: number[] } }>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`mesh-relay printed nothing in 20 s: ${err}`)) }, 20_000)
      proc.stdout?.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('\n')) { clearTimeout(timer); resolve(JSON.parse(out.split('\n')[0] as string)) }
      })
      proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`mesh-relay exited with ${code}: ${err}`)) })
    })
    const tcp = info.addresses.find((a) => a.startsWith(`/ip4/${RELAY_ADDRESS}/tcp/`))
    if (tcp === undefined) throw new Error(`mesh-relay announced no address on ${RELAY_ADDRESS}: ${info.addresses.join(' ')}`)
    return { proc, peerId: info.peerId, addresses: info.addresses, addr: tcp.includes('/p2p/') ? tcp : `${tcp}/p2p/${info.peerId}`, stunPorts: info.stun?.ports ?? [] }
  }

  async tcpReachable (from: LabNode, host: string, port: number): Promise<boolean> {
    return await tcpReachable(from, host, port)
  }

  /** Packets the site's NAT rule has translated so far (the control that NAT is really in the path). */
  natPackets (site: number): number {
    const out = inNs(this.siteOf(site).router, 'iptables', '-t', 'nat', '-L', 'POSTROUTING', '-v', '-n', '-x')
    return out.split('\n').filter((l) => l.includes('MASQUERADE')).reduce((sum, l) => sum + Number(l.trim().split(/\s+/)[0] ?? 0), 0)
  }

  /** Unsolicited packets from the internet the site's router dropped so far. */
  forwardDrops (site: number): number {
    const out = inNs(this.siteOf(site).router, 'iptables', '-L', 'FORWARD', '-v', '-n', '-x')
    return out.split('\n').filter((l) => /\bDROP\b/.test(l)).reduce((sum, l) => sum + Number(l.trim().split(/\s+/)[0] ?? 0), 0)
  }

  private siteOf (i: number): NatSite {
    const s = this.sites[i]
    if (s === undefined) throw new RangeError(`no site ${i}`)
    return s
  }

  logs (): string {
    return labLogs(this.nodes())
  }

  /** Kill every process of the lab, delete its namespaces and files. Safe to call twice. */
  destroy (): void {
    for (const p of this.procs.splice(0)) { try { p.kill('SIGKILL') } catch { /* gone */ } }
    for (const ns of this.namespaces.splice(0).reverse()) killNamespace(ns)
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

/** Whether iptables' nat table works here (it needs the nf_nat modules and the iptables package). */
export function natUnavailable (): string | undefined {
  try { execFileSync('iptables', ['-t', 'nat', '-L', '-n'], { stdio: 'ignore' }) } catch { return 'iptables with the nat table is unavailable (apt-get install -y iptables)' }
  return undefined
}

import dgram from 'node:dgram'
import fs from 'node:fs'
import os from 'node:os'

/** Where a datagram came from. */
export interface Source { address: string, port: number }
export interface UnicastTarget { host: string, port: number }

export interface UdpTransportInit {
  group: string
  port: number
  /** 1: beacons never leave the LAN segment */
  ttl: number
  /** hear our own multicast (only for several agents in one network namespace; receive drops 'own' anyway) */
  loopback: boolean
  /** IPv4 addresses to send and join on; undefined = every multicast-capable interface */
  interfaces: string[] | undefined
}

export interface UdpTransportComponents {
  onDatagram: (data: Uint8Array, from: Source) => void
  onError: (what: string, err: Error) => void
}

const IFF_MULTICAST = 0x1000

/**
 * IPv4 addresses of the interfaces that can carry multicast: up, not loopback, and (on Linux, where
 * /sys says so) with the MULTICAST flag. Pure apart from the two readers, which tests replace.
 */
export function multicastAddresses (
  ifaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces(),
  flagsOf: (name: string) => number | undefined = linuxFlags
): string[] {
  const out: string[] = []
  for (const [name, infos] of Object.entries(ifaces)) {
    const flags = flagsOf(name)
    if (flags !== undefined && (flags & IFF_MULTICAST) === 0) continue
    for (const info of infos ?? []) if (info.family === 'IPv4' && !info.internal) out.push(info.address)
  }
  return out.sort()
}

function linuxFlags (name: string): number | undefined {
  try { return Number.parseInt(fs.readFileSync(`/sys/class/net/${name}/flags`, 'utf8'), 16) } catch { return undefined }
}

/**
 * UDP multicast beacons on every multicast-capable interface. One receive socket bound to the
 * beacon port with SO_REUSEADDR (so several agents on one host can share it) joins the group on
 * each interface; one send socket per interface fixes the outgoing interface. Linux delivers a
 * group's datagrams to every socket bound to the port once any joined (IP_MULTICAST_ALL), and a
 * host with two interfaces on one LAN hears a packet twice: the receive path deduplicates.
 * Unicast (bootstrap addresses, cached peers) goes out of the receive socket, so its source port
 * is the beacon port.
 */
export class UdpBeaconTransport {
  private recv: dgram.Socket | undefined
  private readonly senders = new Map<string, dgram.Socket>()

  constructor (private readonly init: UdpTransportInit, private readonly c: UdpTransportComponents) {}

  get port (): number { return this.recv?.address().port ?? this.init.port }
  get interfaces (): string[] { return [...this.senders.keys()] }

  async start (): Promise<void> {
    if (this.recv !== undefined) return
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true })
    sock.on('message', (msg, rinfo) => { this.c.onDatagram(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), { address: rinfo.address, port: rinfo.port }) })
    sock.on('error', (err) => { this.c.onError('receive socket', err) })
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject)
      sock.bind({ port: this.init.port, address: '0.0.0.0' }, () => { sock.off('error', reject); resolve() })
    })
    this.recv = sock
    await this.refreshInterfaces()
  }

  /** Re-read the interfaces; join and open senders on new ones, leave gone ones. True if anything changed. */
  async refreshInterfaces (): Promise<boolean> {
    const recv = this.recv
    if (recv === undefined) return false
    const want = new Set(this.init.interfaces ?? multicastAddresses())
    let changed = false
    for (const [addr, sock] of this.senders) {
      if (want.has(addr)) continue
      try { recv.dropMembership(this.init.group, addr) } catch { /* the interface is already gone */ }
      sock.close()
      this.senders.delete(addr)
      changed = true
    }
    for (const addr of want) {
      if (this.senders.has(addr)) continue
      try {
        recv.addMembership(this.init.group, addr)
        this.senders.set(addr, await this.openSender(addr))
        changed = true
      } catch (err) {
        this.c.onError(`joining ${this.init.group} on ${addr}`, err as Error)
      }
    }
    return changed
  }

  private async openSender (addr: string): Promise<dgram.Socket> {
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true })
    // a unicast reply to the source of one of our multicasts (e.g. a cert-response) arrives here
    sock.on('message', (msg, rinfo) => { this.c.onDatagram(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), { address: rinfo.address, port: rinfo.port }) })
    sock.on('error', (err) => { this.c.onError(`send socket ${addr}`, err) })
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject)
      sock.bind({ port: 0, address: addr }, () => { sock.off('error', reject); resolve() })
    })
    sock.setMulticastInterface(addr)
    sock.setMulticastTTL(this.init.ttl)
    sock.setMulticastLoopback(this.init.loopback)
    return sock
  }

  /** Multicast on every interface, and unicast to each extra target. */
  send (data: Uint8Array, unicast: readonly UnicastTarget[] = []): void {
    for (const [addr, sock] of this.senders) {
      sock.send(data, this.init.port, this.init.group, (err) => { if (err != null) this.c.onError(`sending on ${addr}`, err) })
    }
    const recv = this.recv
    if (recv === undefined) return
    for (const t of unicast) {
      recv.send(data, t.port, t.host, (err) => { if (err != null) this.c.onError(`sending to ${t.host}:${t.port}`, err) })
    }
  }

  async stop (): Promise<void> {
    const closing = [...this.senders.values()]
    if (this.recv !== undefined) closing.push(this.recv)
    this.senders.clear()
    this.recv = undefined
    await Promise.all(closing.map(async (s) => await new Promise<void>((resolve) => { s.close(() => { resolve() }) })))
  }
}

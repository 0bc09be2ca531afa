/**
 * What kind of path a libp2p connection runs on, from its remote address alone: a plain direct
 * one (on a LAN, or to a public address), a hole-punched WebRTC one (UDP through the NATs), or
 * through a relay. Pure; the pool network, freshness answers and the tensor plane share it.
 *
 * Exports: PathKind (from freshness.ts, where it is a wire value), connectionPath, isPrivateIPv4, PATH_PREFERENCE.
 */
import { isPrivateIp } from '@libp2p/utils'
import net from 'node:net'
import type { PathKind } from './freshness.js'

export type { PathKind }

/**
 * The address ranges js-libp2p (and a home router) treat as not on the internet: js-libp2p's own
 * test (10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.168/16 and the TEST-NETs), so a path is
 * direct-lan exactly where libp2p would call the address private.
 */
export function isPrivateIPv4 (address: string): boolean {
  return net.isIPv4(address) && isPrivateIp(address) === true
}

export function connectionPath (remoteAddr: string): PathKind {
  // a WebRTC address may name the relay that signalled it (…/p2p-circuit/webrtc/…): it is direct all the same
  if (remoteAddr.includes('/webrtc')) return 'hole-punched'
  if (remoteAddr.includes('/p2p-circuit')) return 'relayed'
  const ip = /^\/ip4\/([\d.]+)\//.exec(remoteAddr)?.[1]
  return ip === undefined || isPrivateIPv4(ip) ? 'direct-lan' : 'direct-wan'
}

/** Which connection to a member to use: lower is better. */
export const PATH_PREFERENCE: Record<PathKind, number> = { 'direct-lan': 0, 'direct-wan': 0, 'hole-punched': 1, relayed: 2 }

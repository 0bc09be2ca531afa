/**
 * NAT type from STUN answers, as Tailscale's netcheck decides it: ask several STUN endpoints from
 * one UDP socket and compare the mapped addresses. The same public endpoint for every destination
 * is endpoint-independent mapping ("cone": a peer that learns it can reach us once we sent to it);
 * a different one per destination is endpoint-dependent ("symmetric": hole punching fails); our own
 * address and port is no NAT ("public"). This is UDP behaviour: a NAT may treat TCP otherwise.
 *
 * Exports: NatType, NatObservation, ProbeAnswer, NatVerdict, classifyNat.
 */
import type { Endpoint } from './stun.js'

export type NatType = 'public' | 'cone' | 'symmetric' | 'udp-blocked' | 'unknown'

export interface ProbeAnswer {
  /** the STUN endpoint asked */
  readonly server: Endpoint
  /** where it saw us; null if it never answered */
  readonly mapped: Endpoint | null
}

export interface NatObservation {
  /** the probing socket's port and this host's IPv4 interface addresses */
  readonly local: { readonly port: number, readonly addresses: readonly string[] }
  readonly answers: readonly ProbeAnswer[]
  /** whether a datagram sent to our own mapped endpoint came back to us; null if not tried */
  readonly hairpin: boolean | null
}

export interface NatVerdict {
  readonly type: NatType
  /** our address as the internet sees it; the port is null where it varies by destination */
  readonly publicEndpoint: { readonly address: string, readonly port: number | null } | null
  readonly hairpin: boolean | null
  /** one line: why this type */
  readonly reason: string
}

const text = (e: Endpoint): string => `${e.address}:${e.port}`

export function classifyNat (o: NatObservation): NatVerdict {
  const hairpin = o.hairpin
  if (o.answers.length === 0) return { type: 'unknown', publicEndpoint: null, hairpin, reason: 'no STUN server to ask (no relay known)' }
  const answered = o.answers.filter((a): a is ProbeAnswer & { mapped: Endpoint } => a.mapped !== null)
  if (answered.length === 0) {
    return { type: 'udp-blocked', publicEndpoint: null, hairpin, reason: `no answer from ${o.answers.map((a) => text(a.server)).join(', ')}: outbound UDP is blocked (or the STUN ports are closed)` }
  }
  const first = answered[0] as ProbeAnswer & { mapped: Endpoint }
  // our own socket address seen from outside: nothing rewrites it
  if (answered.every((a) => o.local.addresses.includes(a.mapped.address) && a.mapped.port === o.local.port)) {
    return { type: 'public', publicEndpoint: { ...first.mapped }, hairpin, reason: `the STUN servers see this socket's own address ${text(first.mapped)}` }
  }
  const servers = new Set(answered.map((a) => text(a.server)))
  if (servers.size < 2) {
    return { type: 'unknown', publicEndpoint: { ...first.mapped }, hairpin, reason: `only ${text(first.server)} answered: one destination cannot show whether the mapping depends on it` }
  }
  const mapped = new Set(answered.map((a) => text(a.mapped)))
  if (mapped.size === 1) {
    return { type: 'cone', publicEndpoint: { ...first.mapped }, hairpin, reason: `the same mapping ${text(first.mapped)} towards ${servers.size} destinations (endpoint-independent)` }
  }
  const addresses = new Set(answered.map((a) => a.mapped.address))
  return {
    type: 'symmetric',
    publicEndpoint: addresses.size === 1 ? { address: first.mapped.address, port: null } : null,
    hairpin,
    reason: `${mapped.size} different mappings towards ${servers.size} destinations (${[...mapped].join(', ')}: endpoint-dependent)`
  }
}

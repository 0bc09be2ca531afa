/** Human text for pool summaries (pool-list, pool-status). `--json` prints the summaries as they are. */
import type { PoolSummary } from '../pool/status.js'

/** Left-aligned columns, two spaces apart. */
export function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

export function certText (s: PoolSummary): string {
  const c = s.certificate
  if (c === null) return 'waiting for the admin'
  return c.status === 'valid' ? `valid until ${c.notAfter}` : `${c.status} (until ${c.notAfter})`
}

export function poolListText (pools: PoolSummary[]): string {
  if (pools.length === 0) return 'No pools yet: create one with `mesh pool-create --name NAME`, or join one with `mesh pool-join`.'
  return table(['POOL ID', 'NAME', 'ROLE', 'STATE', 'CERTIFICATE'], pools.map(p => [p.shortId, p.name, p.role, p.state, certText(p)]))
}

/** Said under stored data when no agent answers. */
export const STORED_ONLY_NOTE = 'Agent not running: these are the stored records only; `mesh start` shows the live ring and peers.'

/** pool-list with the running agent: the stored columns plus the live ring and peers. */
export function livePoolListText (pools: Array<PoolSummary & { ring: { epoch: number, members: number, converged: boolean } | null, peers: Record<string, number> | null }>): string {
  if (pools.length === 0) return poolListText(pools)
  return table(['POOL ID', 'NAME', 'ROLE', 'STATE', 'CERTIFICATE', 'RING', 'PEERS ONLINE'], pools.map(p => [
    p.shortId, p.name, p.role, p.state, certText(p),
    p.ring === null ? 'not in it' : `epoch ${p.ring.epoch}, ${p.ring.members} member${p.ring.members === 1 ? '' : 's'}${p.ring.converged ? '' : ', converging'}`,
    p.peers === null ? '0' : `${p.peers.ONLINE ?? 0}${(p.peers.SUSPECT ?? 0) > 0 ? ` (+${p.peers.SUSPECT} suspect)` : ''}`
  ]))
}

export function poolStatusText (s: PoolSummary, joinToken: string | undefined): string {
  const lines = [
    `Pool ${s.shortId} "${s.name}"`,
    `  Pool ID:           ${s.poolId}`,
    `  Root public key:   ${s.rootPublicKey}`,
    `  Role:              ${s.role}`,
    `  State:             ${s.state}`,
    `  Certificate:       ${certText(s)}${s.certificate !== null ? ` (serial ${s.certificate.serial}, roles ${s.certificate.roles.join(',')})` : ''}`,
    `  Revocation list:   ${s.revocationSequence === 0 ? 'none' : `sequence ${s.revocationSequence}, ${s.revokedNodeIds.length} node(s) revoked`}`
  ]
  if (s.policy !== undefined) lines.push(`  Policy:            ${s.policy}`)
  if (joinToken !== undefined) lines.push(`  Join token:        ${joinToken}`)
  if (s.members !== undefined) {
    lines.push(`  Members (${s.members.length}):`)
    for (const m of s.members) lines.push(`    ${m.nodeId}  ${m.name}  ${m.roles.join(',')}  until ${m.notAfter}`)
  }
  if (s.pending !== undefined) {
    lines.push(`  Pending requests (${s.pending.length}):${s.pending.length > 0 ? '  approve with `mesh pool-approve NODE`' : ''}`)
    for (const p of s.pending) lines.push(`    ${p.nodeId}  ${p.name}  since ${p.receivedAt}`)
  }
  for (const n of s.revokedNodeIds) lines.push(`  Revoked:           ${n}`)
  return lines.join('\n')
}

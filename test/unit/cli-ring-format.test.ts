import { describe, expect, it } from 'vitest'
import type { RingReport } from '../../src/agent/net/pool-ring.js'
import { formatRingReports } from '../../src/cli/ring-format.js'

const POOL = '602e587a5e549df0335ddddde1d7a73e163116015dfd047d071640f36e74e00a'
const report: RingReport = {
  poolId: POOL,
  poolName: 'lab',
  source: 'live',
  converged: true,
  ageMs: 12_300,
  topology: {
    version: 1, poolId: POOL, epoch: 7, hash: '12126be42e9b1d4623dd14a9f5757e5088241b531bcc3f6614fbae33d2237e28',
    shardMode: 'even', columns: 8192, updatedAt: '2026-11-23T16:00:00.000Z',
    members: [
      { nodeId: '12D3KooWA', name: 'desk', position: 0, start: 0, end: 4096, addresses: ['/ip4/10.0.0.2/tcp/4001'], status: 'online' },
      { nodeId: '12D3KooWBB', name: 'laptop', position: 1, start: 4096, end: 8192, addresses: [], status: 'suspect' }
    ]
  }
}

describe('formatRingReports', () => {
  it('prints a header and the members in ring order with their ranges', () => {
    expect(formatRingReports([report])).toBe([
      'pool 602e587a5e549df0 (lab)  epoch 7  hash 12126be42e9b  2 members  shards even  converged: yes  changed 12s ago',
      'POS  NODE ID     NAME    COLUMNS       SHARE  STATUS   ADDRESS',
      '0    12D3KooWA   desk    [0, 4096)     50.0%  ONLINE   /ip4/10.0.0.2/tcp/4001',
      '1    12D3KooWBB  laptop  [4096, 8192)  50.0%  SUSPECT'
    ].join('\n'))
  })

  it('shows the model each member serves, and who is excluded from this device\'s model\'s jobs and why', () => {
    const ours = 'a'.repeat(64)
    const theirs = 'b'.repeat(64)
    const withModels = { ...report, models: { self: ours, members: { '12D3KooWA': ours, '12D3KooWBB': theirs } } }
    expect(formatRingReports([withModels])).toBe([
      'pool 602e587a5e549df0 (lab)  epoch 7  hash 12126be42e9b  2 members  shards even  converged: yes  changed 12s ago',
      'this device serves model aaaaaaaaaaaa; JOBS says who takes part in its jobs',
      'POS  NODE ID     NAME    COLUMNS       SHARE  STATUS   MODEL         JOBS                                           ADDRESS',
      '0    12D3KooWA   desk    [0, 4096)     50.0%  ONLINE   aaaaaaaaaaaa  yes                                            /ip4/10.0.0.2/tcp/4001',
      '1    12D3KooWBB  laptop  [4096, 8192)  50.0%  SUSPECT  bbbbbbbbbbbb  excluded: serves another model (bbbbbbbbbbbb)'
    ].join('\n'))
    const silent = { ...report, models: { self: ours, members: { '12D3KooWA': ours, '12D3KooWBB': null } } }
    expect(formatRingReports([silent])).toMatch(/12D3KooWBB .* \? +excluded: has not announced a model yet/)
  })

  it('shows the heads and FFN units each member computes, and a member whose share rounds to nothing', () => {
    const units = { '12D3KooWA': { kvHeads: 4, queryHeads: 8, hidden: 172 }, '12D3KooWBB': { kvHeads: 0, queryHeads: 0, hidden: 0 } }
    const text = formatRingReports([{ ...report, units }])
    expect(text).toMatch(/12D3KooWA +desk .* 50\.0% +8 heads, 172 ffn +ONLINE/)
    expect(text).toMatch(/12D3KooWBB +laptop .* 50\.0% +none \(share too small\) +SUSPECT/)
  })

  it('says when convergence is unknown, and when there is no ring', () => {
    expect(formatRingReports([{ ...report, source: 'file', converged: null }])).toContain('converged: unknown (agent not running)')
    expect(formatRingReports([])).toMatch(/^no rings/)
  })
})

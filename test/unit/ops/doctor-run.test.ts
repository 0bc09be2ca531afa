import { describe, expect, it } from 'vitest'
import { certificateOutcome, CHECKS, skewOutcome, tcpTarget } from '../../../src/ops/doctor/checks.js'
import { exitCode, fail, ok, runChecks, warn, type Check } from '../../../src/ops/doctor/run.js'
import type { DoctorContext } from '../../../src/ops/doctor/context.js'
import type { ServiceState } from '../../../src/ops/service/systemd.js'
import type { PoolSummary } from '../../../src/pool/index.js'

const DAY = 86_400_000
const check = (id: string, run: Check<null>['run'], over: Partial<Check<null>> = {}): Check<null> => ({ id, title: id, deadlineMs: 1000, run, ...over })

describe('runChecks', () => {
  it('a check that hangs fails at its own deadline, and the others still finish', async () => {
    const r = await runChecks([
      check('hangs', async () => await new Promise(() => {}), { deadlineMs: 200 }),
      check('fine', async () => ok('yes'))
    ], null)
    expect(r.checks[0]).toMatchObject({ id: 'hangs', status: 'fail', detail: 'did not finish within 200 ms' })
    expect(r.checks[0]!.ms).toBeGreaterThanOrEqual(195)
    expect(r.checks[0]!.ms).toBeLessThan(600)
    expect(r.checks[1]).toMatchObject({ id: 'fine', status: 'ok', detail: 'yes', fix: '' })
    expect(r.status).toBe('fail')
  })

  it('a check whose need failed or was skipped is skipped with the reason; one that throws is a fail with the message on one line', async () => {
    const r = await runChecks([
      check('a', async () => { throw new Error('broken\nfile') }),
      check('b', async () => ok('never'), { needs: ['a'] }),
      check('c', async () => ok('never'), { needs: ['b'] })
    ], null)
    expect(r.checks.map((c) => [c.id, c.status, c.detail])).toEqual([
      ['a', 'fail', 'broken file'], ['b', 'skip', 'needs a: failed'], ['c', 'skip', 'needs b: skipped']
    ])
  })

  it('checks run concurrently: the whole takes about its longest check', async () => {
    const slow = async (): Promise<ReturnType<typeof ok>> => { await new Promise((resolve) => setTimeout(resolve, 150)); return ok('') }
    const t0 = performance.now()
    await runChecks([check('x', slow), check('y', slow), check('z', slow)], null)
    expect(performance.now() - t0).toBeLessThan(400)
  })

  it('exit 0 unless something failed; --strict fails on warnings too', async () => {
    const report = await runChecks([check('w', async () => warn('meh', 'do x'))], null)
    expect([report.status, exitCode(report, false), exitCode(report, true)]).toEqual(['warn', 0, 1])
    const bad = await runChecks([check('f', async () => fail('no', 'do y'))], null)
    expect([exitCode(bad, false), exitCode(bad, true)]).toEqual([1, 1])
  })

  it('the doctor\'s own list: unique ids, needs only earlier checks, every deadline bounded', () => {
    const seen = new Set<string>()
    for (const c of CHECKS) {
      for (const n of c.needs ?? []) expect(seen, `${c.id} needs ${n}`).toContain(n)
      seen.add(c.id)
      expect(c.deadlineMs).toBeGreaterThan(0)
      expect(c.deadlineMs).toBeLessThanOrEqual(60_000)
    }
    expect(seen.size).toBe(CHECKS.length)
  })
})

describe('check verdicts (pure)', () => {
  const now = Date.UTC(2026, 0, 1)
  const pool = (status: string | null, notAfter: number): PoolSummary => ({
    poolId: 'ab'.repeat(32), shortId: 'abababab', name: 'office', role: 'member', state: 'member', rootPublicKey: '',
    certificate: status === null ? null : { status: status as 'valid', serial: '1', nodeId: 'n', roles: ['member'], notBefore: new Date(now - DAY).toISOString(), notAfter: new Date(notAfter).toISOString() },
    revocationSequence: 0, revokedNodeIds: []
  })
  it.each([
    [pool('valid', now + 30 * DAY), 'ok', /certificate valid, 30 days left/],
    [pool('valid', now + 13 * DAY), 'warn', /expires in 13 days/],
    [pool('expired', now - DAY), 'fail', /certificate expired 2025-12-31/],
    [pool('revoked', now + 30 * DAY), 'fail', /revoked by the admin/],
    [pool(null, 0), 'warn', /waiting for a certificate/]
  ])('certificate %#', (p, status, detail) => {
    const o = certificateOutcome(p, now)
    expect(o.status).toBe(status)
    expect(o.detail).toMatch(detail)
    if (status !== 'ok') expect(o.fix).not.toBe('')
  })

  it('clock skew: warn beyond 5 s either way, skip with no heartbeats', () => {
    expect(skewOutcome([])).toMatchObject({ status: 'skip' })
    expect(skewOutcome([{ pool: 'p', nodeId: 'a'.repeat(64), ms: 40 }, { pool: 'p', nodeId: 'b'.repeat(64), ms: -4999 }])).toMatchObject({ status: 'ok', detail: 'within 4999 ms of 2 members' })
    const far = skewOutcome([{ pool: 'p', nodeId: 'c'.repeat(64), ms: -7200 }])
    expect(far).toMatchObject({ status: 'warn', detail: 'cccccccccccc in p is 7.2 s ahead' })
    expect(far.fix).toMatch(/timedatectl set-ntp true/)
  })

  it('relay addresses to TCP targets', () => {
    expect(tcpTarget('/ip4/10.0.0.1/tcp/4001/p2p/12D3KooW')).toEqual({ host: '10.0.0.1', port: 4001 })
    expect(tcpTarget('/dns4/relay.lan/tcp/4001/p2p/12D3KooW')).toEqual({ host: 'relay.lan', port: 4001 })
    expect(tcpTarget('/ip4/10.0.0.1/udp/4001/quic-v1')).toBeUndefined()
  })
})

describe('the service check, on what systemd says', () => {
  const service = CHECKS.find((c) => c.id === 'service')!
  const state = (over: Partial<ServiceState>): ServiceState => ({ unit: 'mesh-agent.service', scope: 'system', installed: true, enabled: true, active: 'active', mainPid: 42, unitFile: '/etc/systemd/system/mesh-agent.service', ...over })
  const ctx = (booted: boolean, states: ServiceState[]): DoctorContext => ({ home: '/h', services: async () => ({ booted, states }) }) as unknown as DoctorContext
  it.each([
    [true, [], 'skip', /^no service installed for \/h$/, /mesh service install/],
    [true, [state({})], 'ok', /^mesh-agent.service enabled and active \(pid 42\)$/, /^$/],
    [true, [state({ active: 'failed', mainPid: null })], 'fail', /^mesh-agent.service is failed$/, /^systemctl start mesh-agent.service; journalctl -u mesh-agent.service/],
    [true, [state({ scope: 'user', enabled: false })], 'warn', /not enabled: it will not start at boot/, /^systemctl --user enable mesh-agent.service$/],
    [false, [state({ active: null })], 'skip', /installed, enabled; systemd is not running here/, /^$/]
  ])('booted %s, %j', async (booted, states, status, detail, fix) => {
    if (process.platform !== 'linux') return
    const o = await service.run(ctx(booted, states))
    expect(o.status).toBe(status)
    expect(o.detail).toMatch(detail)
    expect(o.fix).toMatch(fix)
  })
})

import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ReplayGuard } from '../../../src/agent/beacon/replay.js'
import { multicastAddresses } from '../../../src/agent/beacon/transport.js'
import { lanDefaults } from '../../../src/agent/config.js'
import { needsRenewal, retryDelayMs } from '../../../src/agent/join.js'
import { TokenBucket } from '../../../src/token-bucket.js'
import { RateLimitedWarner, type Logger } from '../../../src/agent/log.js'
import { pidFile, runDir } from '../../../src/agent/paths.js'
import { PeerTable, peerStatus, type PeerRecord } from '../../../src/agent/peers.js'
import { claimPidFile, readPid, releasePidFile } from '../../../src/agent/pidfile.js'
import { tempDirs } from '../../helpers/pool-fixtures.js'

const cfg = lanDefaults('/h')

describe('peer status from last seen', () => {
  it.each([
    [0, 'ONLINE'], [14_999, 'ONLINE'], [15_000, 'SUSPECT'], [29_999, 'SUSPECT'], [30_000, 'OFFLINE']
  ] as const)('%i ms of silence is %s', (silent, status) => {
    expect(peerStatus(1_000_000, 1_000_000 + silent, cfg.peers)).toBe(status)
  })

  it('reports a peer as fresh when new or back from silence, and keeps live entries over cached ones', () => {
    const t = new PeerTable()
    const p: PeerRecord = { poolId: 'a', nodeId: 'n', name: 'x', publicKey: 'k', roles: [], certSerial: 's', address: '10.0.0.1', port: 1, unicast: false, listenAddrs: [], capabilities: [], lastSeen: 1000 }
    expect(t.seen(p, 1000, cfg.peers)).toBe(true)
    expect(t.seen({ ...p, lastSeen: 2000 }, 2000, cfg.peers)).toBe(false)
    expect(t.seen({ ...p, lastSeen: 40_000 }, 40_000, cfg.peers)).toBe(true)
    t.remember({ ...p, lastSeen: 0, address: 'old' })
    expect(t.list('a', 40_000, cfg.peers).map((v) => [v.address, v.status])).toEqual([['10.0.0.1', 'ONLINE']])
    expect(t.list('b', 40_000, cfg.peers)).toEqual([])
  })
})

describe('certificate request backoff', () => {
  it('doubles from 500 ms up to 30 s, with ±20 % jitter', () => {
    expect([0, 1, 2, 3, 10].map((n) => retryDelayMs(n, cfg.join, 0.5))).toEqual([500, 1000, 2000, 4000, 30_000])
    expect(retryDelayMs(0, cfg.join, 0)).toBe(400)
    expect(retryDelayMs(0, cfg.join, 0.999999)).toBe(600)
  })
  it('renews in the last third of the lifetime', () => {
    expect(needsRenewal({ notBefore: 0, notAfter: 300 }, 199)).toBe(false)
    expect(needsRenewal({ notBefore: 0, notAfter: 300 }, 200)).toBe(true)
  })
})

describe('replay window', () => {
  it('accepts late packets inside the window once, refuses older ones', () => {
    const g = new ReplayGuard()
    g.commit('s', 100)
    expect(g.check('s', 100)).toBe('duplicate')
    expect(g.check('s', 90)).toBe('fresh')
    g.commit('s', 90)
    expect(g.check('s', 90)).toBe('duplicate')
    g.commit('s', 200)
    expect(g.check('s', 136)).toBe('replay')
    expect(g.check('s', 137)).toBe('fresh')
    expect(g.check('other', 1)).toBe('fresh')
  })
})

describe('rate-limited warnings', () => {
  it('logs a key once per period and reports how many it held back', () => {
    const lines: Array<Record<string, unknown>> = []
    const log = { warn: (fields: Record<string, unknown>) => { lines.push(fields) } } as unknown as Logger
    const w = new RateLimitedWarner(log, 1000)
    for (let t = 0; t < 10; t++) w.warn('k', t, { n: t }, 'bad packet')
    w.warn('other', 5, {}, 'x')
    w.warn('k', 1000, { n: 1000 }, 'bad packet')
    expect(lines).toEqual([{ n: 0 }, {}, { n: 1000, suppressed: 9 }])
  })
})

describe('multicast interfaces', () => {
  it('takes non-internal IPv4 addresses of interfaces with the MULTICAST flag', () => {
    const info = (address: string, family: 'IPv4' | 'IPv6', internal = false): any => ({ address, family, internal })
    const ifaces = { lo: [info('127.0.0.1', 'IPv4', true)], eth0: [info('10.0.0.2', 'IPv4'), info('fe80::1', 'IPv6')], wg0: [info('10.9.0.1', 'IPv4')], eth1: [info('192.168.1.5', 'IPv4')] }
    const flags: Record<string, number> = { lo: 0x9, eth0: 0x1003, wg0: 0x91, eth1: 0x1003 }
    expect(multicastAddresses(ifaces, (n) => flags[n])).toEqual(['10.0.0.2', '192.168.1.5'])
    expect(multicastAddresses(ifaces, () => undefined)).toEqual(['10.0.0.2', '10.9.0.1', '192.168.1.5'])
  })
})

describe('pid file', () => {
  const tmp = tempDirs('mesh-pid-')
  it('treats a pid file naming a live process that is not mesh as stale', async () => {
    const home = tmp()
    const sleeper = spawn('sleep', ['30'])
    try {
      fs.mkdirSync(runDir(home), { recursive: true })
      fs.writeFileSync(pidFile(home), `${sleeper.pid ?? 0}\n`)
      expect(claimPidFile(home)).toBe(sleeper.pid)
      expect(readPid(home)).toBe(process.pid)
      releasePidFile(home)
      expect(fs.existsSync(pidFile(home))).toBe(false)
    } finally {
      sleeper.kill()
    }
  })
})

describe('token bucket', () => {
  it('allows a burst, then the refill rate', () => {
    const b = new TokenBucket(3, 10)
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false])
    expect(b.take(99)).toBe(false)
    expect(b.take(100)).toBe(true)
    expect(b.take(10_000)).toBe(true)
  })
})

import { describe, expect, it } from 'vitest'
import { lanDefaults, parseBootstrap, resolveAgentConfig } from '../../../src/agent/config.js'
import { UsageError } from '../../../src/errors.js'

describe('agent config', () => {
  it('layers defaults, file, env and flags; later wins, bootstrap adds up', () => {
    const c = resolveAgentConfig('/h', { beaconPort: 5000, bootstrap: ['10.0.0.1'] }, { beaconPort: 6000, beaconIntervalMs: 1000 }, { bootstrap: ['10.0.0.2:7000'] })
    expect(c.beacon.port).toBe(6000)
    expect(c.beacon.intervalMs).toBe(1000)
    expect(c.peers).toEqual({ suspectAfterMs: 3000, offlineAfterMs: 6000 })
    expect(c.beacon.bootstrap).toEqual([{ host: '10.0.0.1', port: 6000 }, { host: '10.0.0.2', port: 7000 }])
    expect(resolveAgentConfig('/h')).toEqual(lanDefaults('/h'))
  })
  it('rejects bad values with a usage error', () => {
    expect(() => resolveAgentConfig('/h', { beaconGroup: '10.0.0.1' })).toThrow(UsageError)
    expect(() => resolveAgentConfig('/h', { beaconPort: 70000 })).toThrow(UsageError)
    expect(() => resolveAgentConfig('/h', { beaconIntervalMs: 5 })).toThrow(UsageError)
    expect(() => parseBootstrap('300.1.1.1', 1)).toThrow(UsageError)
    expect(() => parseBootstrap('host:0', 1)).toThrow(UsageError)
    expect(parseBootstrap('mesh-box.lan:99', 1)).toEqual({ host: 'mesh-box.lan', port: 99 })
  })
})

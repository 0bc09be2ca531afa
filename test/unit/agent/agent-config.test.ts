import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os, { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { CorruptFileError } from '../../../src/atomic-file.js'
import { envOverrides, lanDefaults, parseBootstrap, readAgentFile, resolveAgentConfig } from '../../../src/agent/config.js'
import { BUNDLED_MODEL } from '../../../src/inference/served.js'
import { parseRelayAddress, relayedAddress, relaysIn } from '../../../src/agent/net/relays.js'
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
  it('serves the bundled model unless told; agent.json paths are relative to MESH_HOME, env paths to the working directory', () => {
    const home = mkdtempSync(path.join(tmpdir(), 'mesh-config-'))
    try {
      expect(resolveAgentConfig(home).model).toEqual(BUNDLED_MODEL)
      writeFileSync(path.join(home, 'agent.json'), JSON.stringify({ model: 'm/model.bin', tokenizer: '/abs/tok.bin' }))
      const file = readAgentFile(home)
      expect(file).toMatchObject({ model: path.join(home, 'm/model.bin'), tokenizer: '/abs/tok.bin' })
      const env = envOverrides({ MESH_MODEL: 'x.bin' })
      expect(env.model).toBe(path.resolve('x.bin'))
      expect(resolveAgentConfig(home, file, env).model).toEqual({ checkpointPath: path.resolve('x.bin'), tokenizerPath: '/abs/tok.bin' })
      writeFileSync(path.join(home, 'agent.json'), JSON.stringify({ model: '' }))
      expect(() => readAgentFile(home)).toThrow(CorruptFileError)
    } finally {
      rmSync(home, { recursive: true, force: true })
    }
  })
  it('kernel threads: every core by default, else agent.json, MESH_THREADS or --threads; a bad count is a usage error', () => {
    expect(resolveAgentConfig('/h').threads).toBe(os.availableParallelism())
    expect(resolveAgentConfig('/h', { threads: 3 }, envOverrides({ MESH_THREADS: '2' })).threads).toBe(2)
    expect(resolveAgentConfig('/h', { threads: 3 }, {}, { threads: 1 }).threads).toBe(1)
    expect(() => envOverrides({ MESH_THREADS: 'two' })).toThrow(UsageError)
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => resolveAgentConfig('/h', {}, {}, { threads: bad })).toThrow(UsageError)
  })
  it('tensor partials: float32 unless agent.json, MESH_TENSOR_PARTIALS or --tensor-partials say q8; another value is a usage error', () => {
    expect(resolveAgentConfig('/h').tensorPartials).toBe('exact')
    expect(resolveAgentConfig('/h', { tensorPartials: 'q8' }).tensorPartials).toBe('q8')
    expect(resolveAgentConfig('/h', { tensorPartials: 'q8' }, envOverrides({ MESH_TENSOR_PARTIALS: 'exact' })).tensorPartials).toBe('exact')
    expect(() => envOverrides({ MESH_TENSOR_PARTIALS: 'q4' })).toThrow(UsageError)
  })

  it('rejects bad values with a usage error', () => {
    expect(() => resolveAgentConfig('/h', { beaconGroup: '10.0.0.1' })).toThrow(UsageError)
    expect(() => resolveAgentConfig('/h', { beaconPort: 70000 })).toThrow(UsageError)
    expect(() => resolveAgentConfig('/h', { beaconIntervalMs: 5 })).toThrow(UsageError)
    expect(() => parseBootstrap('300.1.1.1', 1)).toThrow(UsageError)
    expect(() => parseBootstrap('host:0', 1)).toThrow(UsageError)
    expect(parseBootstrap('mesh-box.lan:99', 1)).toEqual({ host: 'mesh-box.lan', port: 99 })
  })
  it('relays: from agent.json, MESH_RELAYS and --relay, added up without repeats; each must name its relay', () => {
    const r = '/ip4/10.0.0.9/tcp/4001/p2p/12D3KooWAghadJhLhAjNp7tUmmG5MostYUfQREHsonKeN2zdYdPe'
    const r2 = '/ip4/10.0.0.8/tcp/4001/p2p/12D3KooWEh6BPzHUsAtTudRvYfWLdfrXVGsqaAaBsgjYPqbxcuU9'
    expect(resolveAgentConfig('/h', { relays: [r] }, envOverrides({ MESH_RELAYS: `${r}, ${r2}` }), { relays: [r2] }).ring.relays).toEqual([r, r2])
    expect(relayedAddress(r, 'NODE')).toBe(`${r}/p2p-circuit/p2p/NODE`)
    expect(() => parseRelayAddress('10.0.0.9:4001')).toThrow(/is not a multiaddr; use what mesh-relay prints/)
    expect(() => parseRelayAddress('/ip4/10.0.0.9/tcp/4001')).toThrow(/lacks the relay's \/p2p\/ID/)
    expect(() => parseRelayAddress(`${r}/p2p-circuit`)).toThrow(/is a relayed address/)
    expect(() => resolveAgentConfig('/h', { relays: ['nonsense'] })).toThrow(UsageError)
  })
  it('relays behind the relayed addresses a beacon announces: each once; direct and malformed addresses give none', () => {
    const r = '/ip4/10.0.0.9/tcp/4001/p2p/12D3KooWAghadJhLhAjNp7tUmmG5MostYUfQREHsonKeN2zdYdPe'
    const node = '12D3KooWEh6BPzHUsAtTudRvYfWLdfrXVGsqaAaBsgjYPqbxcuU9'
    expect(relaysIn(['/ip4/10.0.0.2/tcp/4100', relayedAddress(r, node), `${r}/p2p-circuit/p2p/${node}`])).toEqual([r])
    expect(relaysIn(['/p2p-circuit/p2p/X', '/ip4/10.0.0.9/tcp/4001/p2p-circuit/p2p/X', 'garbage/p2p-circuit'])).toEqual([])
  })
})

import { describe, expect, it } from 'vitest'
import { classifyNat, type NatObservation } from '../../../src/nat/classify.js'

const relay1 = { address: '11.0.0.2', port: 3478 }
const relay2 = { address: '11.0.0.2', port: 3479 }
const other = { address: '11.0.0.3', port: 3478 }
const local = { port: 40000, addresses: ['127.0.0.1', '192.168.1.10'] }

const obs = (answers: NatObservation['answers'], hairpin: boolean | null = false, l = local): NatObservation => ({ local: l, answers, hairpin })

describe('classifyNat', () => {
  it.each([
    ['no server to ask', obs([]), 'unknown', null],
    ['nobody answered', obs([{ server: relay1, mapped: null }, { server: relay2, mapped: null }]), 'udp-blocked', null],
    ['our own address and port', obs([{ server: relay1, mapped: { address: '11.0.0.5', port: 40000 } }, { server: relay2, mapped: { address: '11.0.0.5', port: 40000 } }], true, { port: 40000, addresses: ['11.0.0.5'] }), 'public', { address: '11.0.0.5', port: 40000 }],
    ['one mapping towards two ports (MASQUERADE)', obs([{ server: relay1, mapped: { address: '11.0.0.10', port: 40000 } }, { server: relay2, mapped: { address: '11.0.0.10', port: 40000 } }]), 'cone', { address: '11.0.0.10', port: 40000 }],
    ['one mapping towards two servers, one silent', obs([{ server: relay1, mapped: { address: '11.0.0.10', port: 1234 } }, { server: other, mapped: { address: '11.0.0.10', port: 1234 } }, { server: relay2, mapped: null }]), 'cone', { address: '11.0.0.10', port: 1234 }],
    ['a port per destination (--random-fully)', obs([{ server: relay1, mapped: { address: '11.0.0.11', port: 5001 } }, { server: relay2, mapped: { address: '11.0.0.11', port: 61234 } }]), 'symmetric', { address: '11.0.0.11', port: null }],
    ['same port, other address (multi-homed NAT)', obs([{ server: relay1, mapped: { address: '11.0.0.11', port: 5001 } }, { server: other, mapped: { address: '11.0.0.12', port: 5001 } }]), 'symmetric', null],
    ['only one destination answered', obs([{ server: relay1, mapped: { address: '11.0.0.10', port: 40000 } }, { server: relay2, mapped: null }]), 'unknown', { address: '11.0.0.10', port: 40000 }],
    ['own address, rewritten port (a firewall that remaps)', obs([{ server: relay1, mapped: { address: '11.0.0.5', port: 1 } }, { server: relay2, mapped: { address: '11.0.0.5', port: 2 } }], false, { port: 40000, addresses: ['11.0.0.5'] }), 'symmetric', { address: '11.0.0.5', port: null }]
  ] as const)('%s → %s', (_what, o, type, endpoint) => {
    const v = classifyNat(o)
    expect(v.type).toBe(type)
    expect(v.publicEndpoint).toEqual(endpoint)
    expect(v.hairpin).toBe(o.hairpin)
    expect(v.reason).not.toMatch(/\n/)
  })
})

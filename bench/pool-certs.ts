// What certificate work costs per packet: decode, full verification (ed25519), signing, and the admin's
// decision on a join request. Run: node --import tsx bench/pool-certs.ts
import os from 'node:os'
import { decodeMemberCert, signMemberCert, verifyMemberCertBytes } from '../src/pool/cert.js'
import { createCertRequest, decideCertRequest } from '../src/pool/cert-request.js'
import { nodeIdFromPublicKey } from '../src/pool/identity.js'
import { keyId, publicKeyOf } from '../src/pool/keys.js'
import { derivePoolId } from '../src/pool/pool-id.js'
import { newJoinToken } from '../src/pool/policy.js'

const RUNS = 7
const ITER = 300

/** median over RUNS of the mean µs per call over ITER calls, after one warm-up run */
function medianMicros (fn: () => unknown): number {
  const runs: number[] = []
  for (let r = 0; r <= RUNS; r++) {
    const t = process.hrtime.bigint()
    for (let i = 0; i < ITER; i++) fn()
    const us = Number(process.hrtime.bigint() - t) / 1000 / ITER
    if (r > 0) runs.push(us)
  }
  runs.sort((a, b) => a - b)
  return runs[Math.floor(runs.length / 2)] as number
}

const rootSeed = new Uint8Array(32).fill(1)
const rootPublicKey = publicKeyOf(rootSeed)
const poolId = derivePoolId(rootPublicKey)
const devSeed = new Uint8Array(32).fill(2)
const devPub = publicKeyOf(devSeed)
const device = { nodeId: nodeIdFromPublicKey(devPub), publicKey: devPub, privateKey: devSeed, name: 'bench', networkId: 'lan' }
const now = Date.now()
const unsigned = {
  version: 1 as const, poolId, nodeId: device.nodeId, devicePublicKey: devPub, name: 'bench', roles: ['member' as const],
  serial: '0123456789abcdef', notBefore: now - 1000, notAfter: now + 86_400_000, issuerKeyId: keyId(rootPublicKey)
}
const cert = signMemberCert(unsigned, rootSeed)
const token = newJoinToken()
const request = createCertRequest(device, poolId, now, token)
const ctx = { poolId, rootPrivateKey: rootSeed, rootPublicKey, policy: 'token' as const, joinToken: token, memberNodeIds: new Set<string>(), rejectedNodeIds: new Set<string>() }

console.log(`pool certificates: ${os.cpus()[0]?.model ?? 'cpu'} ×${os.cpus().length}, load ${os.loadavg()[0]?.toFixed(1)}, node ${process.version}; median of ${RUNS} runs × ${ITER} calls`)
console.log(`  decodeMemberCert (${cert.bytes.length} B)      ${medianMicros(() => decodeMemberCert(cert.bytes)).toFixed(1)} µs`)
console.log(`  verifyMemberCertBytes (decode+ed25519) ${medianMicros(() => verifyMemberCertBytes(cert.bytes, { poolId, rootPublicKey }, now)).toFixed(1)} µs`)
console.log(`  signMemberCert                        ${medianMicros(() => signMemberCert(unsigned, rootSeed)).toFixed(1)} µs`)
console.log(`  decideCertRequest (token, issues)     ${medianMicros(() => decideCertRequest(request, ctx, now, '0123456789abcdef')).toFixed(1)} µs`)

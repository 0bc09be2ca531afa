/**
 * Test helpers shared by the fallback tests: random pools and members with real keys and
 * certificates from src/pool, temporary homes, and waiting for a child process to exit.
 */
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { derivePoolId, keyId, newSeed, newSerial, nodeIdFromPublicKey, publicKeyOf, type Role, signMemberCert } from '../../src/pool/index.js'

export interface TestPool { rootSeed: Uint8Array, rootPublicKey: Uint8Array, poolId: string }
export interface TestMember { pool: TestPool, seed: Uint8Array, nodeId: string, certBytes: Uint8Array }

export function makePool (): TestPool {
  const rootSeed = newSeed()
  const rootPublicKey = publicKeyOf(rootSeed)
  return { rootSeed, rootPublicKey, poolId: derivePoolId(rootPublicKey) }
}

/** A device with a certificate of `pool`, signed by `signer` (the pool root unless a test forges one). */
export function makeMember (pool: TestPool, name: string, opts: { notBefore?: number, notAfter?: number, signer?: Uint8Array, roles?: Role[] } = {}): TestMember {
  const seed = newSeed()
  const publicKey = publicKeyOf(seed)
  const signer = opts.signer ?? pool.rootSeed
  const now = Date.now()
  const cert = signMemberCert({
    version: 1,
    poolId: pool.poolId,
    nodeId: nodeIdFromPublicKey(publicKey),
    devicePublicKey: publicKey,
    name,
    roles: opts.roles ?? ['member'],
    serial: newSerial(),
    notBefore: opts.notBefore ?? now - 60_000,
    notAfter: opts.notAfter ?? now + 86_400_000,
    issuerKeyId: keyId(publicKeyOf(signer))
  }, signer)
  return { pool, seed, nodeId: cert.nodeId, certBytes: cert.bytes }
}

export function tempHome (): string { return fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-cp-')) }

/** The exit of a child: its code (null when killed) and signal. */
export async function exited (proc: ChildProcess): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  if (proc.exitCode !== null || proc.signalCode !== null) return { code: proc.exitCode, signal: proc.signalCode }
  return await new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
}

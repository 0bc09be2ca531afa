/**
 * Test helpers for mesh-control-plane: random pools and members (real keys and certificates from
 * src/pool), and the real server as a child process on 127.0.0.1 with its own MESH_HOME.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { derivePoolId, keyId, newSeed, newSerial, nodeIdFromPublicKey, publicKeyOf, type Role, signMemberCert } from '../../src/pool/index.js'
import { ControlPlaneClient, type ControlPlaneClientOptions } from '../../src/control-plane/client.js'

export const MAIN = path.resolve('dist/control-plane/main.js')

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

export function clientFor (url: string, m: TestMember, opts?: ControlPlaneClientOptions): ControlPlaneClient {
  return new ControlPlaneClient(url, m.pool.poolId, { certBytes: m.certBytes, privateKey: m.seed }, opts)
}

export function tempHome (): string { return fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-cp-')) }

export interface RunningControlPlane {
  readonly proc: ChildProcess
  readonly port: number
  readonly url: string
  readonly stderr: () => string
  /** SIGTERM and wait for exit */
  stop: () => Promise<void>
}

/** The exit of a child: its code (null when killed) and signal. */
export async function exited (proc: ChildProcess): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  if (proc.exitCode !== null || proc.signalCode !== null) return { code: proc.exitCode, signal: proc.signalCode }
  return await new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
}

/** Start the server; resolves once it printed its bound address (JSON). */
export async function startControlPlane (home: string, args: string[]): Promise<RunningControlPlane> {
  const proc = spawn(process.execPath, [MAIN, '--home', home, '--host', '127.0.0.1', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n')[0]
      if (out.includes('\n') && line !== undefined) resolve((JSON.parse(line) as { port: number }).port)
    })
    proc.once('exit', (code) => reject(new Error(`control plane exited with ${code}: ${err}`)))
  })
  return {
    proc,
    port,
    url: `http://127.0.0.1:${port}`,
    stderr: () => err,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
      await exited(proc)
    }
  }
}

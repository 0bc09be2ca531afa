import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  acceptCertificate, certRequestFor, createPool, handleCertRequest, initDevice, joinPool, loadDevice
} from '../../src/pool/index.js'

export interface TestDevice { home: string, nodeId: string, name: string }
export interface TestPool { poolId: string, rootPublicKey: string, joinToken: string, admin: TestDevice, members: TestDevice[] }

/** A fresh MESH_HOME with a device identity, under a temp dir the caller removes. */
export function testDevice (root: string, name: string): TestDevice {
  const home = fs.mkdtempSync(path.join(root, `${name}-`))
  const device = initDevice(home, { networkId: 'test', name })
  return { home, nodeId: device.nodeId, name }
}

/** Join `dev` to the pool and have the admin issue its certificate by the real request flow. */
export function certify (pool: Omit<TestPool, 'members'>, dev: TestDevice): void {
  const now = Date.now()
  joinPool(dev.home, { poolId: pool.poolId, rootPublicKey: pool.rootPublicKey, name: 'test pool', token: pool.joinToken, now })
  const outcome = handleCertRequest(pool.admin.home, certRequestFor(dev.home, pool.poolId, now).bytes, now)
  if (outcome.decision.kind !== 'issue') throw new Error(`admin did not issue: ${JSON.stringify(outcome.decision)}`)
  acceptCertificate(dev.home, pool.poolId, outcome.decision.cert.bytes, now)
}

/** A pool whose admin is `names[0]`, with every other name a certified member. */
export function testPool (root: string, names: string[]): TestPool {
  const [adminName, ...rest] = names
  const admin = testDevice(root, adminName ?? 'admin')
  const created = createPool(admin.home, { name: 'test pool', policy: 'token', now: Date.now() })
  const pool = { poolId: created.record.poolId, rootPublicKey: created.rootPublicKey, joinToken: created.joinToken, admin }
  const members = rest.map((n) => { const d = testDevice(root, n); certify(pool, d); return d })
  return { ...pool, members }
}

export function tempRoot (): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-test-'))
}

export { loadDevice }

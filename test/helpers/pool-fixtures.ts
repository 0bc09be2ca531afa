import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach } from 'vitest'
import { createPool, type CreatedPool } from '../../src/pool/admin.js'
import { initDevice, nodeIdFromPublicKey, type Device } from '../../src/pool/identity.js'
import type { PoolPolicy } from '../../src/pool/policy.js'
import { keyId, publicKeyOf } from '../../src/pool/keys.js'
import { derivePoolId } from '../../src/pool/pool-id.js'
import type { UnsignedMemberCert } from '../../src/pool/cert.js'

/** Fixed keys so encodings are reproducible (golden bytes). */
export const ROOT_SEED = new Uint8Array(32).fill(1)
export const ROOT_PUB = publicKeyOf(ROOT_SEED)
export const POOL_ID = derivePoolId(ROOT_PUB)
export const OTHER_ROOT_SEED = new Uint8Array(32).fill(3)

export function fixedDevice (fill: number, name = 'laptop'): Device {
  const privateKey = new Uint8Array(32).fill(fill)
  const publicKey = publicKeyOf(privateKey)
  return { nodeId: nodeIdFromPublicKey(publicKey), publicKey, privateKey, name, networkId: 'lan' }
}

export const DEVICE = fixedDevice(2)
/** 2026-01-01T00:00:00Z */
export const T0 = Date.UTC(2026, 0, 1)
export const DAY = 24 * 3600_000

export function unsignedCert (over: Partial<UnsignedMemberCert> = {}): UnsignedMemberCert {
  return {
    version: 1,
    poolId: POOL_ID,
    nodeId: DEVICE.nodeId,
    devicePublicKey: DEVICE.publicKey,
    name: DEVICE.name,
    roles: ['member'],
    serial: '0123456789abcdef',
    notBefore: T0,
    notAfter: T0 + 30 * DAY,
    issuerKeyId: keyId(ROOT_PUB),
    ...over
  }
}

/** Temporary directories removed after each test. */
export function tempDirs (prefix = 'mesh-test-'): () => string {
  const dirs: string[] = []
  afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }) })
  return () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix)); dirs.push(d); return d }
}

/** Every file under `dir` with its content and mode, to show that a failed command changed nothing. */
export function snapshot (dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string): void => {
    if (!fs.existsSync(d) || !fs.statSync(d).isDirectory()) return
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name)
      const st = fs.statSync(p)
      if (st.isDirectory()) { out[path.relative(dir, p) + '/'] = (st.mode & 0o777).toString(8); walk(p) } else {
        out[path.relative(dir, p)] = `${(st.mode & 0o777).toString(8)} ${fs.readFileSync(p).toString('base64')}`
      }
    }
  }
  walk(dir)
  return out
}

/** A home with a device identity and (optionally) one pool it administers, set up through the library. */
export function homeWithPool (tmp: () => string, name = 'box', policy?: PoolPolicy): { home: string, pool: CreatedPool | undefined } {
  const home = tmp()
  initDevice(home, { networkId: 'lan', name })
  return { home, pool: policy === undefined ? undefined : createPool(home, { name: 'office', policy, now: Date.now() }) }
}

/**
 * Pools, their devices, and the nonces of recent requests.
 * A pool row holds the root public key its Pool ID derives from: that key is all the trust the
 * control plane needs (it never sees a root private key).
 *
 * Exports: PoolRow, DeviceRow, PoolStore.
 */
import type { Database, Statement } from 'better-sqlite3'
import { type MemberCert } from '../../pool/index.js'

export interface PoolRow {
  readonly poolId: string
  readonly rootPublicKey: Uint8Array
  readonly registeredAt: number
  /** the newest verified revocation list, as received */
  readonly revocation: Uint8Array | undefined
}

export interface DeviceRow {
  readonly poolId: string
  readonly nodeId: string
  readonly name: string
  readonly certSerial: string
  readonly certNotAfter: number
  readonly registeredAt: number
  readonly lastSeenAt: number
}

interface RawPool { pool_id: string, root_public_key: Buffer, registered_at: number, revocation: Buffer | null }
interface RawDevice {
  pool_id: string, node_id: string, name: string, cert_serial: string, cert_not_after: number,
  registered_at: number, last_seen_at: number
}

const toDevice = (r: RawDevice): DeviceRow => ({
  poolId: r.pool_id,
  nodeId: r.node_id,
  name: r.name,
  certSerial: r.cert_serial,
  certNotAfter: r.cert_not_after,
  registeredAt: r.registered_at,
  lastSeenAt: r.last_seen_at
})

export class PoolStore {
  private readonly selectPool: Statement<[string], RawPool>
  private readonly insertPool: Statement<[string, Buffer, number]>
  private readonly updateRevocation: Statement<[Buffer, string]>
  private readonly selectDevice: Statement<[string, string], RawDevice>
  private readonly selectDevices: Statement<[string], RawDevice>
  private readonly upsertDeviceStmt: Statement<[string, string, string, Buffer, string, number, number, number]>
  private readonly touchDeviceStmt: Statement<[string, number, number, string, string, string]>
  private readonly insertNonce: Statement<[Buffer, string, number]>
  private readonly pruneNonces: Statement<[number]>

  constructor (private readonly db: Database) {
    this.selectPool = db.prepare('SELECT pool_id, root_public_key, registered_at, revocation FROM pools WHERE pool_id = ?')
    this.updateRevocation = db.prepare('UPDATE pools SET revocation = ? WHERE pool_id = ?')
    this.insertPool = db.prepare('INSERT OR IGNORE INTO pools (pool_id, root_public_key, registered_at) VALUES (?, ?, ?)')
    const deviceColumns = 'pool_id, node_id, name, cert_serial, cert_not_after, registered_at, last_seen_at'
    this.selectDevice = db.prepare(`SELECT ${deviceColumns} FROM devices WHERE pool_id = ? AND node_id = ?`)
    this.selectDevices = db.prepare(`SELECT ${deviceColumns} FROM devices WHERE pool_id = ? ORDER BY node_id`)
    this.upsertDeviceStmt = db.prepare(`
      INSERT INTO devices (pool_id, node_id, name, public_key, cert_serial, cert_not_after, registered_at, last_seen_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (pool_id, node_id) DO UPDATE SET
        name = excluded.name, cert_serial = excluded.cert_serial,
        cert_not_after = excluded.cert_not_after, last_seen_at = excluded.last_seen_at`)
    this.touchDeviceStmt = db.prepare(
      'UPDATE devices SET name = ?, cert_not_after = ?, last_seen_at = ?, cert_serial = ? WHERE pool_id = ? AND node_id = ?')
    this.insertNonce = db.prepare('INSERT OR IGNORE INTO nonces (public_key, nonce, expires_at) VALUES (?, ?, ?)')
    this.pruneNonces = db.prepare('DELETE FROM nonces WHERE expires_at < ?')
  }

  pool (poolId: string): PoolRow | undefined {
    const r = this.selectPool.get(poolId)
    if (r === undefined) return undefined
    return {
      poolId: r.pool_id,
      rootPublicKey: new Uint8Array(r.root_public_key),
      registeredAt: r.registered_at,
      revocation: r.revocation === null ? undefined : new Uint8Array(r.revocation)
    }
  }

  /** Store a revocation list the caller verified and found newer than the held one. */
  setRevocation (poolId: string, bytes: Uint8Array): void { this.updateRevocation.run(Buffer.from(bytes), poolId) }

  /** Record the pool if it is new; an existing pool keeps its row (its Pool ID fixes the key). */
  addPool (poolId: string, rootPublicKey: Uint8Array, now: number): void {
    this.insertPool.run(poolId, Buffer.from(rootPublicKey), now)
  }

  device (poolId: string, nodeId: string): DeviceRow | undefined {
    const r = this.selectDevice.get(poolId, nodeId)
    return r === undefined ? undefined : toDevice(r)
  }

  devices (poolId: string): DeviceRow[] { return this.selectDevices.all(poolId).map(toDevice) }

  /** Register the certificate's device, or refresh it (a renewed certificate has a new serial). */
  registerDevice (cert: MemberCert, now: number): void {
    this.upsertDeviceStmt.run(cert.poolId, cert.nodeId, cert.name, Buffer.from(cert.devicePublicKey), cert.serial, cert.notAfter, now, now)
  }

  /** Note a request of a registered device; false if it is not registered. */
  touchDevice (cert: MemberCert, now: number): boolean {
    return this.touchDeviceStmt.run(cert.name, cert.notAfter, now, cert.serial, cert.poolId, cert.nodeId).changes === 1
  }

  /** Remember a request nonce until `expiresAt`; false if this key already used it (a replay). */
  rememberNonce (publicKey: Uint8Array, nonce: string, expiresAt: number): boolean {
    return this.insertNonce.run(Buffer.from(publicKey), nonce, expiresAt).changes === 1
  }

  /** Forget nonces whose requests the timestamp window refuses anyway. */
  forgetNoncesBefore (now: number): number { return this.pruneNonces.run(now).changes }

  transaction<T> (fn: () => T): T { return this.db.transaction(fn).immediate() }
}

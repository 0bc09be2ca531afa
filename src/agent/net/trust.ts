/** A member certificate that passed every check for one of our pools. */
export interface CertifiedPeer {
  readonly poolId: string
  readonly nodeId: string
  readonly name: string
  readonly serial: string
  readonly notAfter: number
  /** the certificate exactly as received, to pass on */
  readonly bytes: Uint8Array
}

/**
 * What the pool network needs from the pool library: our certificates, and verdicts on what
 * peers send. The agent builds it from MESH_HOME's pool records (see pool-trust.ts).
 */
export interface PoolTrustStore {
  /** Pools in which this device holds a certificate: the pools whose rings it is in. */
  memberPools (): readonly CertifiedPeer[]
  /** The local label of a pool (its record's name), for status output. */
  poolName (poolId: string): string
  /** Verify certificate bytes against the pool they name; throws a MeshError saying why not. */
  verifyCertificate (bytes: Uint8Array, now: number): CertifiedPeer
  /** The newest revocation list held for each pool, as signed by the pool root. */
  revocationLists (): readonly Uint8Array[]
  /**
   * A revocation list from a peer: verified and kept if newer. Returns the pool id when it
   * replaced the held list, undefined when it was not newer; throws a MeshError if invalid.
   */
  acceptRevocationList (bytes: Uint8Array): string | undefined
}

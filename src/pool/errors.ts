/**
 * Every error the pool library throws, one class per distinct failure, so callers match on the class
 * (tests: `toBeInstanceOf`) and the agent counts drops by `reason` without parsing messages.
 *
 * Exports: PoolError, NotInitializedError, AlreadyInitializedError, InvalidInputError, PoolIdMismatchError,
 * UnknownPoolError, AmbiguousPoolIdError, PoolExistsError, NotPoolAdminError, UnknownNodeError,
 * VerifyReason, VerifyError (+ MalformedError, WrongPoolError, UnknownIssuerError, RevokedError,
 * NotYetValidError, ExpiredError, BadSignatureError, WrongNodeError), StaleRevocationError.
 */
import { MeshError, UsageError } from '../errors.js'

/** Base of the pool library's errors. */
export class PoolError extends MeshError {}

/** MESH_HOME has no device identity yet. */
export class NotInitializedError extends PoolError {
  constructor (readonly home: string) {
    super(`${home} has no device identity; run \`mesh init --network-id ID --name NAME\` first`)
  }
}

/** `init` on a home that already has an identity. */
export class AlreadyInitializedError extends PoolError {}

/** A value given by the user (flag, argument) is malformed: exit code 2 like any usage error. */
export class InvalidInputError extends UsageError {}

/** The Pool ID given does not belong to the root public key given. */
export class PoolIdMismatchError extends UsageError {
  constructor (given: string, derived: string) {
    super(`Pool ID ${given} does not match the pool root public key (which gives ${derived}); copy both from the admin's \`mesh pool-create\` output`)
  }
}

/** No pool on disk matches the Pool ID (or prefix) given. */
export class UnknownPoolError extends PoolError {
  constructor (given: string) {
    super(`no pool ${given} on this device; see \`mesh pool-list\``)
  }
}

/** A Pool ID prefix matches more than one pool. */
export class AmbiguousPoolIdError extends UsageError {}

/** pool-join or pool-create on a pool this device already has. */
export class PoolExistsError extends PoolError {}

/** An admin-only operation on a pool this device only belongs to. */
export class NotPoolAdminError extends PoolError {}

/** A node id that is not pending / not known for the pool. */
export class UnknownNodeError extends PoolError {}

/**
 * Why a signed object (certificate, revocation list, certificate request) was not accepted.
 * Closed list: the agent counts drops per reason.
 */
export type VerifyReason =
  | 'malformed' | 'wrong-pool' | 'unknown-issuer' | 'revoked'
  | 'not-yet-valid' | 'expired' | 'bad-signature' | 'wrong-node' | 'stale-sequence'

/** Base of every verification failure; `reason` is the counter key. */
export abstract class VerifyError extends PoolError {
  abstract readonly reason: VerifyReason
}

/** Bytes that are not a well-formed encoding (size, layout, field values). */
export class MalformedError extends VerifyError {
  readonly reason = 'malformed'
  constructor (what: string, problem: string) { super(`malformed ${what}: ${problem}`) }
}

/** Signed for another pool. */
export class WrongPoolError extends VerifyError {
  readonly reason = 'wrong-pool'
  constructor (what: string, readonly poolId: string, expected: string) {
    super(`${what} is for pool ${poolId.slice(0, 16)}…, not ${expected.slice(0, 16)}…`)
  }
}

/** Names an issuer key other than the pool root. */
export class UnknownIssuerError extends VerifyError {
  readonly reason = 'unknown-issuer'
  constructor (what: string, readonly issuerKeyId: string) {
    super(`${what} was issued by key ${issuerKeyId}, not by this pool's root key`)
  }
}

/** The certificate's serial or node is on the pool's revocation list. */
export class RevokedError extends VerifyError {
  readonly reason = 'revoked'
  constructor (readonly serial: string, readonly nodeId: string) {
    super(`certificate ${serial} of node ${nodeId} has been revoked`)
  }
}

/** now < notBefore */
export class NotYetValidError extends VerifyError {
  readonly reason = 'not-yet-valid'
  constructor (readonly notBefore: number) {
    super(`certificate is not valid before ${new Date(notBefore).toISOString()}; check this device's clock`)
  }
}

/** now >= notAfter */
export class ExpiredError extends VerifyError {
  readonly reason = 'expired'
  constructor (readonly notAfter: number) {
    super(`certificate expired at ${new Date(notAfter).toISOString()}; the member must renew it`)
  }
}

/** The ed25519 signature does not verify over the received bytes. */
export class BadSignatureError extends VerifyError {
  readonly reason = 'bad-signature'
  constructor (what: string) { super(`${what} has a bad signature (tampered, or signed by another key)`) }
}

/** A certificate for a different device than the one expected. */
export class WrongNodeError extends VerifyError {
  readonly reason = 'wrong-node'
  constructor (readonly nodeId: string, expected: string) {
    super(`certificate is for node ${nodeId}, not ${expected}`)
  }
}

/** A revocation list older than the one held: accepting it would un-revoke members. */
export class StaleRevocationError extends VerifyError {
  readonly reason = 'stale-sequence'
  constructor (readonly sequence: number, readonly held: number) {
    super(`revocation list sequence ${sequence} is older than the held sequence ${held}; refused`)
  }
}

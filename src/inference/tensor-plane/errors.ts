import { MeshError } from '../../errors.js'

/** A tensor-plane peer that could not be reached, failed the handshake, or closed the connection. */
export class TensorLinkError extends MeshError {}

/** An all-reduce step whose partials did not all arrive in time (a member died or stalled). */
export class AllReduceTimeoutError extends MeshError {}

/** A link that has sent so many frames that its nonce counter would wrap; it must be re-keyed. */
export class NonceExhaustedError extends MeshError {}

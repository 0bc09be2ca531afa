import { MeshError } from '../../errors.js'
import type { Refusal } from './messages.js'

/** The pool has no ring this node can run a job on yet (not converged, or this node not in it). */
export class RingNotReadyError extends MeshError {}

/** A member could not be reached for a job, or its control stream ended mid-job. */
export class MemberLostError extends MeshError {
  constructor (readonly nodeId: string, message: string) { super(message) }
}

/** A member answered a job-open with a refusal. */
export class MemberRefusedError extends MeshError {
  constructor (readonly nodeId: string, readonly reason: Refusal, message: string) {
    super(`member ${nodeId} refused the job (${reason}): ${message}`)
  }
}

/** The job kept failing over past its deadline, or no member that can run it is left. */
export class JobFailedError extends MeshError {}

/**
 * The one error of `mesh remote`: a step failed. Its message is the one line the issue asks for:
 * the step, the cause and the fix.
 *
 * Exports: RemoteStepError.
 */
import { MeshError } from '../../errors.js'
import type { StepState } from './steps.js'

export class RemoteStepError extends MeshError {
  constructor (readonly step: StepState, readonly cause_: string, readonly fix: string) {
    super(`${step}: ${cause_}; fix: ${fix}`)
  }
}

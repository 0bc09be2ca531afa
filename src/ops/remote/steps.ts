/**
 * The provisioning sequence as plain data: its steps in order, each with the seed's deadline, and
 * the pure transition from one step's outcome to the next state. provision.ts runs it.
 *
 * Exports: STEP_STATES, StepState, EndState, ProvisionState, STEP_TIMEOUT_MS, SSH_COMMAND_TIMEOUT_MS,
 * StepStatus, StepRecord, nextState, isEnd.
 */
import type { RemoteOs } from './os.js'

export const STEP_STATES = ['SSH_TESTING', 'OS_DETECTING', 'KEY_GENERATING', 'INSTALLING', 'CONNECTING', 'VERIFYING'] as const
export type StepState = typeof STEP_STATES[number]
export type EndState = 'SUCCESS' | 'EXIT_ERROR' | 'MANUAL_NEEDED'
export type ProvisionState = StepState | EndState

/** any single ssh command: the seed's 120 s */
export const SSH_COMMAND_TIMEOUT_MS = 120_000

/**
 * Each step's deadline (the seed's): connectivity 10 s, OS detection 15 s, install 180 s, connect
 * 60 s. Generating a key asks the box whether it is a member already: one ssh command. Verifying
 * waits for the ring, as connecting waits for the certificate.
 */
export const STEP_TIMEOUT_MS: Readonly<Record<StepState, number>> = {
  SSH_TESTING: 10_000,
  OS_DETECTING: 15_000,
  KEY_GENERATING: SSH_COMMAND_TIMEOUT_MS,
  INSTALLING: 180_000,
  CONNECTING: 60_000,
  VERIFYING: 60_000
}

/** done: did what it had to; changed: and changed the box or the pool; skipped: nothing to do */
export type StepStatus = 'done' | 'changed' | 'skipped' | 'failed' | 'manual'

export interface StepRecord {
  readonly state: StepState
  readonly status: StepStatus
  /** one line: what happened, or for a failure the cause and the fix */
  readonly detail: string
  readonly ms: number
}

export function isEnd (s: ProvisionState): s is EndState { return s === 'SUCCESS' || s === 'EXIT_ERROR' || s === 'MANUAL_NEEDED' }

/**
 * The state after `state` ended with `status` on a box running `os` (unknown before detection).
 * Windows stops after the key: the join script is written for a person to run (MANUAL_NEEDED).
 */
export function nextState (state: StepState, status: StepStatus, os: RemoteOs | undefined): ProvisionState {
  if (status === 'failed') return 'EXIT_ERROR'
  if (status === 'manual') return 'MANUAL_NEEDED'
  if (state === 'OS_DETECTING' && (os === undefined || os === 'unknown')) return 'EXIT_ERROR'
  if (state === 'KEY_GENERATING' && os === 'windows') return 'MANUAL_NEEDED'
  const i = STEP_STATES.indexOf(state)
  return STEP_STATES[i + 1] ?? 'SUCCESS'
}

import { MeshError } from '../errors.js'
import { readPoolRecord, shortPoolId } from '../pool/index.js'
import { runningAgent } from './daemon.js'

/** `pool-join --wait`: no certificate arrived in time (the agent keeps asking). */
export class CertificateWaitTimeoutError extends MeshError {
  constructor (poolId: string, seconds: number) {
    super(`no certificate for pool ${shortPoolId(poolId)} within ${seconds} s; check that the admin's agent runs on this LAN ` +
      '(`mesh start` there) and that the join token is right (the admin\'s log says why it refused). ' +
      'This agent keeps asking: see `mesh pool-status`')
  }
}

/** `pool-join --wait` without a running agent: nothing would ask for the certificate. */
export class NoAgentToWaitError extends MeshError {
  constructor (poolId: string) {
    super(`pool ${shortPoolId(poolId)} is recorded, but no agent is running to ask for its certificate; ` +
      'run `mesh start` (it asks at once), then check with `mesh pool-status`')
  }
}

const POLL_MS = 100

/**
 * Wait until this device holds a certificate for `poolId` (the running agent installs it in the pool
 * store). Throws NoAgentToWaitError when no agent runs, CertificateWaitTimeoutError after `seconds`.
 */
export async function waitForCertificate (home: string, poolId: string, seconds: number): Promise<void> {
  if (await runningAgent(home) === undefined) throw new NoAgentToWaitError(poolId)
  const deadline = Date.now() + seconds * 1000
  for (;;) {
    if (readPoolRecord(home, poolId).state === 'member') return
    if (Date.now() >= deadline) throw new CertificateWaitTimeoutError(poolId, seconds)
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

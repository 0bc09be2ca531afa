import { MeshError } from '../errors.js'
import { readPoolRecord, shortPoolId } from '../pool/index.js'

/** `pool-join --wait`: no certificate arrived in time (the agent keeps asking). */
export class CertificateWaitTimeoutError extends MeshError {
  constructor (poolId: string, seconds: number) {
    super(`no certificate for pool ${shortPoolId(poolId)} within ${seconds} s; check that the admin's agent runs on this LAN ` +
      '(`mesh start` there) and that the join token is right (the admin\'s log says why it refused). ' +
      'This agent keeps asking: see `mesh pool-status`')
  }
}

const POLL_MS = 100

/**
 * Wait until this device holds a certificate for `poolId` (the running agent installs it in the pool
 * store); CertificateWaitTimeoutError after `seconds`. The caller checks first that an agent runs.
 */
export async function waitForCertificate (home: string, poolId: string, seconds: number): Promise<void> {
  const deadline = Date.now() + seconds * 1000
  for (;;) {
    if (readPoolRecord(home, poolId).state === 'member') return
    if (Date.now() >= deadline) throw new CertificateWaitTimeoutError(poolId, seconds)
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

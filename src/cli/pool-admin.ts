/** `mesh pool-approve`, `pool-reject`, `pool-policy`, `pool-revoke`: what the admin device decides. */
import type { Argv } from 'yargs'
import { UsageError } from '../errors.js'
import { approvePending, rejectPending, revokeNode, setPoolPolicy } from '../pool/admin.js'
import { publicKeyFromNodeId } from '../pool/identity.js'
import { parsePolicy } from '../pool/policy.js'
import { shortPoolId } from '../pool/pool-id.js'
import { handler, optionalString, requiredString } from './args.js'
import type { MeshCommand } from './commands.js'
import type { GlobalArgs } from '../process/io.js'
import { warnIfOpen } from './pool.js'

type NodeArgs = { node?: unknown, poolId?: unknown }

/** What a NODE command prints: its --json object and its line of text. */
interface NodeOutcome { json: Record<string, unknown>, text: string }

/**
 * A command on one node of a pool this device administers: `mesh <name> NODE [--pool-id ID]`.
 * NODE and --pool-id are checked for form before anything is read.
 */
function nodeCommand (name: string, describe: string, run: (home: string, node: string, poolId: string | undefined) => NodeOutcome): MeshCommand {
  return (io) => ({
    command: `${name} [node]`,
    describe,
    builder: (y: Argv<GlobalArgs>) => y
      .positional('node', { type: 'string', describe: 'node id (12D3KooW…), as shown by mesh pool-status' })
      .option('pool-id', { type: 'string', describe: 'the pool (needed only if NODE is in several of your pools)' }),
    handler: handler<NodeArgs>((args) => {
      if (args.node === undefined || args.node === '') throw new UsageError('missing NODE, the node id (12D3KooW…) shown by `mesh pool-status`; see --help')
      const node = String(args.node)
      publicKeyFromNodeId(node)
      const outcome = run(args.home, node, optionalString(args.poolId, 'pool-id'))
      io.out(args.json ? JSON.stringify(outcome.json) : outcome.text)
    })
  })
}

export const poolApproveCommand = nodeCommand('pool-approve', 'sign a pending join request (pools with the manual policy)', (home, node, poolId) => {
  const cert = approvePending(home, node, poolId, Date.now())
  const notAfter = new Date(cert.notAfter).toISOString()
  return {
    json: { poolId: cert.poolId, nodeId: cert.nodeId, name: cert.name, serial: cert.serial, notAfter },
    text: `Approved ${cert.nodeId} "${cert.name}" in pool ${shortPoolId(cert.poolId)}: certificate ${cert.serial}, valid until ${notAfter}. The agent hands it over when the device asks again.`
  }
})

export const poolRejectCommand = nodeCommand('pool-reject', 'drop a pending join request; later requests from that node are refused', (home, node, poolId) => {
  const record = rejectPending(home, node, poolId)
  return {
    json: { poolId: record.poolId, nodeId: node, rejected: true },
    text: `Rejected ${node} in pool ${shortPoolId(record.poolId)}; its requests will be refused.`
  }
})

export const poolRevokeCommand = nodeCommand('pool-revoke', 'revoke a member: issue a new root-signed revocation list naming it', (home, node, poolId) => {
  const list = revokeNode(home, node, poolId, Date.now())
  return {
    json: { poolId: list.poolId, nodeId: node, sequence: list.sequence, revokedSerials: list.serials, revokedNodeIds: list.nodeIds },
    text: `Revoked ${node} in pool ${shortPoolId(list.poolId)}: revocation list sequence ${list.sequence}. The agent spreads it to the members.`
  }
})

export const poolPolicyCommand: MeshCommand = (io) => ({
  command: 'pool-policy',
  describe: 'change how join requests are signed in a pool you administer',
  builder: (y: Argv<GlobalArgs>) => y
    .option('pool-id', { type: 'string', describe: 'the pool (Pool ID or a prefix of at least 16 hex digits)' })
    .option('policy', { type: 'string', describe: 'token (must know the join token), manual (mesh pool-approve), open (anyone; demos only)' }),
  handler: handler<{ poolId?: unknown, policy?: unknown }>((args) => {
    const poolId = requiredString(args.poolId, 'pool-id')
    const policy = parsePolicy(requiredString(args.policy, 'policy'))
    const record = setPoolPolicy(args.home, poolId, policy)
    warnIfOpen(policy, io)
    io.out(args.json
      ? JSON.stringify({ poolId: record.poolId, policy: record.policy })
      : `Pool ${shortPoolId(record.poolId)} now signs join requests by the ${record.policy} policy.`)
  })
})

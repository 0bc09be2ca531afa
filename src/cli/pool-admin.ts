/** `mesh pool-approve`, `pool-reject`, `pool-policy`, `pool-revoke`: what the admin device decides. */
import type { Argv } from 'yargs'
import { approvePending, rejectPending, revokeNode, setPoolPolicy } from '../pool/admin.js'
import { publicKeyFromNodeId } from '../pool/identity.js'
import { parsePolicy } from '../pool/policy.js'
import { shortPoolId } from '../pool/pool-id.js'
import { UsageError } from '../errors.js'
import { handler, optionalString, requiredString } from './args.js'
import type { MeshCommand } from './commands.js'
import type { GlobalArgs } from './io.js'
import { warnIfOpen } from './pool.js'

type NodeArgs = { node?: unknown, poolId?: unknown }

const nodeBuilder = (y: Argv<GlobalArgs>): Argv<GlobalArgs> => y
  .positional('node', { type: 'string', describe: 'node id (12D3KooW…), as shown by mesh pool-status' })
  .option('pool-id', { type: 'string', describe: 'the pool (needed only if NODE is in several of your pools)' })

/** NODE and --pool-id, checked for form before anything is read. */
function nodeArgs (args: NodeArgs): { node: string, poolId: string | undefined } {
  if (args.node === undefined || args.node === '') throw new UsageError('missing NODE, the node id (12D3KooW…) shown by `mesh pool-status`; see --help')
  const node = String(args.node)
  publicKeyFromNodeId(node)
  return { node, poolId: optionalString(args.poolId, 'pool-id') }
}

export const poolApproveCommand: MeshCommand = (io) => ({
  command: 'pool-approve [node]',
  describe: "sign a pending join request (pools with the manual policy)",
  builder: nodeBuilder,
  handler: handler<NodeArgs>((args) => {
    const { node, poolId } = nodeArgs(args)
    const cert = approvePending(args.home, node, poolId, Date.now())
    const notAfter = new Date(cert.notAfter).toISOString()
    io.out(args.json
      ? JSON.stringify({ poolId: cert.poolId, nodeId: cert.nodeId, name: cert.name, serial: cert.serial, notAfter })
      : `Approved ${cert.nodeId} "${cert.name}" in pool ${shortPoolId(cert.poolId)}: certificate ${cert.serial}, valid until ${notAfter}. The agent hands it over when the device asks again.`)
  })
})

export const poolRejectCommand: MeshCommand = (io) => ({
  command: 'pool-reject [node]',
  describe: 'drop a pending join request; later requests from that node are refused',
  builder: nodeBuilder,
  handler: handler<NodeArgs>((args) => {
    const { node, poolId } = nodeArgs(args)
    const record = rejectPending(args.home, node, poolId)
    io.out(args.json
      ? JSON.stringify({ poolId: record.poolId, nodeId: node, rejected: true })
      : `Rejected ${node} in pool ${shortPoolId(record.poolId)}; its requests will be refused.`)
  })
})

export const poolRevokeCommand: MeshCommand = (io) => ({
  command: 'pool-revoke [node]',
  describe: "revoke a member: issue a new root-signed revocation list naming it",
  builder: nodeBuilder,
  handler: handler<NodeArgs>((args) => {
    const { node, poolId } = nodeArgs(args)
    const list = revokeNode(args.home, node, poolId, Date.now())
    io.out(args.json
      ? JSON.stringify({ poolId: list.poolId, nodeId: node, sequence: list.sequence, revokedSerials: list.serials, revokedNodeIds: list.nodeIds })
      : `Revoked ${node} in pool ${shortPoolId(list.poolId)}: revocation list sequence ${list.sequence}. The agent spreads it to the members.`)
  })
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

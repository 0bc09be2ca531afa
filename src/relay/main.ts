#!/usr/bin/env node
/**
 * mesh-relay: a circuit relay for pool members that cannot reach each other directly.
 * Serves the pools named by --pool-root-pubkey and those recorded in --home (re-read every few
 * seconds, so a pool created after the relay started is served too). Prints its PeerId and
 * addresses; logs to MESH_HOME/logs/relay.log; stops on SIGINT/SIGTERM.
 */
import '../polyfill.js'
import path from 'node:path'
import pino from 'pino'
import { hideBin } from 'yargs/helpers'
import { MeshError, UsageError } from '../errors.js'
import { daemonArgs } from '../process/daemon-args.js'
import { processIO, type CliIO } from '../process/io.js'
import { reportError } from '../process/report-error.js'
import { derivePoolId, listPoolRecords, parseRootPublicKey, poolTrust, type PoolTrust } from '../pool/index.js'
import { StunResponder } from '../nat/stun-server.js'
import { loadOrCreateRelayKey } from './identity.js'
import { defaultRelayLimits, startRelay } from './relay.js'

const NAME = 'mesh-relay'
const POOL_RELOAD_MS = 5000

/** libp2p could not listen (port taken, address not on this host). */
export class RelayListenError extends MeshError {}

function positiveOrZero (value: number, flag: string): number {
  if (!Number.isFinite(value) || value < 0) throw new UsageError(`${flag} must be a number ≥ 0 (got ${value})`)
  return value
}

async function main (argv: string[], io: CliIO): Promise<void> {
  const limits = defaultRelayLimits()
  const args = await daemonArgs(argv, NAME,
    'Circuit relay (libp2p v2) for mesh pool members that cannot reach each other directly.\nOnly peers that show a valid certificate of a served pool may reserve a slot or be reached.',
    'relay key, pools, logs', 'the PeerId and addresses')
    .option('port', { type: 'number', default: 4001, describe: 'TCP port to listen on' })
    .option('host', { type: 'string', default: '0.0.0.0', describe: 'address to listen on' })
    .option('pool-root-pubkey', { type: 'string', array: true, default: [] as string[], describe: 'serve this pool (repeatable); pools recorded in --home are served too' })
    .option('max-duration', { type: 'number', default: limits.durationMs / 1000, describe: 'seconds one relayed connection may last (0: no cap)' })
    .option('max-data', { type: 'number', default: limits.dataBytes / (1024 * 1024), describe: 'MiB one relayed connection may carry (0: no cap)' })
    .option('max-reservations', { type: 'number', default: limits.maxReservations, describe: 'peers holding a reservation at once' })
    .option('stun-port', { type: 'number', array: true, default: [3478, 3479], describe: 'UDP ports answering STUN Binding requests, so members learn their NAT type (repeatable; two ports show whether a NAT maps per destination; 0: no STUN)' })
    .parseAsync()
  if (args.help === true) return
  if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) throw new UsageError(`--port must be a port number 0-65535 (got ${args.port})`)
  const maxReservations = positiveOrZero(args['max-reservations'], '--max-reservations')
  if (!Number.isInteger(maxReservations) || maxReservations < 1) throw new UsageError(`--max-reservations must be a whole number ≥ 1 (got ${maxReservations})`)
  const stunPorts = args['stun-port'].filter((p) => p !== 0)
  for (const p of stunPorts) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new UsageError(`--stun-port must be a port number 1-65535, or 0 for none (got ${p})`)
  if (new Set(stunPorts).size !== stunPorts.length) throw new UsageError(`--stun-port names a port twice (${stunPorts.join(', ')})`)
  const home = path.resolve(args.home)
  const explicit: PoolTrust[] = args['pool-root-pubkey'].map((k) => { const key = parseRootPublicKey(k); return { poolId: derivePoolId(key), rootPublicKey: key } })

  const log = pino({ level: args['log-level'], base: { service: NAME } }, pino.destination({ dest: path.join(home, 'logs', 'relay.log'), mkdir: true }))
  // pools of --home, re-read so a pool created or a list of revocations updated later is followed
  let recorded: PoolTrust[] = []
  const reload = (): void => {
    try {
      recorded = listPoolRecords(home).map(poolTrust)
    } catch (err) {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not read the pool records; keeping the previous ones')
    }
  }
  reload()
  const trust = (): PoolTrust[] => [...explicit, ...recorded.filter((r) => !explicit.some((e) => e.poolId === r.poolId))]

  const privateKey = await loadOrCreateRelayKey(home)
  const relay = await startRelay({
    privateKey,
    listen: [`/ip4/${args.host}/tcp/${args.port}`],
    limits: { durationMs: positiveOrZero(args['max-duration'], '--max-duration') * 1000, dataBytes: Math.round(positiveOrZero(args['max-data'], '--max-data') * 1024 * 1024), maxReservations },
    trust,
    log
  }).catch((err: unknown) => {
    // libp2p's message spans lines with a stack: keep the one line a user needs
    const message = err instanceof Error ? err.message : String(err)
    if (message.includes('EADDRINUSE')) throw new RelayListenError(`port ${args.port} on ${args.host} is already in use; stop what uses it or pick another --port`)
    const cause = message.split('\n').map((l) => l.trim()).filter((l) => l !== '').slice(-1)[0] ?? 'unknown error'
    throw new RelayListenError(`cannot listen on ${args.host}:${args.port} (${cause}); check --host and --port`)
  })
  const stun = new StunResponder({ host: args.host, ports: stunPorts })
  await stun.start().catch(async (err: unknown) => {
    await relay.stop()
    const code = (err as NodeJS.ErrnoException).code
    throw new RelayListenError(code === 'EADDRINUSE'
      ? `UDP port ${stunPorts.join(' or ')} on ${args.host} is already in use for STUN; pick other --stun-port values (0: none)`
      : `cannot listen for STUN on UDP ${args.host}:${stunPorts.join(',')} (${err instanceof Error ? err.message : String(err)})`)
  })
  const timer = setInterval(reload, POOL_RELOAD_MS)
  timer.unref()

  const peerId = relay.node.peerId.toString()
  const addresses = relay.node.getMultiaddrs().map((a) => a.toString())
  const pools = trust().map((t) => t.poolId)
  const stunInfo = { host: args.host, ports: stun.ports() }
  log.info({ peerId, addresses, pools, stun: stunInfo }, 'relay listening')
  io.out(args.json
    ? JSON.stringify({ peerId, addresses, pools, home, stun: stunInfo })
    : `${NAME} ${peerId} listening on ${addresses.join(' ')}${stunInfo.ports.length > 0 ? `; STUN on UDP ${stunInfo.ports.join(', ')}` : ''}`)
  if (pools.length === 0) io.err(`${NAME}: serving no pool yet; pass --pool-root-pubkey KEY or create or join a pool in ${home}`)

  const stop = (signal: string): void => {
    log.info({ signal, drops: Object.fromEntries(relay.admission.drops), joins: relay.admission.joins, stun: stun.stats() }, 'stopping')
    clearInterval(timer)
    stun.stop()
    relay.stop().finally(() => { log.flush() })
  }
  process.once('SIGINT', () => stop('SIGINT'))
  process.once('SIGTERM', () => stop('SIGTERM'))
}

main(hideBin(process.argv), processIO).catch((err: unknown) => {
  process.exitCode = reportError(err, processIO, NAME)
})

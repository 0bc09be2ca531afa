#!/usr/bin/env node
/**
 * mesh-control-plane: the HTTP fallback for ring join and job distribution (see server.ts).
 * Prints the URL it bound (one line, or JSON with --json), logs to MESH_HOME/logs/control-plane.log,
 * and stops cleanly on SIGINT/SIGTERM.
 */
import '../polyfill.js'
import path from 'node:path'
import pino from 'pino'
import { hideBin } from 'yargs/helpers'
import { UsageError } from '../errors.js'
import { daemonArgs } from '../process/daemon-args.js'
import { processIO, type CliIO } from '../process/io.js'
import { reportError } from '../process/report-error.js'
import { derivePoolId, parseRootPublicKey } from '../pool/index.js'
import { dbFile, openDatabase } from './db.js'
import { DEFAULT_PORT, PORT_SPAN, listenWithFallback } from './listen.js'
import { buildControlPlane, defaultConfig } from './server.js'

const NAME = 'mesh-control-plane'

function servedPools (keys: readonly string[]): Map<string, Uint8Array> | undefined {
  if (keys.length === 0) return undefined
  return new Map(keys.map((k) => { const key = parseRootPublicKey(k); return [derivePoolId(key), key] }))
}

function portFlag (value: number | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new UsageError(`${flag} must be a port number 0-65535, 0 for any free port (got ${value})`)
  return value
}

async function main (argv: string[], io: CliIO): Promise<void> {
  const args = await daemonArgs(argv, NAME,
    'HTTP fallback for mesh pools: ring join for members that cannot use gossip, and a job queue.\nDevices sign every request with their key and pool certificate; no pool root private key is needed.',
    'database and logs', 'the bound address')
    .option('port', { type: 'number', describe: `listen on this port only, 0 for any free one (default: first free of ${DEFAULT_PORT}-${DEFAULT_PORT + PORT_SPAN - 1})` })
    .option('port-base', { type: 'number', default: DEFAULT_PORT, describe: `first port tried when --port is not given (tries ${PORT_SPAN})` })
    .option('host', { type: 'string', default: '0.0.0.0', describe: 'address to listen on' })
    .option('pool-root-pubkey', { type: 'string', array: true, default: [] as string[], describe: 'serve only this pool (repeatable); default: any pool whose members register it' })
    .parseAsync()
  if (args.help === true) return
  const port = portFlag(args.port, '--port')
  const base = portFlag(args['port-base'], '--port-base') ?? DEFAULT_PORT
  const home = path.resolve(args.home)
  const config = { ...defaultConfig(), servedPools: servedPools(args['pool-root-pubkey']) }

  const logFile = path.join(home, 'logs', 'control-plane.log')
  const log = pino({ level: args['log-level'], base: { service: NAME } }, pino.destination({ dest: logFile, mkdir: true }))
  const db = openDatabase(home)
  const cp = buildControlPlane(db, log, config)
  let bound: number
  try {
    bound = await listenWithFallback(cp.app, { host: args.host, port, base })
  } catch (err) {
    await cp.close()
    db.close()
    throw err
  }
  const url = `http://${args.host}:${bound}`
  log.info({ url, db: dbFile(home) }, 'listening')
  io.out(args.json
    ? JSON.stringify({ url, host: args.host, port: bound, home, db: dbFile(home), log: logFile })
    : `${NAME} listening on ${url} (store ${dbFile(home)}, log ${logFile})`)

  const stop = (signal: string): void => {
    log.info({ signal }, 'stopping')
    cp.close().finally(() => { db.close(); log.flush() })
  }
  process.once('SIGINT', () => stop('SIGINT'))
  process.once('SIGTERM', () => stop('SIGTERM'))
}

main(hideBin(process.argv), processIO).catch((err: unknown) => {
  process.exitCode = reportError(err, processIO, NAME)
})

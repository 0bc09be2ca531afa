/**
 * The device identity: one ed25519 key (keys/device.key, 0600) and config.json. The node id is the
 * libp2p PeerId of the same key, so certificates, beacons and libp2p connections name a device alike.
 *
 * Exports: Device, DeviceConfig, InitOptions, initDevice, loadDevice, libp2pPrivateKey,
 * nodeIdFromPublicKey, publicKeyFromNodeId, parseNetworkId, parseName, describeZod.
 */
import fs from 'node:fs'
import { privateKeyFromRaw, publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { z } from 'zod'
import { CorruptFileError, readJsonFile, writeJsonAtomic } from '../atomic-file.js'
import { concatBytes, validateName } from './encoding.js'
import { AlreadyInitializedError, InvalidInputError, NotInitializedError } from './errors.js'
import { newSeed, publicKeyOf, readKeyFile, writeKeyFile } from './keys.js'
import { configFile, deviceKeyFile, listPoolIds, poolsDir } from './paths.js'

export interface Device {
  /** libp2p PeerId string (12D3KooW…) of the device key */
  readonly nodeId: string
  /** raw ed25519 public key, 32 bytes */
  readonly publicKey: Uint8Array
  /** ed25519 private seed, 32 bytes */
  readonly privateKey: Uint8Array
  readonly name: string
  readonly networkId: string
}

const DeviceConfig = z.object({
  version: z.literal(1),
  networkId: z.string(),
  name: z.string(),
  nodeId: z.string(),
  createdAt: z.string()
}).strict()
export type DeviceConfig = z.infer<typeof DeviceConfig>

export interface InitOptions { networkId: string, name: string, force?: boolean }

/** A network id: what devices on one LAN agree to share (letters, digits, . _ -; up to 64). */
export function parseNetworkId (text: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(text)) {
    throw new InvalidInputError(`network id must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (got ${JSON.stringify(text.slice(0, 80))})`)
  }
  return text
}

/** A device or pool name: 1-64 UTF-8 bytes, no control characters, no surrounding spaces. */
export function parseName (text: string, what = 'name'): string {
  const problem = validateName(text)
  if (problem !== undefined) throw new InvalidInputError(`${what} ${problem} (got ${JSON.stringify(text.slice(0, 80))})`)
  return text
}

export function nodeIdFromPublicKey (publicKey: Uint8Array): string {
  return peerIdFromPublicKey(publicKeyFromRaw(publicKey)).toString()
}

/** The ed25519 public key inside a node id; InvalidInputError if it is not an ed25519 PeerId. */
export function publicKeyFromNodeId (nodeId: string): Uint8Array {
  let pub: Uint8Array | undefined
  try {
    const peer = peerIdFromString(nodeId)
    if (peer.type === 'Ed25519') pub = peer.publicKey.raw
  } catch { /* reported below */ }
  if (pub === undefined) throw new InvalidInputError(`${JSON.stringify(nodeId.slice(0, 80))} is not a node id (expected 12D3KooW…, as shown by \`mesh init\` or \`mesh pool-status\`)`)
  return pub
}

/** The device key as a libp2p key: `createLibp2p({ privateKey })` then presents `device.nodeId`. */
export function libp2pPrivateKey (device: Device): PrivateKey {
  return privateKeyFromRaw(concatBytes(device.privateKey, device.publicKey))
}

/**
 * Create the device key and config. An existing identity is kept unless `force`; even with `force`,
 * a key that pools depend on is never replaced (their certificates name this key).
 */
export function initDevice (home: string, opts: InitOptions): Device {
  const networkId = parseNetworkId(opts.networkId)
  const name = parseName(opts.name, 'device name')
  const exists = fs.existsSync(configFile(home)) || fs.existsSync(deviceKeyFile(home))
  if (exists && opts.force !== true) {
    throw new AlreadyInitializedError(`${home} already has a device identity; use --force to replace it`)
  }
  if (exists) {
    const pools = listPoolIds(home)
    if (pools.length > 0) {
      throw new AlreadyInitializedError(`refusing to replace the device key: pools ${pools.map(p => p.slice(0, 16)).join(', ')} depend on it; remove them from ${poolsDir(home)} first`)
    }
  }
  const seed = newSeed()
  const publicKey = publicKeyOf(seed)
  const nodeId = nodeIdFromPublicKey(publicKey)
  writeKeyFile(deviceKeyFile(home), seed)
  const config: DeviceConfig = { version: 1, networkId, name, nodeId, createdAt: new Date().toISOString() }
  writeJsonAtomic(configFile(home), config)
  return { nodeId, publicKey, privateKey: seed, name, networkId }
}

/** The device identity of `home`; NotInitializedError before `init`, CorruptFileError if files disagree. */
export function loadDevice (home: string): Device {
  const cfgFile = configFile(home)
  const raw = readJsonFile(cfgFile)
  const seed = readKeyFile(deviceKeyFile(home))
  if (raw === undefined && seed === undefined) throw new NotInitializedError(home)
  if (raw === undefined) throw new CorruptFileError(cfgFile, 'it is missing but the device key exists')
  if (seed === undefined) throw new CorruptFileError(deviceKeyFile(home), 'it is missing but config.json exists')
  const parsed = DeviceConfig.safeParse(raw)
  if (!parsed.success) throw new CorruptFileError(cfgFile, describeZod(parsed.error))
  const cfg = parsed.data
  if (validateName(cfg.name) !== undefined) throw new CorruptFileError(cfgFile, 'name is not a valid device name')
  const publicKey = publicKeyOf(seed)
  const nodeId = nodeIdFromPublicKey(publicKey)
  if (nodeId !== cfg.nodeId) throw new CorruptFileError(cfgFile, `nodeId does not match ${deviceKeyFile(home)}`)
  return { nodeId, publicKey, privateKey: seed, name: cfg.name, networkId: cfg.networkId }
}

/** First zod issue as "field: message", for CorruptFileError. */
export function describeZod (err: z.ZodError): string {
  const issue = err.issues[0]
  if (issue === undefined) return 'invalid content'
  const where = issue.path.length > 0 ? issue.path.join('.') : 'top level'
  return `${where}: ${issue.message}`
}

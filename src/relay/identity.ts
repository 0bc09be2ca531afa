/**
 * The relay's own libp2p identity, kept in MESH_HOME/keys/relay.key (0600) so its PeerId, and the
 * relay addresses members were given, survive restarts. It is not the device key: an agent may run
 * beside the relay with the same MESH_HOME, and two nodes must not share one PeerId.
 *
 * Exports: relayKeyFile, loadOrCreateRelayKey.
 */
import path from 'node:path'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { keysDir, newSeed, readKeyFile, writeKeyFile } from '../pool/index.js'

export function relayKeyFile (home: string): string { return path.join(keysDir(home), 'relay.key') }

export async function loadOrCreateRelayKey (home: string): Promise<PrivateKey> {
  const file = relayKeyFile(home)
  let seed = readKeyFile(file)
  if (seed === undefined) {
    seed = newSeed()
    writeKeyFile(file, seed)
  }
  return await generateKeyPairFromSeed('Ed25519', seed)
}

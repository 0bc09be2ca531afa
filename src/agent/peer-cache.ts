import { z } from 'zod'
import { CorruptFileError, readJsonFile, writeJsonAtomic } from '../atomic-file.js'
import { peerCacheFile } from './paths.js'
import type { PeerRecord } from './peers.js'

/** cached peers older than this are not worth trying */
const MAX_AGE_MS = 7 * 24 * 3600_000

const PeerSchema = z.strictObject({
  poolId: z.string().regex(/^[0-9a-f]{64}$/),
  nodeId: z.string().min(1).max(100),
  name: z.string().max(200),
  publicKey: z.string().regex(/^[0-9a-f]{64}$/),
  roles: z.array(z.string().max(20)).max(8),
  certSerial: z.string().max(64),
  address: z.string().max(64),
  port: z.number().int().min(1).max(65535),
  unicast: z.boolean(),
  listenAddrs: z.array(z.string().max(255)).max(8),
  capabilities: z.array(z.string().max(255)).max(16),
  lastSeen: z.number().int().nonnegative()
})
const CacheSchema = z.strictObject({ version: z.literal(1), peers: z.array(PeerSchema).max(4096) })

/**
 * MESH_HOME/peers.json: the peers seen last time, so a restarted agent knows where to look before
 * the first beacon arrives. Only verified peers are written. Throws CorruptFileError for a bad file;
 * the agent logs it and starts without a cache (the next save replaces it).
 */
export function loadPeerCache (home: string, now: number): PeerRecord[] {
  const file = peerCacheFile(home)
  const raw = readJsonFile(file)
  if (raw === undefined) return []
  const parsed = CacheSchema.safeParse(raw)
  if (!parsed.success) throw new CorruptFileError(file, parsed.error.issues[0]?.message ?? 'invalid')
  return parsed.data.peers.filter((p) => now - p.lastSeen < MAX_AGE_MS)
}

export function savePeerCache (home: string, peers: PeerRecord[]): void {
  writeJsonAtomic(peerCacheFile(home), { version: 1, peers: peers.filter((p) => p.lastSeen > 0) }, 0o600)
}

/**
 * MESH_HOME/hosts.json: the boxes `mesh remote provision-all` provisions, added with `mesh remote add`.
 * zod-validated on every read; a broken file is a CorruptFileError naming it, never rewritten.
 *
 * Exports: HostEntry, HostsFile, hostsFile, parseHosts, readHosts, addHost.
 */
import path from 'node:path'
import { z } from 'zod'
import { CorruptFileError, readJsonFile, writeJsonAtomic } from '../../atomic-file.js'
import { describeZod } from '../../pool/identity.js'
import { parseTarget } from './ssh.js'

const Host = z.object({
  /** user@host or an ~/.ssh/config alias, as ssh takes it */
  destination: z.string().min(1).max(255).refine(d => { try { parseTarget(d); return true } catch { return false } }, 'not user@host'),
  port: z.number().int().min(1).max(65535).optional(),
  identity: z.string().min(1).optional(),
  /** the device name on the box (default: its hostname) */
  name: z.string().min(1).max(64).optional(),
  /** the pool to join (default: the only pool this device administers) */
  pool: z.string().regex(/^[0-9a-f]{16,64}$/).optional(),
  service: z.boolean().optional()
}).strict()
export type HostEntry = z.infer<typeof Host>

const HostsFile = z.object({ version: z.literal(1), hosts: z.array(Host) }).strict()
export type HostsFile = z.infer<typeof HostsFile>

export function hostsFile (home: string): string { return path.join(home, 'hosts.json') }

/** The file's content, checked; CorruptFileError naming `file` with the first problem. */
export function parseHosts (raw: unknown, file: string): HostsFile {
  const parsed = HostsFile.safeParse(raw)
  if (!parsed.success) throw new CorruptFileError(file, describeZod(parsed.error))
  const seen = new Set<string>()
  for (const h of parsed.data.hosts) {
    const key = `${h.destination}:${h.port ?? 22}`
    if (seen.has(key)) throw new CorruptFileError(file, `${h.destination} is listed twice`)
    seen.add(key)
  }
  return parsed.data
}

/** hosts.json, or no hosts when it does not exist yet. */
export function readHosts (home: string): HostsFile {
  const file = hostsFile(home)
  const raw = readJsonFile(file)
  return raw === undefined ? { version: 1, hosts: [] } : parseHosts(raw, file)
}

/** Add or replace (same destination and port) one host; returns whether it was new. */
export function addHost (home: string, entry: HostEntry): { added: boolean, hosts: HostsFile } {
  const file = hostsFile(home)
  const current = readHosts(home)
  const same = (h: HostEntry): boolean => h.destination === entry.destination && (h.port ?? 22) === (entry.port ?? 22)
  const added = !current.hosts.some(same)
  const hosts = parseHosts({ version: 1, hosts: added ? [...current.hosts, entry] : current.hosts.map(h => same(h) ? entry : h) }, file)
  writeJsonAtomic(file, hosts, 0o600)
  return { added, hosts }
}

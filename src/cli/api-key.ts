import type { Argv, CommandModule } from 'yargs'
import { createApiKey, readApiKeys, revokeApiKey } from '../agent/api/openai/keys.js'
import { commandGroup } from './args.js'
import type { MeshCommand } from './commands.js'
import type { CliIO, GlobalArgs } from '../process/io.js'

interface CreateArgs extends GlobalArgs { name: string }
interface RevokeArgs extends GlobalArgs { key: string }

/** `mesh api-key create|list|revoke`: the keys of the OpenAI-compatible API (mesh start --api). */
export const apiKeyCommand: MeshCommand = (io) => commandGroup('api-key', 'API keys for the OpenAI-compatible API and dashboard (mesh start --api): only their hashes are kept, under MESH_HOME', [createCommand(io), listCommand(io), revokeCommand(io)])

const createCommand = (io: CliIO): CommandModule<GlobalArgs, CreateArgs> => ({
  command: 'create',
  describe: 'make a key and print it once (the agent accepts it within a second, no restart)',
  builder: (s: Argv<GlobalArgs>) => s.option('name', { type: 'string', default: '', describe: 'a name to list and revoke it by' }),
  handler: (a) => {
    const { key, record } = createApiKey(a.home, String(a.name))
    if (a.json) { io.out(JSON.stringify({ key, id: record.id, name: record.name, created_at: record.createdAt })); return }
    io.out(key)
    io.err(`API key ${record.id}${record.name === '' ? '' : ` (${record.name})`} created; it is shown only now. Clients send it as "Authorization: Bearer KEY"`)
  }
})

const listCommand = (io: CliIO): CommandModule<GlobalArgs, GlobalArgs> => ({
  command: 'list',
  describe: 'the keys: id, name, when made (never the keys themselves)',
  builder: (s: Argv<GlobalArgs>) => s,
  handler: (a) => {
    const keys = readApiKeys(a.home)
    if (a.json) { io.out(JSON.stringify(keys.map((k) => ({ id: k.id, name: k.name, created_at: k.createdAt })))); return }
    if (keys.length === 0) { io.out('no API keys (mesh api-key create makes one)'); return }
    for (const k of keys) io.out(`${k.id}  ${k.createdAt}  ${k.name}`)
  }
})

const revokeCommand = (io: CliIO): CommandModule<GlobalArgs, RevokeArgs> => ({
  command: 'revoke <key>',
  describe: 'remove a key by id or name; clients using it get 401 within a second',
  builder: (s: Argv<GlobalArgs>) => s.positional('key', { type: 'string', demandOption: true, describe: 'the id (mesh api-key list) or name' }),
  handler: (a) => {
    const r = revokeApiKey(a.home, String(a.key))
    if (a.json) { io.out(JSON.stringify({ revoked: r.id, name: r.name })); return }
    io.out(`revoked API key ${r.id}${r.name === '' ? '' : ` (${r.name})`}`)
  }
})

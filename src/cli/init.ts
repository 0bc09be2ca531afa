/** `mesh init`: create this device's identity under MESH_HOME. */
import type { Argv } from 'yargs'
import { initDevice } from '../pool/identity.js'
import { fromEnv, handler, requiredString } from './args.js'
import type { MeshCommand } from './commands.js'
import type { GlobalArgs } from '../process/io.js'

export const initCommand: MeshCommand = (io) => ({
  command: 'init',
  describe: "create this device's identity (ed25519 key) and config",
  builder: (y: Argv<GlobalArgs>) => y
    .option('network-id', { type: 'string', describe: 'the LAN this device belongs to (env NETWORK_ID)', default: fromEnv('NETWORK_ID') })
    .option('name', { type: 'string', describe: 'a name for this device, shown to pool members (env DEVICE_NAME)', default: fromEnv('DEVICE_NAME') })
    .option('force', { type: 'boolean', default: false, describe: 'replace an existing identity (refused while pools depend on it)' })
    .example('$0 init --network-id home --name laptop', ''),
  handler: handler<{ networkId?: unknown, name?: unknown, force: unknown }>((args) => {
    const device = initDevice(args.home, {
      networkId: requiredString(args.networkId, 'network-id', 'NETWORK_ID'),
      name: requiredString(args.name, 'name', 'DEVICE_NAME'),
      force: args.force === true
    })
    const shown = { nodeId: device.nodeId, name: device.name, networkId: device.networkId, home: args.home }
    io.out(args.json
      ? JSON.stringify(shown)
      : `Initialised this device in ${args.home}\nNode ID:    ${device.nodeId}\nName:       ${device.name}\nNetwork ID: ${device.networkId}`)
  })
})

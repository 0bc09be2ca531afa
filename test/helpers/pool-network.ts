import pino from 'pino'
import { poolNetwork, type PoolNetwork, type PoolNetworkInit } from '../../src/agent/net/pool-network.js'
import { RecordPoolTrust } from '../../src/agent/net/pool-trust.js'
import { libp2pPrivateKey, listPoolRecords, loadDevice } from '../../src/pool/index.js'
import { loopbackTestConfig } from '../../src/ring/liveness-config.js'
import type { TestDevice } from './pools.js'

/** A started pool network of a test device on 127.0.0.1 with loopback timers; the caller stops it. */
export async function loopbackPoolNetwork (dev: TestDevice, init: PoolNetworkInit & { model?: string } = {}): Promise<PoolNetwork> {
  const { model = '', ...rest } = init
  const net = poolNetwork({ listen: ['/ip4/127.0.0.1/tcp/0'], liveness: loopbackTestConfig(), admissionTimeoutMs: 3000, redialIntervalMs: 500, trustReloadMs: 200, ...rest })({
    home: dev.home,
    privateKey: libp2pPrivateKey(loadDevice(dev.home)),
    trust: new RecordPoolTrust(dev.home, dev.nodeId, () => listPoolRecords(dev.home)),
    capacity: { cores: 1, memoryMiB: 1024, matmulMflops: 0 },
    model,
    log: pino({ level: 'silent' })
  })
  await net.start()
  return net
}

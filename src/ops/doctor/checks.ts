/**
 * `mesh doctor`'s checks, in the order it shows them: plain data (id, title, deadline, what each
 * needs first) and a function from the shared context to ok / warn / fail / skip with one line of
 * detail and one line of fix. Cheap local checks first, then the agent, then the network.
 */
import dgram from 'node:dgram'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { readApiKeys } from '../../agent/api/openai/keys.js'
import { formatApiAddress, isLoopbackHost } from '../../agent/api/openai/address.js'
import { multicastAddresses } from '../../agent/beacon/transport.js'
import { localCheckpoint } from '../../agent/model-files.js'
import { hashFile } from '../../inference/files.js'
import { CorruptFileError } from '../../atomic-file.js'
import { UsageError } from '../../errors.js'
import { listPoolRecords, NotInitializedError, summarizePool, type PoolSummary } from '../../pool/index.js'
import { readTopology } from '../../ring/topology.js'
import type { ServiceState } from '../service/systemd.js'
import type { DoctorContext } from './context.js'
import { fail, ok, skip, warn, type Check, type Outcome } from './run.js'

const DAY_MS = 86_400_000
/** a certificate this close to its end is worth a warning: renewal should have happened by then */
export const CERT_WARN_DAYS = 14
/** heartbeats carry their send time; clocks further apart than this confuse people reading logs and break beacons at 30 s */
export const SKEW_WARN_MS = 5000
/** a ring not converged this long after its last change is stuck, not converging */
export const CONVERGE_GRACE_MS = 15_000
/** TCP connect and HTTP answer from a relay or control plane */
const NET_TIMEOUT_MS = 3000

/** fail over warn over ok; skip only when everything was skipped */
const worst = (outcomes: Outcome[]): Outcome['status'] =>
  (['fail', 'warn', 'ok'] as const).find((s) => outcomes.some((o) => o.status === s)) ?? 'skip'

/** Several findings as one line each for detail and fix: the worst status, its fixes first. */
function combine (outcomes: Outcome[]): Outcome {
  const status = worst(outcomes)
  const bad = outcomes.filter((o) => o.status === status)
  return { status, detail: outcomes.map((o) => o.detail).join('; '), fix: [...new Set(bad.map((o) => o.fix).filter((f) => f !== ''))].join('; ') }
}

/** One pool's certificate, from its record (pure). */
export function certificateOutcome (p: PoolSummary, now: number): Outcome {
  const name = `pool ${p.name} (${p.shortId})`
  const c = p.certificate
  if (p.role === 'admin' && c === null) return ok(`${name}: admin (holds the root key)`)
  if (c === null) return warn(`${name}: waiting for a certificate from the admin`, 'start the agent (mesh start) so it asks the admin; with policy manual the admin runs mesh pool-approve')
  const daysLeft = Math.floor((Date.parse(c.notAfter) - now) / DAY_MS)
  if (c.status === 'valid' && daysLeft < CERT_WARN_DAYS) return warn(`${name}: certificate expires in ${daysLeft} days (${c.notAfter})`, 'keep the agent running so it renews the certificate from the admin')
  if (c.status === 'valid') return ok(`${name}: certificate valid, ${daysLeft} days left`)
  if (c.status === 'expired') return fail(`${name}: certificate expired ${c.notAfter}`, `start the agent while the admin's agent runs so it gets a new one (mesh start), or join again (mesh pool-join --pool-id ${p.poolId} …)`)
  if (c.status === 'revoked') return fail(`${name}: certificate revoked by the admin`, 'ask the pool admin; a revoked device must be re-joined under a new identity')
  return fail(`${name}: certificate ${c.status}`, `join the pool again (mesh pool-join --pool-id ${p.poolId} …)`)
}

/** Clock skew against the members heard from (pure). */
export function skewOutcome (skews: Array<{ pool: string, nodeId: string, ms: number }>): Outcome {
  if (skews.length === 0) return skip('no heartbeats from other members yet')
  const far = skews.filter((s) => Math.abs(s.ms) > SKEW_WARN_MS)
  const max = Math.max(...skews.map((s) => Math.abs(s.ms)))
  if (far.length > 0) {
    return warn(far.map((s) => `${s.nodeId.slice(0, 12)} in ${s.pool} is ${(Math.abs(s.ms) / 1000).toFixed(1)} s ${s.ms > 0 ? 'behind' : 'ahead'}`).join(', '),
      'turn on time synchronisation (timedatectl set-ntp true, or chrony) on the device whose clock is off')
  }
  return ok(`within ${max} ms of ${skews.length} member${skews.length === 1 ? '' : 's'}`)
}

const systemctlLine = (s: ServiceState, verb: string): string => `systemctl ${s.scope === 'user' ? '--user ' : ''}${verb} ${s.unit}`

async function tcpReachable (host: string, port: number): Promise<string | null> {
  return await new Promise((resolve) => {
    const s = net.connect({ host, port })
    s.setTimeout(NET_TIMEOUT_MS)
    const done = (why: string | null): void => { s.destroy(); resolve(why) }
    s.once('connect', () => { done(null) })
    s.once('timeout', () => { done(`no answer within ${NET_TIMEOUT_MS} ms`) })
    s.once('error', (err: NodeJS.ErrnoException) => { done(err.code ?? err.message) })
  })
}

async function httpStatus (url: string): Promise<number | string> {
  return await new Promise((resolve) => {
    const req = http.get(url, { timeout: NET_TIMEOUT_MS }, (res) => { res.resume(); resolve(res.statusCode ?? 0) })
    req.once('timeout', () => { req.destroy(); resolve(`no answer within ${NET_TIMEOUT_MS} ms`) })
    req.once('error', (err: NodeJS.ErrnoException) => { resolve(err.code ?? err.message) })
  })
}

/** HOST and TCP PORT of a multiaddr such as /ip4/10.0.0.1/tcp/4001/p2p/…; undefined for other transports. */
export function tcpTarget (addr: string): { host: string, port: number } | undefined {
  const m = /^\/(?:ip4|ip6|dns|dns4|dns6)\/([^/]+)\/tcp\/(\d+)/.exec(addr)
  return m === null ? undefined : { host: m[1] as string, port: Number(m[2]) }
}

async function bindUdp (port: number): Promise<string | null> {
  return await new Promise((resolve) => {
    // as the agent binds it: SO_REUSEADDR, so a running agent does not make it look taken
    const s = dgram.createSocket({ type: 'udp4', reuseAddr: true })
    s.once('error', (err: NodeJS.ErrnoException) => { s.close(); resolve(err.code ?? err.message) })
    s.bind(port, () => { s.close(); resolve(null) })
  })
}

export const CHECKS: ReadonlyArray<Check<DoctorContext>> = [
  {
    id: 'identity',
    title: 'device identity',
    deadlineMs: 2000,
    run: async (c) => {
      try {
        const d = c.device()
        return ok(`node ${d.nodeId.slice(0, 16)}… "${d.name}" in ${c.home}`)
      } catch (err) {
        if (err instanceof NotInitializedError) return fail(err.message, `mesh init --home ${c.home} --network-id ID --name NAME`)
        if (err instanceof CorruptFileError) return fail(err.message, `restore ${err.file} from a backup; mesh init --force makes a new identity (its pools must be joined again)`)
        throw err
      }
    }
  },
  {
    id: 'config',
    title: 'config files parse',
    deadlineMs: 2000,
    run: async (c) => {
      // each throws a one-line error naming the file: the fix is in that file
      let pools, keys
      try {
        c.config()
        pools = listPoolRecords(c.home)
        for (const p of pools) readTopology(c.home, p.poolId)
        keys = readApiKeys(c.home)
      } catch (err) {
        if (err instanceof CorruptFileError) return fail(err.message, `fix ${err.file} by hand, or move it away and set it up again (agent.json: mesh start flags work without it)`)
        if (err instanceof UsageError) return fail(err.message, 'fix that setting in MESH_HOME/agent.json or the MESH_* environment')
        throw err
      }
      return ok(`agent.json and MESH_* settings, ${pools.length} pool record${pools.length === 1 ? '' : 's'}, ring files, ${keys.length} API key${keys.length === 1 ? '' : 's'}`)
    }
  },
  {
    id: 'certificates',
    title: 'pool certificates',
    deadlineMs: 2000,
    needs: ['identity', 'config'],
    run: async (c) => {
      const pools = listPoolRecords(c.home)
      if (pools.length === 0) return warn('in no pool yet', 'create one (mesh pool-create --name NAME) or join one (mesh pool-join …)')
      return combine(pools.map((r) => certificateOutcome(summarizePool(r, c.now()), c.now())))
    }
  },
  {
    id: 'agent',
    title: 'agent running and answering',
    deadlineMs: 3000,
    needs: ['identity'],
    run: async (c) => {
      const s = await c.agent()
      if (s === undefined) {
        const svc = (await c.services()).states[0]
        return fail(`no agent answers on ${c.home}/run/agent.sock`, svc === undefined ? 'start it: mesh start' : `start its service: ${systemctlLine(svc, 'start')}`)
      }
      return ok(`pid ${s.pid}, up since ${s.startedAt}`)
    }
  },
  {
    id: 'beacon',
    title: 'beacon port and multicast',
    deadlineMs: 2000,
    needs: ['config'],
    run: async (c) => {
      const b = c.config().beacon
      const s = await c.agent()
      const ifaces = s?.beacon.interfaces ?? multicastAddresses()
      const where = `UDP ${b.group}:${b.port}`
      if (s === undefined) {
        const why = await bindUdp(b.port)
        if (why !== null) return fail(`${where} cannot be bound (${why})`, `free the port or choose another (mesh start --beacon-port N, every member alike)`)
      }
      const bound = s === undefined ? 'bindable' : 'bound by the agent'
      if (ifaces.length > 0) return ok(`${where} ${bound}; multicast on ${ifaces.join(', ')}`)
      if (b.bootstrap.length > 0) return ok(`${where} ${bound}; no multicast interface, unicast to ${b.bootstrap.map((t) => `${t.host}:${t.port}`).join(', ')}`)
      return warn(`${where} ${bound}, but no interface carries multicast: no member will hear this one's beacons`, 'connect to a LAN, or name members with --bootstrap HOST, a --relay or a --control-plane')
    }
  },
  {
    id: 'peers',
    title: 'peers seen (beacons, libp2p)',
    deadlineMs: 3000,
    needs: ['agent'],
    run: async (c) => {
      const s = await c.agent()
      const rings = await c.rings()
      const certified = s?.pools.filter((p) => p.ring !== null) ?? []
      if (certified.length === 0) return skip('no pool with a certificate yet')
      return combine(certified.map((p) => {
        const byBeacon = p.peers.ONLINE
        const byLibp2p = (rings.find((r) => r.poolId === p.poolId)?.topology.members.length ?? 1) - 1
        const line = `${p.name}: ${byBeacon} by beacon, ${byLibp2p} by libp2p`
        return byLibp2p > 0 ? ok(line) : warn(`${line} (alone in the pool)`, 'start the agent on another member; without multicast use --bootstrap, a --relay or a --control-plane')
      }))
    }
  },
  {
    id: 'ring',
    title: 'ring converged',
    deadlineMs: 3000,
    needs: ['agent'],
    run: async (c) => {
      const rings = await c.rings()
      if (rings.length === 0) return skip('no ring: no pool with a certificate yet')
      return combine(rings.map((r) => {
        const t = r.topology
        const line = `${r.poolName}: epoch ${t.epoch}, ${t.members.length} member${t.members.length === 1 ? '' : 's'}, hash ${t.hash.slice(0, 12)}`
        if (r.converged === true) return ok(`${line}, the same on every member`)
        if (r.ageMs < CONVERGE_GRACE_MS) return warn(`${line}, converging (changed ${Math.round(r.ageMs / 1000)} s ago)`, 'wait a few seconds and run mesh doctor again')
        return fail(`${line}, not converged for ${Math.round(r.ageMs / 1000)} s`, 'members disagree: run mesh ring-status on each and check they run the same mesh version and --shard-weights')
      }))
    }
  },
  {
    id: 'model',
    title: 'model file and sha256',
    // hashing reads the whole file: about 1 s per GB on a fast disk
    deadlineMs: 60_000,
    needs: ['config'],
    run: async (c) => {
      const m = c.config().model
      const s = await c.agent()
      const file = s?.model?.checkpoint ?? localCheckpoint(m, c.home)
      if (file === null) {
        return s?.modelFetch !== null && s?.modelFetch !== undefined
          ? warn(`model ${m.sha256?.slice(0, 12) ?? ''} is being fetched from the pool (${s.modelFetch.state})`, 'wait for the fetch; mesh pool-status --json shows its progress')
          : fail(`model ${m.sha256?.slice(0, 12) ?? ''} is not here and no agent fetches it`, 'start the agent (mesh start --model-sha256 …) while a member serves it')
      }
      if (!fs.existsSync(file)) return fail(`model file ${file} is missing`, 'restore it, or point --model / MESH_MODEL / agent.json at the file')
      const sha = await hashFile(file)
      const outcomes: Outcome[] = []
      if (m.sha256 !== undefined && m.sha256 !== sha) outcomes.push(fail(`${file} has sha256 ${sha.slice(0, 12)}, not the ${m.sha256.slice(0, 12)} configured`, 'restore the file or fix --model-sha256 / MESH_MODEL_SHA256'))
      if (s?.model !== null && s?.model !== undefined && s.model.checkpointSha256 !== sha) {
        outcomes.push(fail(`${file} changed since the agent loaded it (sha256 now ${sha.slice(0, 12)}, served ${s.model.checkpointSha256.slice(0, 12)})`, 'restore the file, or restart the agent to serve the new one (mesh stop && mesh start)'))
      }
      if (s?.model !== null && s?.model !== undefined) {
        for (const r of await c.rings()) {
          const others = Object.entries(r.models?.members ?? {}).filter(([, id]) => id !== null && id !== s.model?.id)
          if (others.length > 0) outcomes.push(warn(`${r.poolName}: ${others.map(([n]) => n.slice(0, 12)).join(', ')} serve another model and are left out of this one's jobs`, 'start every member with the same --model (mesh model info shows a file\'s sha256)'))
        }
      }
      if (outcomes.length === 0) outcomes.push(ok(`${file}, sha256 ${sha.slice(0, 12)}${s?.model === null || s?.model === undefined ? '' : ', as the agent serves it to the ring'}`))
      return combine(outcomes)
    }
  },
  {
    id: 'relay',
    title: 'relay reachable',
    deadlineMs: NET_TIMEOUT_MS + 1000,
    needs: ['config'],
    run: async (c) => {
      // the running agent's own settings win: it may have been started with flags doctor cannot see
      const relays = (await c.agent())?.net.relays ?? c.config().ring.relays
      if (relays.length === 0) return skip('no relay configured (--relay, MESH_RELAYS)')
      return combine(await Promise.all(relays.map(async (addr) => {
        const t = tcpTarget(addr)
        if (t === undefined) return warn(`${addr}: not a TCP address; not checked`, '')
        const why = await tcpReachable(t.host, t.port)
        return why === null
          ? ok(`${t.host}:${t.port} answers`)
          : fail(`relay ${t.host}:${t.port} unreachable (${why})`, `start mesh-relay there (port ${t.port}), or drop it from --relay / MESH_RELAYS / agent.json`)
      })))
    }
  },
  {
    id: 'control-plane',
    title: 'control plane reachable',
    deadlineMs: NET_TIMEOUT_MS + 1000,
    needs: ['config'],
    run: async (c) => {
      const s = await c.agent()
      const url = s === undefined ? c.config().controlPlane : s.controlPlane?.url
      if (url === undefined) return skip('no control plane configured (--control-plane, MESH_CONTROL_PLANE)')
      const r = await httpStatus(`${url}/health`)
      if (r === 200) return ok(`${url} answers`)
      return fail(`control plane ${url} ${typeof r === 'number' ? `answered ${r}` : `unreachable (${r})`}`, `start mesh-control-plane there, or drop --control-plane / MESH_CONTROL_PLANE`)
    }
  },
  {
    id: 'api',
    title: 'OpenAI API port and bind',
    deadlineMs: NET_TIMEOUT_MS + 1000,
    needs: ['config', 'agent'],
    run: async (c) => {
      const s = await c.agent()
      const configured = c.config().api
      if (s?.api === null || s?.api === undefined) {
        return configured === undefined ? skip('API off (mesh start --api [HOST:]PORT)') : fail(`the API is configured on ${formatApiAddress(configured.address)} but the agent does not serve it`, 'restart the agent (mesh stop && mesh start) and read its first line')
      }
      const url = new URL(s.api.url)
      const r = await httpStatus(`${s.api.url}/health`)
      // /health is 503 while no ring can serve: listening all the same
      if (typeof r !== 'number') return fail(`${s.api.url} does not answer (${r})`, 'restart the agent; check that nothing else holds the port')
      const host = url.hostname.replace(/^\[|\]$/g, '')
      if (!isLoopbackHost(host)) return warn(`${s.api.url} is open to the LAN (${readApiKeys(c.home).length} API keys)`, 'bind it to 127.0.0.1 unless LAN clients need it; keep the keys secret (mesh api-key list)')
      return ok(`${s.api.url} answers (${r}), this machine only`)
    }
  },
  {
    id: 'clock',
    title: 'clock skew against peers',
    deadlineMs: 3000,
    needs: ['agent'],
    run: async (c) => {
      const rings = await c.rings()
      const self = c.device().nodeId
      return skewOutcome(rings.flatMap((r) => r.topology.members
        .filter((m) => m.nodeId !== self && r.clockSkewMs?.[m.nodeId] !== undefined)
        .map((m) => ({ pool: r.poolName, nodeId: m.nodeId, ms: r.clockSkewMs?.[m.nodeId] ?? 0 }))))
    }
  },
  {
    id: 'service',
    title: 'system service',
    deadlineMs: 5000,
    run: async (c) => {
      if (process.platform !== 'linux') return skip(`no service support on ${process.platform} yet`)
      const { booted, states } = await c.services()
      if (states.length === 0) return skip(`no service installed for ${c.home}`, 'optional: mesh service install runs the agent at boot')
      return combine(states.map((s) => {
        if (!booted) return skip(`${s.unit} installed, ${s.enabled ? 'enabled' : 'not enabled'}; systemd is not running here`)
        if (s.active === 'active' && s.enabled) return ok(`${s.unit} enabled and active (pid ${s.mainPid ?? '?'})`)
        if (s.active === 'active') return warn(`${s.unit} active but not enabled: it will not start at boot`, systemctlLine(s, 'enable'))
        return fail(`${s.unit} is ${s.active ?? 'unknown'}`, `${systemctlLine(s, 'start')}; journalctl ${s.scope === 'user' ? '--user ' : ''}-u ${s.unit} says why it stopped`)
      }))
    }
  }
]

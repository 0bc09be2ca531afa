/**
 * `mesh remote provision`: add a box to a pool over SSH, step by step as steps.ts lists them (fail
 * fast, idempotent, the same start on every OS and an OS-specific finish). Each step reports when
 * it starts and how it ended; a failed step ends the run with one line: step, cause, fix.
 *
 * The admin side is this device: it makes the single-use pool key (pool-keys.ts) and, at the end,
 * waits until its own agent has the box in the pool's ring.
 *
 * Exports: ProvisionOptions, ProvisionResult, StepEvent, provision.
 */
import fs from 'node:fs'
import path from 'node:path'
import { callAgent } from '../../agent/api/client.js'
import { runningAgent } from '../../agent/daemon.js'
import type { RingReport } from '../../agent/net/pool-ring.js'
import { MeshError } from '../../errors.js'
import { adminPool, createPoolKey, revokePoolKey } from '../../pool/admin.js'
import { loadDevice } from '../../pool/identity.js'
import { DEFAULT_POOL_KEY_TTL_MS, poolKeyId } from '../../pool/pool-keys.js'
import { writeFileAtomic } from '../../atomic-file.js'
import { makeBundle, type Bundle } from './bundle.js'
import { RemoteStepError } from './errors.js'
import { detectOs, type RemoteOs } from './os.js'
import { installScript, joinScript, nodeTooOld, parseProbe, probeScript, SUDO_NEEDS_PASSWORD, type JoinPlan, type RemoteFacts } from './scripts.js'
import { runSsh, type SshResult, type SshTarget } from './ssh.js'
import { explainSshFailure, newHostKey } from './ssh-errors.js'
import { isEnd, nextState, SSH_COMMAND_TIMEOUT_MS, STEP_TIMEOUT_MS, type EndState, type ProvisionState, type StepRecord, type StepState, type StepStatus } from './steps.js'
import { joinScriptPs1 } from './windows.js'

export interface ProvisionOptions {
  home: string
  target: SshTarget
  /** Pool ID or prefix; default the only pool this device administers */
  poolId?: string | undefined
  /** device name on the box; default its hostname */
  name?: string | undefined
  service: boolean
  /** the mesh installation whose bundle is copied (package root) */
  packageRoot: string
  env?: NodeJS.ProcessEnv
}

export type StepEvent = { kind: 'start', state: StepState } | { kind: 'end', record: StepRecord }

export interface ProvisionResult {
  destination: string
  state: EndState
  /** false when every step found the box as it should be ("no changes") */
  changed: boolean
  nodeId: string | undefined
  os: RemoteOs | undefined
  steps: StepRecord[]
  /** the failed step's one line */
  error?: string
  /** Windows: the join script written for a person to run */
  script?: string
  ms: number
}

/** A step's outcome as the runner sees it. */
interface Outcome { status: StepStatus, detail: string }

/** the ring must hold the box within this after the key is spent, polled this often */
const RING_POLL_MS = 250

class Run {
  os: RemoteOs | undefined
  facts: RemoteFacts | undefined
  key: { text: string, id: string, poolId: string, expiresAt: number } | undefined
  nodeId: string | undefined
  installed = false
  script: string | undefined
  deadline = 0
  constructor (readonly o: ProvisionOptions) {}

  get dest (): string { return this.o.target.destination }

  /** One ssh command, killed at the step's deadline or the seed's 120 s, whichever comes first. */
  async ssh (state: StepState, command: string, input?: Uint8Array, verbose = false): Promise<SshResult> {
    const timeoutMs = Math.max(1, Math.min(SSH_COMMAND_TIMEOUT_MS, this.deadline - performance.now()))
    const r = await runSsh(this.o.target, command, { timeoutMs, input, verbose, env: this.o.env })
    const failure = explainSshFailure(r, this.dest, Math.round(timeoutMs / 1000) * 1000)
    if (failure !== undefined) throw new RemoteStepError(state, failure.cause, failure.fix)
    return r
  }

  async step (state: StepState): Promise<Outcome> {
    switch (state) {
      case 'SSH_TESTING': return await this.sshTest()
      case 'OS_DETECTING': return await this.detect()
      case 'KEY_GENERATING': return await this.makeKey()
      case 'INSTALLING': return await this.install()
      case 'CONNECTING': return await this.connect()
      case 'VERIFYING': return await this.verify()
    }
  }

  private async sshTest (): Promise<Outcome> {
    const r = await this.ssh('SSH_TESTING', 'true', undefined, true)
    const added = newHostKey(r.stderr)
    return { status: 'done', detail: added === undefined ? 'connected' : `connected; new host key ${added.type} ${added.fingerprint} added to known_hosts` }
  }

  private async detect (): Promise<Outcome> {
    const answer = await detectOs(async (command) => await this.ssh('OS_DETECTING', command))
    this.os = answer.os
    if (answer.os === 'unknown') {
      throw new RemoteStepError('OS_DETECTING', `cannot tell the OS of ${this.dest} (${answer.said.join('; ')})`, 'mesh provisions Linux and macOS boxes (and writes a join script for Windows); set the box up by hand with the README')
    }
    return { status: 'done', detail: answer.os }
  }

  private async makeKey (): Promise<Outcome> {
    const pool = adminPool(this.o.home, this.o.poolId)
    if (await runningAgent(this.o.home) === undefined) {
      throw new RemoteStepError('KEY_GENERATING', 'the agent of this device (the pool admin) is not running, so nobody would sign the box\'s certificate', 'start it with `mesh start`, then run this again')
    }
    if (this.os !== 'windows') {
      this.facts = parseProbe((await this.ssh('KEY_GENERATING', probeScript())).stdout)
      const member = this.facts.status?.pools.find(p => p.poolId === pool.poolId && p.state === 'member')
      if (member !== undefined && this.facts.status !== undefined) {
        this.nodeId = this.facts.status.nodeId
        return { status: 'skipped', detail: `already a member as ${this.nodeId}; no key needed` }
      }
    }
    const created = createPoolKey(this.o.home, {
      poolId: pool.poolId, name: `provision ${this.dest}`.slice(0, 64), reusable: false, ttlMs: DEFAULT_POOL_KEY_TTL_MS, now: Date.now()
    })
    this.key = { text: created.key, id: poolKeyId(created.entry), poolId: pool.poolId, expiresAt: created.entry.expiresAt }
    const detail = `single-use key ${this.key.id}, valid until ${new Date(created.entry.expiresAt).toISOString()}`
    if (this.os === 'windows') return this.writeWindowsScript(pool.rootPublicKey, pool.name, detail)
    return { status: 'changed', detail }
  }

  private writeWindowsScript (rootPublicKey: string, poolName: string, keyDetail: string): Outcome {
    const key = this.key as NonNullable<Run['key']>
    const file = path.join(this.o.home, 'remote', `join-mesh-${this.dest.replace(/[^A-Za-z0-9._-]/g, '_')}.ps1`)
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
    // it holds the key: readable by this user only
    writeFileAtomic(file, joinScriptPs1({
      networkId: loadDevice(this.o.home).networkId, name: this.o.name ?? 'windows-box', poolId: key.poolId, rootPublicKey, poolName, key: key.text,
      expiresAt: new Date(key.expiresAt).toISOString()
    }), 0o600)
    this.script = file
    return { status: 'manual', detail: `${keyDetail}; Windows is not provisioned over SSH: copy ${file} to the box and run it in PowerShell` }
  }

  private async install (): Promise<Outcome> {
    const facts = this.facts as RemoteFacts
    const tooOld = nodeTooOld(facts.nodeVersion)
    if (tooOld !== undefined) {
      throw new RemoteStepError('INSTALLING', `${tooOld} on ${this.dest}; mesh needs Node.js 20.19 or newer`, 'install Node.js ≥ 20.19 there (its package manager, or nodejs.org); the mesh bundle itself needs no internet')
    }
    let bundle: Bundle
    try { bundle = makeBundle(this.o.packageRoot, path.join(this.o.home, 'remote')) } catch (err) {
      if (err instanceof MeshError) throw new RemoteStepError('INSTALLING', err.message, 'build this mesh (npm run build), then run again')
      throw err
    }
    if (facts.mesh !== undefined && facts.build === bundle.build) return { status: 'skipped', detail: `mesh ${bundle.version} (build ${bundle.build.slice(0, 12)}) is installed already` }
    if (facts.mesh !== undefined && facts.build === undefined && facts.meshVersion !== undefined && compareVersions(facts.meshVersion, bundle.version) >= 0) {
      return { status: 'skipped', detail: `mesh ${facts.meshVersion} is installed already (${facts.mesh})` }
    }
    if (facts.home === undefined) throw new RemoteStepError('INSTALLING', `${this.dest} did not say what its $HOME is`, 'check that the login shell of that user is a POSIX shell (sh, bash, zsh)')
    const r = await this.ssh('INSTALLING', installScript(bundle), fs.readFileSync(bundle.file))
    if (r.code !== 0) {
      const said = lastLine(r.stderr)
      throw new RemoteStepError('INSTALLING', r.code === 3 ? `${said}, not ${bundle.sha256}: the copy was damaged` : `install failed on ${this.dest} (exit ${String(r.code)}: ${said})`,
        r.code === 3 ? 'run again' : `check free space and that ~/.local is writable on ${this.dest}`)
    }
    this.installed = true
    this.facts = { ...facts, mesh: `${facts.home}/.local/bin/mesh`, meshVersion: bundle.version, build: bundle.build }
    return { status: 'changed', detail: `installed mesh ${bundle.version} (build ${bundle.build.slice(0, 12)}, ${(bundle.bytes / 1048576).toFixed(1)} MiB, sha256 checked) into ~/.local` }
  }

  private async connect (): Promise<Outcome> {
    const facts = this.facts as RemoteFacts
    const pool = adminPool(this.o.home, this.o.poolId)
    const record = facts.status?.pools.find(p => p.poolId === pool.poolId)
    const running = facts.status?.source === 'agent'
    const member = record?.state === 'member'
    if (member && running && !this.installed) return { status: 'skipped', detail: 'the agent runs and holds its certificate: no changes' }
    const plan: JoinPlan = {
      node: facts.node as string,
      mesh: facts.mesh as string,
      init: facts.status === undefined ? { networkId: loadDevice(this.o.home).networkId, name: this.o.name ?? (facts.hostname !== '' ? facts.hostname : 'box') } : undefined,
      dropPending: record !== undefined && !member ? pool.poolId : undefined,
      join: member ? undefined : { poolId: pool.poolId, rootPublicKey: pool.rootPublicKey, poolName: pool.name, key: (this.key as NonNullable<Run['key']>).text },
      run: running && !this.installed ? 'none' : this.o.service ? 'service' : 'start',
      restart: running && this.installed
    }
    const r = await this.ssh('CONNECTING', joinScript(plan))
    if (r.code === SUDO_NEEDS_PASSWORD) {
      throw new RemoteStepError('CONNECTING', 'sudo needs a password to let the agent\'s user service outlive the ssh session (loginctl enable-linger)', `run \`mesh remote prepare ${this.dest}\` once`)
    }
    if (r.code !== 0) {
      throw new RemoteStepError('CONNECTING', `joining failed on ${this.dest}: ${lastLine(r.stderr).replace(/^mesh: /, '')}`, 'see the agent log on the box (MESH_HOME/logs/agent.log, default ~/.meshnet/logs)')
    }
    const after = parseProbe(r.stdout).status
    if (after === undefined) throw new RemoteStepError('CONNECTING', `${this.dest} did not report its node id after joining`, 'run `mesh pool-status` there to see why')
    this.nodeId = after.nodeId
    const how = /service=fallback/.test(r.stdout)
      ? 'started with `mesh start` (this mesh has no `mesh service` yet)'
      : /service=installed/.test(r.stdout) ? 'running as a user service' : plan.run === 'none' ? 'the agent runs' : 'agent started'
    const did = [plan.init !== undefined ? 'identity created' : undefined, plan.join !== undefined ? 'joined with the key' : undefined, how].filter(x => x !== undefined)
    return { status: 'changed', detail: `${did.join(', ')}; node ${after.nodeId}` }
  }

  private async verify (): Promise<Outcome> {
    const pool = adminPool(this.o.home, this.o.poolId)
    const nodeId = this.nodeId as string
    for (;;) {
      const rings = await callAgent<RingReport[]>(this.o.home, 'GET', '/v1/ring').catch(() => [])
      const ring = rings.find(r => r.poolId === pool.poolId)
      if (ring?.topology.members.some(m => m.nodeId === nodeId) === true) {
        return { status: 'done', detail: `${nodeId} is in the ring (epoch ${ring.topology.epoch}, ${ring.topology.members.length} members)` }
      }
      if (performance.now() + RING_POLL_MS > this.deadline) break
      await new Promise((resolve) => setTimeout(resolve, RING_POLL_MS))
    }
    const certified = adminPool(this.o.home, pool.poolId).members.some(m => m.nodeId === nodeId)
    throw new RemoteStepError('VERIFYING', certified
      ? `${nodeId} holds its certificate but did not enter this device's ring within ${STEP_TIMEOUT_MS.VERIFYING / 1000} s`
      : `the box's certificate request never reached this device's agent within ${STEP_TIMEOUT_MS.VERIFYING / 1000} s (see \`mesh pool-status\`: refused requests are counted)`,
    'check that UDP multicast (239.192.0.1:42424) and TCP pass between the two, or start the box\'s agent with --bootstrap ADMIN_ADDRESS')
  }
}

function lastLine (text: string): string { return text.trim().split('\n').filter(l => l.trim() !== '').at(-1)?.trim() ?? 'no output' }

/** Numeric dotted versions: -1, 0, 1 (a pre-release or build suffix is ignored). */
function compareVersions (a: string, b: string): number {
  const pa = a.split(/[-+]/)[0]?.split('.').map(Number) ?? []
  const pb = b.split(/[-+]/)[0]?.split('.').map(Number) ?? []
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return Math.sign(d)
  }
  return 0
}

/**
 * Run the sequence against one box. Never throws for a failed step: the result says EXIT_ERROR
 * with the step's one line (the caller decides the exit code); bugs still throw.
 */
export async function provision (o: ProvisionOptions, report: (e: StepEvent) => void = () => {}): Promise<ProvisionResult> {
  const run = new Run(o)
  const steps: StepRecord[] = []
  const t0 = performance.now()
  let state: ProvisionState = 'SSH_TESTING'
  let error: string | undefined
  while (!isEnd(state)) {
    const current: StepState = state
    report({ kind: 'start', state: current })
    const started = performance.now()
    run.deadline = started + STEP_TIMEOUT_MS[current]
    let outcome: Outcome
    try {
      outcome = await run.step(current)
    } catch (err) {
      if (!(err instanceof MeshError)) throw err
      const line = err instanceof RemoteStepError ? err.message : `${current}: ${err.message}; fix: see above`
      outcome = { status: 'failed', detail: line }
      error = line
    }
    const record: StepRecord = { state: current, status: outcome.status, detail: outcome.detail, ms: Math.round(performance.now() - started) }
    steps.push(record)
    report({ kind: 'end', record })
    state = nextState(current, outcome.status, run.os)
  }
  // a key made for a run that failed stays unusable rather than valid for a day
  if (state === 'EXIT_ERROR' && run.key !== undefined && !adminPool(o.home, run.key.poolId).members.some(m => m.nodeId === run.nodeId)) {
    try { revokePoolKey(o.home, run.key.poolId, run.key.id, Date.now()) } catch (err) { if (!(err instanceof MeshError)) throw err }
  }
  return {
    destination: run.dest,
    state,
    changed: steps.some(s => s.status === 'changed' || s.status === 'manual'),
    nodeId: run.nodeId,
    os: run.os,
    steps,
    ...(error !== undefined ? { error } : {}),
    ...(run.script !== undefined ? { script: run.script } : {}),
    ms: Math.round(performance.now() - t0)
  }
}

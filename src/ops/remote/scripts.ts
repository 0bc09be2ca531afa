/**
 * The POSIX sh scripts provisioning runs on a Linux or macOS box, built as text from quoted values,
 * and the parser of what the probe prints. Pure: ssh.ts carries them, provision.ts decides.
 *
 * Where mesh goes on the box: ~/.local/lib/mesh/<version>-<build>/ (the bundle, plus a BUILD file),
 * ~/.local/lib/mesh/current → it, and ~/.local/bin/mesh → current/dist/cli/mesh.js.
 *
 * Exports: REQUIRED_NODE, probeScript, RemoteFacts, parseProbe, nodeTooOld, installScript, JoinPlan,
 * SUDO_NEEDS_PASSWORD, joinScript.
 */
import { z } from 'zod'
import { shQuote } from './ssh.js'

/** libp2p 3 and require(esm) need it (package.json engines) */
export const REQUIRED_NODE = '20.19'

const LOCAL_MESH = '"$HOME/.local/bin/mesh"'
const STATUS_MARK = '---mesh-pool-status---'

/**
 * Prints key=value lines (node, its version, mesh, its version and build, hostname) and then, if
 * mesh runs there, `mesh pool-status --json` after a marker line. Node is looked for where a
 * non-interactive ssh session may not have it on PATH (Homebrew, /usr/local).
 */
export function probeScript (): string {
  return [
    'node=$(command -v node 2>/dev/null || true)',
    'if [ -z "$node" ]; then for n in /usr/local/bin/node /opt/homebrew/bin/node; do if [ -x "$n" ]; then node=$n; break; fi; done; fi',
    'echo "node=$node"',
    'if [ -n "$node" ]; then echo "node_version=$("$node" -p process.versions.node 2>/dev/null)"; fi',
    `if [ -x ${LOCAL_MESH} ]; then mesh=${LOCAL_MESH}; else mesh=$(command -v mesh 2>/dev/null || true); fi`,
    'echo "mesh=$mesh"',
    'echo "hostname=$(uname -n 2>/dev/null)"',
    'echo "home=$HOME"',
    'if [ -n "$mesh" ] && [ -n "$node" ]; then',
    '  echo "mesh_version=$("$node" "$mesh" --version 2>/dev/null)"',
    `  if [ "$mesh" = ${LOCAL_MESH} ]; then echo "build=$(cat "$HOME/.local/lib/mesh/current/BUILD" 2>/dev/null)"; fi`,
    `  echo ${STATUS_MARK}`,
    '  "$node" "$mesh" pool-status --json 2>/dev/null || true',
    'fi'
  ].join('\n')
}

/** What `mesh pool-status --json` says that provisioning needs (the rest is ignored). */
const PoolStatusJson = z.object({
  nodeId: z.string(),
  source: z.enum(['agent', 'stored']),
  pools: z.array(z.object({ poolId: z.string(), state: z.string(), role: z.string() }))
})

export interface RemoteFacts {
  /** path of node, or undefined if none was found */
  node: string | undefined
  nodeVersion: string | undefined
  mesh: string | undefined
  meshVersion: string | undefined
  /** the build id of a mesh this tool installed, if that is the one found */
  build: string | undefined
  hostname: string
  /** $HOME on the box: mesh goes under it */
  home: string | undefined
  /** undefined when mesh is not there or has no identity yet */
  status: z.infer<typeof PoolStatusJson> | undefined
}

export function parseProbe (stdout: string): RemoteFacts {
  const at = stdout.indexOf(STATUS_MARK)
  const head = at < 0 ? stdout : stdout.slice(0, at)
  const kv = new Map<string, string>()
  for (const line of head.split('\n')) {
    const eq = line.indexOf('=')
    if (eq > 0) kv.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim())
  }
  const get = (k: string): string | undefined => { const v = kv.get(k); return v === undefined || v === '' ? undefined : v }
  let status: RemoteFacts['status']
  if (at >= 0) {
    try {
      const parsed = PoolStatusJson.safeParse(JSON.parse(stdout.slice(at + STATUS_MARK.length)))
      status = parsed.success ? parsed.data : undefined
    } catch { status = undefined } // no identity yet: pool-status printed nothing on stdout
  }
  return {
    node: get('node'), nodeVersion: get('node_version'), mesh: get('mesh'), meshVersion: get('mesh_version'), build: get('build'),
    hostname: get('hostname') ?? '', home: get('home'), status
  }
}

/** Why this Node cannot run mesh, or undefined when it can. */
export function nodeTooOld (version: string | undefined): string | undefined {
  if (version === undefined) return 'Node.js is not installed (or not on the PATH of a non-interactive ssh session)'
  const [major = NaN, minor = NaN] = version.split('.').map(Number)
  const [needMajor = 0, needMinor = 0] = REQUIRED_NODE.split('.').map(Number)
  if (!Number.isFinite(major) || !Number.isFinite(minor)) return `its Node.js says its version is ${JSON.stringify(version)}`
  if (major < needMajor || (major === needMajor && minor < needMinor)) return `Node.js ${version} is too old`
  return undefined
}

/**
 * Reads the bundle from stdin, checks its sha256, unpacks it beside the versions already there and
 * points ~/.local/bin/mesh at it; exit 3 for a sha256 mismatch. The old version stays until the new
 * one is complete (a temporary directory, then a rename).
 */
export function installScript (b: { sha256: string, build: string, dirName: string }): string {
  const dir = `"$HOME/.local/lib/mesh/"${shQuote(b.dirName)}`
  return [
    'set -e',
    'mkdir -p "$HOME/.local/lib/mesh" "$HOME/.local/bin"',
    't=$(mktemp "$HOME/.local/lib/mesh/.bundle.XXXXXX")',
    'cat > "$t"',
    's=$( (sha256sum "$t" 2>/dev/null || shasum -a 256 "$t") | cut -d" " -f1)',
    `if [ "$s" != ${shQuote(b.sha256)} ]; then rm -f "$t"; echo "the bundle arrived with sha256 $s" >&2; exit 3; fi`,
    `rm -rf ${dir}.tmp && mkdir -p ${dir}.tmp`,
    `tar -xzf "$t" -C ${dir}.tmp && rm -f "$t"`,
    `printf %s ${shQuote(b.build)} > ${dir}.tmp/BUILD`,
    `rm -rf ${dir} && mv ${dir}.tmp ${dir}`,
    `ln -sfn ${dir} "$HOME/.local/lib/mesh/current"`,
    'chmod +x "$HOME/.local/lib/mesh/current/dist/cli/mesh.js"',
    'ln -sfn "$HOME/.local/lib/mesh/current/dist/cli/mesh.js" "$HOME/.local/bin/mesh"',
    'echo installed'
  ].join('\n')
}

export interface JoinPlan {
  node: string
  mesh: string
  /** init with these unless the box has an identity */
  init?: { networkId: string, name: string } | undefined
  /** a pending record from an earlier run holds a key that can no longer work: drop it first */
  dropPending?: string | undefined
  /** pool-join with the key unless already recorded as a member */
  join?: { poolId: string, rootPublicKey: string, poolName: string, key: string } | undefined
  /**
   * start: `mesh start` (pool-join --start); service: `mesh service install --user` where this mesh
   * has it (else `mesh start`, printed as service=fallback); none: the agent runs already
   */
  run: 'start' | 'service' | 'none'
  /** the agent runs an older build: stop it first, so the new one starts */
  restart: boolean
}

/** exit status of the join script when a user service needs lingering and sudo wants a password */
export const SUDO_NEEDS_PASSWORD = 4

/**
 * init, pool-join with the key, then the agent, each only when needed; the admin side then waits
 * for the certificate and the ring. A user service outlives the ssh session only with lingering,
 * which needs root once: `sudo -n` (set up by `mesh remote prepare`).
 */
export function joinScript (p: JoinPlan): string {
  const mesh = `${shQuote(p.node)} ${shQuote(p.mesh)}`
  const lines = ['set -e']
  // an identity left by an earlier install is kept: pools may depend on its key
  if (p.init !== undefined) lines.push(`if [ ! -f "\${MESH_HOME:-$HOME/.meshnet}/keys/device.key" ]; then ${mesh} init --network-id ${shQuote(p.init.networkId)} --name ${shQuote(p.init.name)} >/dev/null; fi`)
  if (p.dropPending !== undefined) lines.push(`rm -f "\${MESH_HOME:-$HOME/.meshnet}/pools/"${shQuote(`${p.dropPending}.json`)}`)
  if (p.restart) lines.push(`${mesh} stop >/dev/null`)
  if (p.join !== undefined) {
    const j = p.join
    lines.push(`${mesh} pool-join --pool-id ${shQuote(j.poolId)} --pool-root-pubkey=${shQuote(j.rootPublicKey)} --name ${shQuote(j.poolName)} --token=${shQuote(j.key)}${p.run === 'start' ? ' --start' : ''} >/dev/null`)
  } else if (p.run === 'start') {
    lines.push(`${mesh} start >/dev/null`)
  }
  if (p.run === 'service') {
    lines.push(
      `if ${mesh} service --help >/dev/null 2>&1; then`,
      '  if command -v loginctl >/dev/null 2>&1 && ! loginctl show-user "$(id -un)" -p Linger 2>/dev/null | grep -q yes; then',
      `    sudo -n loginctl enable-linger "$(id -un)" 2>/dev/null || exit ${SUDO_NEEDS_PASSWORD}`,
      '  fi',
      `  ${mesh} service install --user >/dev/null`,
      '  echo service=installed',
      'else',
      `  ${mesh} start >/dev/null`,
      '  echo service=fallback',
      'fi')
  }
  // what the admin side needs next: the node id
  lines.push(`echo ${STATUS_MARK}`, `${mesh} pool-status --json`)
  return lines.join('\n')
}

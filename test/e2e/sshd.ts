/**
 * Real OpenSSH servers for e2e tests, one per lab node (or several, on other ports): Debian's sshd
 * with a temporary host key and authorized_keys, logging the node's root in with HOME and MESH_HOME
 * of its own (sshd's SetEnv), so each node is a "box" with its own home. They run inside the lab's
 * namespaces, so NetnsLab.destroy() ends them. Plus the client side: a key pair and an ssh config
 * (known_hosts in the lab) that `mesh remote` reads through MESH_SSH_CONFIG.
 */
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import type { LabNode } from './netns.js'

const SSHD = '/usr/sbin/sshd'

/** Why no sshd can run here, after trying to install it (the test's own setup); undefined when it can. */
export function sshdUnavailable (): string | undefined {
  if (!fs.existsSync(SSHD)) {
    try { execFileSync('apt-get', ['install', '-y', 'openssh-server'], { stdio: 'ignore', timeout: 600_000 }) } catch { /* reported below */ }
  }
  if (!fs.existsSync(SSHD)) return 'openssh-server is not installed and apt-get install -y openssh-server failed'
  try { execFileSync('ssh', ['-V'], { stdio: 'ignore' }) } catch { return 'the ssh client is missing (apt-get install -y openssh-client)' }
  return undefined
}

export function keyPair (file: string): { key: string, pub: string } {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', path.basename(file), '-f', file])
  return { key: file, pub: fs.readFileSync(`${file}.pub`, 'utf8').trim() }
}

export interface SshdOptions {
  port: number
  hostKey: string
  authorizedKeys: string
  /** the login's HOME and MESH_HOME on this "box" */
  home: string
  meshHome: string
  /** sshd's ForceCommand: every session runs this instead (a box whose commands hang) */
  forceCommand?: string
}

/** Start sshd in the node's namespace; resolves once it listens. */
export async function startSshd (node: LabNode, dir: string, o: SshdOptions): Promise<void> {
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }) // its privilege-separation directory
  const config = path.join(dir, `sshd_${node.name}_${o.port}.conf`)
  fs.writeFileSync(config, [
    `ListenAddress ${node.address}:${o.port}`,
    `HostKey ${o.hostKey}`,
    'PidFile none',
    `AuthorizedKeysFile ${o.authorizedKeys}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    // the lab's files are under /tmp with the test's permissions
    'StrictModes no',
    'UsePAM no',
    `SetEnv HOME=${o.home} MESH_HOME=${o.meshHome}`,
    ...(o.forceCommand !== undefined ? [`ForceCommand ${o.forceCommand}`] : []),
    ''
  ].join('\n'))
  fs.mkdirSync(o.home, { recursive: true })
  const log = path.join(dir, `sshd_${node.name}_${o.port}.log`)
  const out = fs.openSync(log, 'a')
  const child = spawn('ip', ['netns', 'exec', node.ns, SSHD, '-D', '-e', '-f', config], { stdio: ['ignore', out, out], detached: true })
  fs.closeSync(out)
  child.unref()
  const deadline = Date.now() + 10_000
  while (!fs.readFileSync(log, 'utf8').includes('Server listening on')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`sshd on ${node.name}:${o.port} did not start: ${fs.readFileSync(log, 'utf8')}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** An ssh client config for the lab: its own known_hosts, and `identity` unless undefined. */
export function clientConfig (file: string, knownHosts: string, identity: string | undefined): string {
  fs.writeFileSync(file, [
    'Host *',
    `  UserKnownHostsFile ${knownHosts}`,
    '  GlobalKnownHostsFile /dev/null',
    ...(identity !== undefined ? [`  IdentityFile ${identity}`] : []),
    '  IdentitiesOnly yes',
    ''
  ].join('\n'))
  return file
}

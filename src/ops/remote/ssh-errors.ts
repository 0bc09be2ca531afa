/**
 * What a failed ssh run means, from its exit status and stderr (ssh says why on its last lines):
 * one cause and one fix, for the step's one-line error. Pure.
 *
 * Exports: SshFailure, explainSshFailure, newHostKey.
 */
import type { SshResult } from './ssh.js'

export interface SshFailure { cause: string, fix: string }

/** ssh's own lines, without -v's debug lines and the banner art of a changed host key */
function sshLines (stderr: string): string[] {
  return stderr.split('\n').map(l => l.trim()).filter(l => l !== '' && !l.startsWith('debug') && !l.startsWith('@') && !l.startsWith('OpenSSH_'))
}

/** Why an ssh connection to `dest` did not run the command (exit 255 or a kill), or undefined if it did. */
export function explainSshFailure (r: SshResult, dest: string, timeoutMs: number): SshFailure | undefined {
  if (r.timedOut) {
    return { cause: `no answer from ${dest} within ${timeoutMs / 1000} s (ssh was killed)`, fix: `check that \`ssh ${dest} true\` returns at once; a login script that waits for input or a hung command blocks it` }
  }
  if (r.code !== 255) return undefined
  const lines = sshLines(r.stderr)
  const find = (re: RegExp): string | undefined => lines.find(l => re.test(l))
  const changed = find(/host key for .* has changed|REMOTE HOST IDENTIFICATION HAS CHANGED/i)
  if (changed !== undefined || find(/Host key verification failed/) !== undefined) {
    const offending = find(/Offending .* key in/)
    return {
      cause: `the host key of ${dest} has changed (ssh: ${changed ?? 'Host key verification failed.'}${offending !== undefined ? ` ${offending}` : ''})`,
      fix: `if the box was reinstalled, remove its old key with \`ssh-keygen -R HOST\` and run again; otherwise someone may be intercepting the connection`
    }
  }
  const denied = find(/Permission denied/)
  if (denied !== undefined) {
    return { cause: denied, fix: `install your public key on the box (\`ssh-copy-id ${dest}\`), or name the key with --identity FILE` }
  }
  const net = find(/Connection timed out|Connection refused|No route to host|Network is unreachable|Could not resolve hostname|Name or service not known|Operation timed out|Connection closed|Connection reset/i)
  if (net !== undefined) return { cause: net, fix: `check the address and --port, that the box is on and that its SSH server runs` }
  const last = lines.at(-1)
  return { cause: last ?? `ssh exited with status 255 and said nothing`, fix: `run \`ssh ${dest} true\` to see what ssh needs` }
}

/** The fingerprint of a host key ssh saw for the first time and added to known_hosts (needs ssh -v). */
export function newHostKey (stderr: string): { type: string, fingerprint: string } | undefined {
  if (!/Permanently added/.test(stderr)) return undefined
  const m = /Server host key: (\S+) (SHA256:\S+)/.exec(stderr)
  return m === null ? undefined : { type: m[1] as string, fingerprint: m[2] as string }
}

/**
 * `mesh remote prepare user@host`: once, interactively (sudo asks for the password on the box's
 * terminal), a sudoers drop-in that lets that user run exactly what `provision --service` needs as
 * root: `loginctl enable-linger USER`, so the agent's user service outlives the ssh session and
 * starts at boot. The file is checked with `visudo -cf` before it is installed (0440), and `sudo -n`
 * is tried afterwards.
 *
 * Exports: sudoersDropIn, dropInPath, prepareScript, PREPARED, prepareProbe, parsePrepareProbe.
 */
import { UsageError } from '../../errors.js'
import { shQuote } from './ssh.js'

/** printed by the script when `sudo -n` works afterwards */
export const PREPARED = 'mesh-prepared'

const USER = /^[a-z_][a-z0-9_.-]{0,31}$/
const ABS = /^\/[A-Za-z0-9_./-]+$/

export function dropInPath (user: string): string { return `/etc/sudoers.d/mesh-agent-${user.replace(/\./g, '_')}` }

/** The drop-in's text (sudoers ignores files in sudoers.d whose name has a dot, hence the _ above). */
export function sudoersDropIn (user: string, loginctl: string): string {
  if (!USER.test(user)) throw new UsageError(`${JSON.stringify(user)} is not a user name sudoers can take`)
  if (!ABS.test(loginctl)) throw new UsageError(`loginctl is at ${JSON.stringify(loginctl)}, not an absolute path`)
  return [
    '# written by `mesh remote prepare`: lets this user keep the mesh agent\'s user service running',
    '# after logout and at boot (systemd lingering); nothing else. Remove the file to undo it.',
    `${user} ALL=(root) NOPASSWD: ${loginctl} enable-linger ${user}`,
    ''
  ].join('\n')
}

/** Batch probe before the interactive part: the login user and where loginctl is. */
export const prepareProbe = 'echo "user=$(id -un)"; echo "loginctl=$(command -v loginctl 2>/dev/null)"; echo "sudo=$(command -v sudo 2>/dev/null)"'

export function parsePrepareProbe (stdout: string): { user: string, loginctl: string | undefined, sudo: boolean } {
  const get = (k: string): string | undefined => new RegExp(`^${k}=(.*)$`, 'm').exec(stdout)?.[1]?.trim() || undefined
  return { user: get('user') ?? '', loginctl: get('loginctl'), sudo: get('sudo') !== undefined }
}

/** Runs with a terminal: write, `visudo -cf`, install 0440 root:root, then `sudo -n` must pass. */
export function prepareScript (user: string, loginctl: string): string {
  const file = dropInPath(user)
  return [
    'set -e',
    't=$(mktemp)',
    `printf %s ${shQuote(sudoersDropIn(user, loginctl))} > "$t"`,
    'sudo visudo -cf "$t" >/dev/null',
    `sudo install -m 0440 -o root -g 0 "$t" ${shQuote(file)}`,
    'rm -f "$t"',
    'sudo -k',
    `sudo -n -l ${shQuote(loginctl)} enable-linger ${shQuote(user)} >/dev/null && echo ${PREPARED}`
  ].join('\n')
}

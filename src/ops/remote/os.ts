/**
 * Which OS a box runs, asked the way the seed does it: `uname -s` (Linux, macOS and the Unix layers of
 * Windows), else cmd's `echo %OS%`, else PowerShell's `$env:OS`. The parsing is pure; `detectOs`
 * runs the probes in order through the runner it is given.
 *
 * Exports: RemoteOs, osFromUname, osFromWindowsEcho, OS_PROBES, detectOs.
 */
export type RemoteOs = 'linux' | 'macos' | 'windows' | 'unknown'

/** `uname -s` output: Linux, Darwin; MINGW64_NT-…, MSYS_NT-…, CYGWIN_NT-… are Windows underneath. */
export function osFromUname (stdout: string): RemoteOs {
  const s = stdout.trim().split('\n')[0]?.trim() ?? ''
  if (s === 'Linux') return 'linux'
  if (s === 'Darwin') return 'macos'
  if (/^(MINGW|MSYS|CYGWIN)/i.test(s) || /^Windows/i.test(s)) return 'windows'
  return 'unknown'
}

/** `echo %OS%` (cmd) or `$env:OS` (PowerShell): Windows_NT on every NT Windows; a Unix shell echoes %OS% back. */
export function osFromWindowsEcho (stdout: string): RemoteOs {
  return stdout.trim() === 'Windows_NT' ? 'windows' : 'unknown'
}

export interface OsProbe { readonly command: string, readonly parse: (stdout: string) => RemoteOs }

/** In order; the first probe that exits 0 with a known answer decides. */
export const OS_PROBES: readonly OsProbe[] = [
  { command: 'uname -s', parse: osFromUname },
  { command: 'echo %OS%', parse: osFromWindowsEcho },
  { command: 'powershell -NoProfile -NonInteractive -Command "$env:OS"', parse: osFromWindowsEcho }
]

/** What the probes said, for the error when none knew: each command's first line of output. */
export interface OsAnswer { os: RemoteOs, said: string[] }

export async function detectOs (run: (command: string) => Promise<{ code: number | null, stdout: string }>): Promise<OsAnswer> {
  const said: string[] = []
  for (const p of OS_PROBES) {
    const r = await run(p.command)
    said.push(`${p.command} → ${r.code === 0 ? JSON.stringify(r.stdout.trim().split('\n')[0] ?? '') : `exit ${String(r.code)}`}`)
    if (r.code !== 0) continue
    const os = p.parse(r.stdout)
    if (os !== 'unknown') return { os, said }
  }
  return { os: 'unknown', said }
}

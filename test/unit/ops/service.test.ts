import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { MESH_JS } from '../../helpers/agent-procs.js'
import { homeWithPool, snapshot, tempDirs } from '../../helpers/pool-fixtures.js'
import {
  execRunner, installService, postChecks, serviceState, servicesFor, systemdRunning, uninstallService, unsupportedReason,
  type Runner, type ServiceTarget
} from '../../../src/ops/service/systemd.js'
import {
  decideInstall, defaultDirs, defaultSystemHome, MARKER, parseEnvFile, renderEnvFile, renderUnit, serviceFiles,
  type ServiceDirs, type ServiceSpec
} from '../../../src/ops/service/unit.js'

const tmp = tempDirs('mesh-service-')

const spec = (over: Partial<ServiceSpec> = {}): ServiceSpec => ({
  scope: 'system', home: defaultSystemHome(undefined), node: process.execPath, meshScript: MESH_JS, runAs: 'mesh', env: {}, ...over
})

/** A tool's exit code and everything it printed. */
async function tool (file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number, out: string }> {
  return await new Promise((resolve) => {
    execFile(file, args, { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, out: stdout + stderr })
    })
  })
}

/** The units install renders for each kind of service it makes. */
const KINDS: Array<[string, ServiceSpec]> = [
  ['system, default home', spec()],
  ['system, second instance', spec({ instance: 'lab-2', home: defaultSystemHome('lab-2') })],
  ['system, own home with a space, every setting', spec({
    home: '/srv/mesh state', runAs: 'meshsvc',
    env: { model: '/srv/models/m.gguf', api: '0.0.0.0:8000', relays: ['/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWabc'], controlPlane: 'http://10.0.0.1:8080', threads: 2 }
  })],
  ['user unit', spec({ scope: 'user', home: '/home/alice/.meshnet' })],
  ['user unit, instance', spec({ scope: 'user', instance: 'b', home: '/home/alice/mesh-b' })]
]

function writeUnit (dir: string, s: ServiceSpec): string {
  const [unit] = serviceFiles(s, defaultDirs(s.scope, '/home/alice'))
  const file = path.join(dir, path.basename(unit!.path))
  fs.writeFileSync(file, unit!.content)
  return file
}

/** user units need a runtime directory for systemd-analyze's user manager */
function userEnv (s: ServiceSpec, dir: string): { flags: string[], env: NodeJS.ProcessEnv } {
  if (s.scope === 'system') return { flags: [], env: {} }
  const xdg = path.join(dir, 'xdg'); fs.mkdirSync(xdg, { recursive: true, mode: 0o700 })
  return { flags: ['--user'], env: { XDG_RUNTIME_DIR: xdg } }
}

describe('rendered units pass systemd\'s own checks', () => {
  it.each(KINDS)('%s: systemd-analyze verify exits 0 and prints nothing', async (_, s) => {
    const dir = tmp()
    const { flags, env } = userEnv(s, dir)
    const r = await tool('systemd-analyze', ['verify', ...flags, writeUnit(dir, s)], env)
    expect(r).toEqual({ code: 0, out: '' })
  })

  it.each(KINDS)('%s: systemd-analyze security --offline=true exposure is at most 5.0', async (_, s) => {
    const dir = tmp()
    const { flags, env } = userEnv(s, dir)
    const r = await tool('systemd-analyze', ['security', ...flags, '--offline=true', writeUnit(dir, s)], env)
    const exposure = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(r.out)?.[1] ?? 'NaN')
    expect(r.code, r.out).toBe(0)
    expect(exposure).toBeLessThanOrEqual(5.0)
  })

  it('hardening: dedicated user, read-only OS with MESH_HOME writable, the agent\'s address families, never MemoryDenyWriteExecute', () => {
    const unit = renderUnit(spec(), defaultDirs('system', '/root'))
    for (const line of ['User=mesh', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'StateDirectory=mesh-agent', 'PrivateTmp=yes',
      'ProtectKernelTunables=yes', 'ProtectKernelModules=yes', 'ProtectKernelLogs=yes', 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
      'Restart=on-failure', 'EnvironmentFile=-/etc/default/mesh-agent', `ExecStart=${process.execPath} ${MESH_JS} start --foreground`]) {
      expect(unit.split('\n')).toContain(line)
    }
    expect(unit).not.toMatch(/MemoryDenyWriteExecute/)
    const own = renderUnit(spec({ home: '/srv/mesh state' }), defaultDirs('system', '/root'))
    expect(own).toContain('ReadWritePaths="/srv/mesh state"')
    expect(own).not.toContain('StateDirectory=')
  })

  it('the env file carries MESH_HOME and the settings, quoted, and reads back the same', () => {
    const s = spec({ home: '/srv/a "b"', env: { api: '127.0.0.1:8000', relays: ['/ip4/1.2.3.4/tcp/1/p2p/X', '/ip4/5.6.7.8/tcp/2/p2p/Y'], threads: 1 } })
    const text = renderEnvFile(s)
    expect(text.split('\n')[0]).toBe(MARKER)
    expect(parseEnvFile(text)).toEqual({ MESH_HOME: '/srv/a "b"', MESH_API: '127.0.0.1:8000', MESH_RELAYS: '/ip4/1.2.3.4/tcp/1/p2p/X,/ip4/5.6.7.8/tcp/2/p2p/Y', MESH_THREADS: '1' })
  })
})

describe('install decision (pure)', () => {
  const files = serviceFiles(spec(), defaultDirs('system', '/root'))
  const same = files.map((f) => ({ content: f.content, mode: 0o100000 | f.mode }))
  it('nothing there: create everything', () => {
    expect(decideInstall(files, files.map(() => null))).toEqual({ kind: 'create', write: files })
  })
  it('same settings: unchanged', () => {
    expect(decideInstall(files, same)).toEqual({ kind: 'unchanged' })
  })
  it('another setting, or a loosened env file mode: update only what differs', () => {
    const other = serviceFiles(spec({ env: { threads: 1 } }), defaultDirs('system', '/root'))
    expect(decideInstall(other, same)).toEqual({ kind: 'update', write: [other[1]] })
    expect(decideInstall(files, same.map((f, i) => i === 1 ? { ...f, mode: 0o100644 } : f))).toEqual({ kind: 'update', write: [files[1]] })
  })
})

describe('install, status and uninstall', () => {
  it('says one line where no service can be installed', () => {
    expect(unsupportedReason('darwin', '/', false)).toMatch(/not supported on macOS yet/)
    expect(unsupportedReason('win32', '/', false)).toMatch(/needs Linux with systemd; win32 is not supported/)
    expect(unsupportedReason('linux', '/', false)).toMatch(/^systemd is not running on this machine \(PID 1 is .+\); run `mesh start` instead, or give --root DIR/)
    expect(unsupportedReason('linux', '/tmp/image', false)).toBeUndefined()
    expect(unsupportedReason('linux', '/', true)).toBeUndefined()
  })

  it('into an OS image (--root): real systemd-sysusers and systemctl --root enable; the env file is 0600 and ours; uninstall removes only what it wrote', async () => {
    const root = tmp()
    const dirs = defaultDirs('system', '/root', root)
    const t: ServiceTarget = { spec: spec({ env: { threads: 2 } }), dirs, root }
    const calls: string[] = []
    const run: Runner = async (f, a, ms) => { calls.push([f, ...a].join(' ')); return await execRunner(f, a, ms) }

    const first = await installService(t, run, { start: true })
    expect(first).toMatchObject({ decision: 'create', action: 'none', notStarted: expect.stringMatching(/installed into the image/) })
    const link = path.join(root, 'etc/systemd/system/multi-user.target.wants/mesh-agent.service')
    expect(fs.readlinkSync(link)).toBe('/etc/systemd/system/mesh-agent.service')
    const env = fs.statSync(path.join(root, 'etc/default/mesh-agent'))
    expect({ mode: (env.mode & 0o777).toString(8), uid: env.uid }).toEqual({ mode: '600', uid: process.getuid?.() })
    expect(fs.readFileSync(path.join(root, 'etc/passwd'), 'utf8')).toMatch(/^mesh:x:\d+:\d+:mesh agent:\/var\/lib\/mesh-agent:\/usr\/sbin\/nologin$/m)
    expect(await serviceState(t, run, false)).toMatchObject({ installed: true, enabled: true, active: null })
    // what doctor finds for the home the env file names, and only for it
    expect(servicesFor(t.spec.home, '/root', root).map((s) => [s.spec.scope, s.spec.instance, s.root])).toEqual([['system', undefined, root]])
    expect(servicesFor('/var/lib/other', '/root', root)).toEqual([])

    // same settings: nothing written, nothing run
    calls.length = 0
    // (the enable symlink points into the image's /etc, which snapshot would follow on the host)
    const files = (): unknown => [snapshot(dirs.envDir), snapshot(dirs.sysusersDir), fs.readFileSync(path.join(dirs.unitDir, 'mesh-agent.service'), 'utf8'), fs.readlinkSync(link)]
    const before = files()
    expect(await installService(t, run, { start: true })).toMatchObject({ decision: 'unchanged', written: [], action: 'none' })
    expect(calls).toEqual([])
    expect(files()).toEqual(before)

    // a file in the way that install did not write is refused, not overwritten
    const other = { ...t, spec: spec({ instance: 'x', home: defaultSystemHome('x') }) }
    fs.writeFileSync(path.join(dirs.envDir, 'mesh-agent@x'), 'MESH_HOME=/elsewhere\n')
    await expect(installService(other, run, { start: true })).rejects.toThrow(/mesh-agent@x exists and was not written by mesh; move it away first/)
    fs.rmSync(path.join(dirs.envDir, 'mesh-agent@x'))

    // a home the uninstall must not touch
    const home = path.join(root, 'var/lib/mesh-agent')
    fs.mkdirSync(home, { recursive: true }); fs.writeFileSync(path.join(home, 'config.json'), '{}')
    const removed = await uninstallService(t, run)
    expect(removed.removed.map((f) => path.relative(root, f)).sort()).toEqual(['etc/default/mesh-agent', 'etc/systemd/system/mesh-agent.service', 'etc/sysusers.d/mesh-agent.conf'])
    expect(fs.existsSync(link)).toBe(false)
    expect(fs.readFileSync(path.join(home, 'config.json'), 'utf8')).toBe('{}')
    expect(await uninstallService(t, run)).toEqual({ unit: 'mesh-agent.service', removed: [] })
  })

  it('on a live system (systemctl through the seam): first install starts, same settings do nothing, other settings rewrite and restart', async () => {
    const dir = tmp()
    const { home } = homeWithPool(tmp)
    const dirs: ServiceDirs = { unitDir: path.join(dir, 'units'), envDir: path.join(dir, 'default'), sysusersDir: path.join(dir, 'sysusers.d') }
    const calls: string[] = []
    const run: Runner = async (f, a) => { calls.push([f, ...a].join(' ')); return { code: 0, stdout: '', stderr: '' } }
    const t: ServiceTarget = { spec: spec({ home }), dirs, root: '/' }
    expect(await installService(t, run, { start: true })).toMatchObject({ decision: 'create', action: 'started' })
    expect(calls).toEqual([`systemd-sysusers ${dirs.sysusersDir}/mesh-agent.conf`, 'systemctl daemon-reload', 'systemctl enable mesh-agent.service', 'systemctl start mesh-agent.service'])

    calls.length = 0
    expect(await installService(t, run, { start: true })).toMatchObject({ decision: 'unchanged', action: 'none' })
    expect(calls).toEqual([])

    const changed = { ...t, spec: spec({ home, env: { api: '127.0.0.1:8000' } }) }
    const r = await installService(changed, run, { start: true })
    expect(r).toMatchObject({ decision: 'update', action: 'restarted', written: [path.join(dirs.envDir, 'mesh-agent')] })
    expect(calls).toEqual(['systemctl daemon-reload', 'systemctl enable mesh-agent.service', 'systemctl restart mesh-agent.service'])
    expect(parseEnvFile(fs.readFileSync(path.join(dirs.envDir, 'mesh-agent'), 'utf8')).MESH_API).toBe('127.0.0.1:8000')

    // a user unit: systemctl --user, no system user
    calls.length = 0
    const user = { ...t, spec: spec({ scope: 'user', instance: 'b', home }) }
    await installService(user, run, { start: true })
    expect(calls).toEqual(['systemctl --user daemon-reload', 'systemctl --user enable mesh-agent@b.service', 'systemctl --user start mesh-agent@b.service'])
  })

  it('a home without a device identity is installed and enabled but not started, with the command to run', async () => {
    const dir = tmp()
    const dirs: ServiceDirs = { unitDir: path.join(dir, 'units'), envDir: path.join(dir, 'default'), sysusersDir: path.join(dir, 'sysusers.d') }
    const calls: string[] = []
    const run: Runner = async (f, a) => { calls.push([f, ...a].join(' ')); return { code: 0, stdout: '', stderr: '' } }
    const r = await installService({ spec: spec({ home: tmp() }), dirs, root: '/' }, run, { start: true })
    expect(r.notStarted).toMatch(/has no device identity yet; run `sudo -u mesh mesh init --home \S+ --network-id ID --name NAME`, then `systemctl start mesh-agent.service`/)
    expect(calls.at(-1)).toBe('systemctl enable mesh-agent.service')
  })

  it('a systemctl that fails is one line naming the command and its reason', async () => {
    const dir = tmp()
    const dirs: ServiceDirs = { unitDir: path.join(dir, 'u'), envDir: path.join(dir, 'd'), sysusersDir: path.join(dir, 's') }
    const run: Runner = async (f) => f === 'systemctl' ? { code: 1, stdout: '', stderr: 'Failed to connect to bus: No such file or directory\nmore' } : { code: 0, stdout: '', stderr: '' }
    await expect(installService({ spec: spec({ scope: 'user', home: tmp() }), dirs, root: '/' }, run, { start: true }))
      .rejects.toThrow(/^systemctl --user daemon-reload failed: Failed to connect to bus: No such file or directory$/)
  })

  it('a running systemd: install, post-checks and uninstall for real', async (ctx) => {
    if (!systemdRunning()) ctx.skip(`PID 1 is ${fs.readFileSync('/proc/1/comm', 'utf8').trim()}, not systemd: systemctl start cannot work on this machine`)
    const { home } = homeWithPool(tmp)
    const t: ServiceTarget = { spec: spec({ instance: `vitest-${process.pid}`, home, runAs: 'root', env: { threads: 1 } }), dirs: defaultDirs('system', '/root'), root: '/' }
    try {
      expect(await installService(t, execRunner, { start: true })).toMatchObject({ action: 'started' })
      const checks = await postChecks(t, execRunner, undefined)
      expect(checks.filter((c) => !c.ok)).toEqual([])
    } finally {
      await uninstallService(t, execRunner)
    }
  }, 60_000)
})

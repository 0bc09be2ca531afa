// The pure parts of `mesh remote`: OS detection, the step machine, ssh's failures, the probe's parser,
// hosts.json, the shell scripts (checked by a real sh), the sudoers drop-in (checked by visudo).
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { addHost, hostsFile, readHosts } from '../../src/ops/remote/hosts.js'
import { detectOs, osFromUname, osFromWindowsEcho } from '../../src/ops/remote/os.js'
import { dropInPath, prepareScript, sudoersDropIn } from '../../src/ops/remote/prepare.js'
import { installScript, joinScript, nodeTooOld, parseProbe, probeScript } from '../../src/ops/remote/scripts.js'
import { parseTarget, shQuote, sshArgs, type SshResult } from '../../src/ops/remote/ssh.js'
import { explainSshFailure, newHostKey } from '../../src/ops/remote/ssh-errors.js'
import { nextState, STEP_STATES, STEP_TIMEOUT_MS } from '../../src/ops/remote/steps.js'
import { joinScriptPs1 } from '../../src/ops/remote/windows.js'
import { inProcess, meshFails, meshOk } from '../helpers/mesh-cli.js'
import { tempDirs } from '../helpers/pool-fixtures.js'

const tmp = tempDirs('mesh-remote-')

describe('OS detection', () => {
  it.each([['Linux\n', 'linux'], ['Darwin', 'macos'], ['MINGW64_NT-10.0-19045', 'windows'], ['MSYS_NT-10.0', 'windows'], ['CYGWIN_NT-10.0', 'windows'], ['FreeBSD', 'unknown'], ['', 'unknown']])('uname -s %j → %s', (out, os) => {
    expect(osFromUname(out)).toBe(os)
  })
  it('%OS% and $env:OS: Windows_NT is Windows, a Unix shell echoing %OS% back is not', () => {
    expect(osFromWindowsEcho('Windows_NT\r\n')).toBe('windows')
    expect(osFromWindowsEcho('%OS%')).toBe('unknown')
  })
  it('asks uname first, then cmd, then PowerShell, and stops at the first answer', async () => {
    const asked: string[] = []
    const answers: Record<string, { code: number, stdout: string }> = {
      'uname -s': { code: 1, stdout: '' }, 'echo %OS%': { code: 0, stdout: '%OS%' }
    }
    const r = await detectOs(async (c) => { asked.push(c); return answers[c] ?? { code: 0, stdout: 'Windows_NT\r\n' } })
    expect(r.os).toBe('windows')
    expect(asked).toEqual(['uname -s', 'echo %OS%', 'powershell -NoProfile -NonInteractive -Command "$env:OS"'])
    const unknown = await detectOs(async () => ({ code: 0, stdout: 'Plan9' }))
    expect(unknown).toEqual({ os: 'unknown', said: ['uname -s → "Plan9"', 'echo %OS% → "Plan9"', 'powershell -NoProfile -NonInteractive -Command "$env:OS" → "Plan9"'] })
  })
})

describe('the step machine', () => {
  it('Linux and macOS walk every step to SUCCESS', () => {
    for (const os of ['linux', 'macos'] as const) {
      const seen: string[] = []
      let s: string = 'SSH_TESTING'
      while (STEP_STATES.includes(s as never)) { seen.push(s); s = nextState(s as never, 'done', os) }
      expect([...seen, s]).toEqual([...STEP_STATES, 'SUCCESS'])
    }
  })
  it('Windows stops after the key with MANUAL_NEEDED; an unknown OS or any failure with EXIT_ERROR', () => {
    expect(nextState('KEY_GENERATING', 'done', 'windows')).toBe('MANUAL_NEEDED')
    expect(nextState('KEY_GENERATING', 'manual', 'windows')).toBe('MANUAL_NEEDED')
    expect(nextState('OS_DETECTING', 'done', 'unknown')).toBe('EXIT_ERROR')
    for (const s of STEP_STATES) expect(nextState(s, 'failed', 'linux')).toBe('EXIT_ERROR')
    expect(nextState('INSTALLING', 'skipped', 'linux')).toBe('CONNECTING')
  })
  it('has the seed\'s deadlines', () => {
    expect(STEP_TIMEOUT_MS).toMatchObject({ SSH_TESTING: 10_000, OS_DETECTING: 15_000, INSTALLING: 180_000, CONNECTING: 60_000 })
  })
})

describe('ssh', () => {
  it('takes user@host and refuses what ssh would read as an option', () => {
    expect(sshArgs(parseTarget('pi@box.lan', 2222, '/k'), 'true')).toEqual([
      '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'StrictHostKeyChecking=accept-new', '-p', '2222', '-i', '/k', '-o', 'IdentitiesOnly=yes', '--', 'pi@box.lan', 'true'])
    for (const bad of ['-oProxyCommand=touch /tmp/x', 'a b', '', 'pi@', 'pi@-x']) expect(() => parseTarget(bad), bad).toThrow(/is not user@host or host/)
    expect(() => parseTarget('box', 70000)).toThrow(/--port must be 1-65535/)
  })
  const fail = (stderr: string, over: Partial<SshResult> = {}): SshResult => ({ code: 255, stdout: '', stderr, timedOut: false, ms: 1, ...over })
  it.each([
    ['root@h: Permission denied (publickey).\n', /^root@h: Permission denied \(publickey\)\.$/, /ssh-copy-id/],
    ['ssh: connect to host 10.0.0.9 port 22: Connection timed out\n', /Connection timed out/, /that its SSH server runs/],
    ['ssh: connect to host h port 2: Connection refused\n', /Connection refused/, /--port/],
    ['ssh: Could not resolve hostname nope: Name or service not known\n', /Could not resolve hostname/, /address/],
    ['@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@\nOffending ECDSA key in /k:3\nHost key for h has changed and you have requested strict checking.\nHost key verification failed.\n',
      /^the host key of h has changed \(ssh: Host key for h has changed and you have requested strict checking\. Offending ECDSA key in \/k:3\)$/, /ssh-keygen -R/],
    ['debug1: lots\nkex_exchange_identification: read: Connection reset by peer\n', /Connection reset/, /SSH server/],
    ['', /exited with status 255 and said nothing/, /ssh h true/]
  ])('explains %j', (stderr, cause, fix) => {
    const f = explainSshFailure(fail(stderr), 'h', 10_000)
    expect(f?.cause).toMatch(cause)
    expect(f?.fix).toMatch(fix)
    expect(`${f?.cause ?? ''}${f?.fix ?? ''}`).not.toMatch(/\n/)
  })
  it('a kill is a timeout; a command that ran is no ssh failure', () => {
    expect(explainSshFailure(fail('', { code: null, timedOut: true }), 'h', 10_000)?.cause).toBe('no answer from h within 10 s (ssh was killed)')
    expect(explainSshFailure(fail('oops', { code: 1 }), 'h', 10_000)).toBeUndefined()
  })
  it('reports a host key seen for the first time (from ssh -v), not one already known', () => {
    const v = 'debug1: Server host key: ssh-ed25519 SHA256:abc/def+1\nWarning: Permanently added \'h\' (ED25519) to the list of known hosts.\n'
    expect(newHostKey(v)).toEqual({ type: 'ssh-ed25519', fingerprint: 'SHA256:abc/def+1' })
    expect(newHostKey('debug1: Server host key: ssh-ed25519 SHA256:abc\n')).toBeUndefined()
  })
})

describe('the probe and the scripts', () => {
  it('parses what the probe prints, with and without mesh and an identity', () => {
    expect(parseProbe('node=/usr/bin/node\nnode_version=20.20.2\nmesh=\nhostname=box\nhome=/home/pi\n')).toEqual({
      node: '/usr/bin/node', nodeVersion: '20.20.2', mesh: undefined, meshVersion: undefined, build: undefined, hostname: 'box', home: '/home/pi', status: undefined
    })
    const status = { nodeId: '12D3KooWX', name: 'box', networkId: 'lan', source: 'agent', pools: [{ poolId: 'ab', state: 'member', role: 'member', extra: 1 }] }
    const r = parseProbe(`node=/n\nmesh=/m\nmesh_version=0.1.0\nbuild=ff\n---mesh-pool-status---\n${JSON.stringify(status)}\n`)
    expect(r).toMatchObject({ mesh: '/m', meshVersion: '0.1.0', build: 'ff', status: { nodeId: '12D3KooWX', source: 'agent', pools: [{ poolId: 'ab', state: 'member' }] } })
    expect(parseProbe('mesh=/m\n---mesh-pool-status---\n').status).toBeUndefined()
  })
  it('Node must be 20.19 or newer', () => {
    expect(nodeTooOld('20.19.0')).toBeUndefined()
    expect(nodeTooOld('22.1.0')).toBeUndefined()
    expect(nodeTooOld('20.18.1')).toBe('Node.js 20.18.1 is too old')
    expect(nodeTooOld('18.0.0')).toBe('Node.js 18.0.0 is too old')
    expect(nodeTooOld(undefined)).toMatch(/not installed/)
  })
  it('quotes any value into one sh word', () => {
    for (const v of ['plain', "it's", 'a b', '$(touch /x)', '`x`', '"q"', 'mpk1_-A_b', '']) {
      expect(execFileSync('sh', ['-c', `printf %s ${shQuote(v)}`], { encoding: 'utf8' })).toBe(v)
    }
  })
  it('every script is valid sh; the probe runs here and parses', () => {
    const join = joinScript({
      node: '/usr/bin/node', mesh: "/home/o'brien/.local/bin/mesh", init: { networkId: 'lan', name: 'box 1' }, dropPending: 'ab'.repeat(32),
      join: { poolId: 'ab'.repeat(32), rootPublicKey: '-x'.repeat(32), poolName: 'office', key: 'mpk1_-abc' }, run: 'service', restart: true
    })
    for (const s of [probeScript(), join, installScript({ sha256: 'ab'.repeat(32), build: 'cd'.repeat(32), dirName: '0.1.0-cdcdcdcdcdcd' })]) {
      execFileSync('sh', ['-n', '-c', s])
    }
    expect(join).toContain('--pool-root-pubkey=-x-x') // a key starting with '-' stays the flag's value
    expect(join).toContain('--token=mpk1_-abc')
    const home = tmp()
    const facts = parseProbe(execFileSync('sh', ['-c', probeScript()], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: home } }))
    expect(facts.node).toBe(execFileSync('sh', ['-c', 'command -v node'], { encoding: 'utf8' }).trim())
    expect(facts.nodeVersion).toBe(process.versions.node)
    expect(facts.home).toBe(home)
  })
  it('the Windows join script has the exact commands and the key, quoted for PowerShell', () => {
    const ps = joinScriptPs1({ networkId: 'lan', name: "bob's pc", poolId: 'ab', rootPublicKey: 'cd', poolName: 'office', key: 'mpk1_k', expiresAt: '2026-01-02T00:00:00.000Z' })
    expect(ps).toContain("mesh init --network-id 'lan' --name 'bob''s pc'")
    expect(ps).toContain("mesh pool-join --pool-id 'ab' --pool-root-pubkey='cd' --name 'office' --token='mpk1_k' --start --wait 60")
    expect(ps.split('\r\n').every(l => !l.includes('\n'))).toBe(true)
  })
})

describe('mesh remote prepare: the sudoers drop-in', () => {
  it('allows exactly loginctl enable-linger for the user and passes visudo -cf', () => {
    const text = sudoersDropIn('pi', '/usr/bin/loginctl')
    expect(text.split('\n').filter(l => l !== '' && !l.startsWith('#'))).toEqual(['pi ALL=(root) NOPASSWD: /usr/bin/loginctl enable-linger pi'])
    expect(dropInPath('first.last')).toBe('/etc/sudoers.d/mesh-agent-first_last')
    const f = path.join(tmp(), 'dropin')
    fs.writeFileSync(f, text, { mode: 0o440 })
    if (fs.existsSync('/usr/sbin/visudo')) execFileSync('/usr/sbin/visudo', ['-cf', f], { stdio: 'pipe' })
    execFileSync('sh', ['-n', '-c', prepareScript('pi', '/usr/bin/loginctl')])
    expect(prepareScript('pi', '/usr/bin/loginctl')).toMatch(/sudo visudo -cf "\$t"[\s\S]*install -m 0440[\s\S]*sudo -n -l/)
  })
  it('refuses names sudoers could misread', () => {
    for (const bad of ['root ALL', 'ALL=(ALL)', '', 'a'.repeat(40)]) expect(() => sudoersDropIn(bad, '/usr/bin/loginctl')).toThrow(/not a user name/)
    expect(() => sudoersDropIn('pi', 'loginctl; rm')).toThrow(/not an absolute path/)
  })
})

describe('hosts.json', () => {
  it('remote add writes it (0600), updates the same host and port, remote list shows it', async () => {
    const home = tmp()
    await meshOk(inProcess, home, ['remote', 'add', 'pi@10.0.0.5', '--name', 'pi'])
    await meshOk(inProcess, home, ['remote', 'add', 'pi@10.0.0.5', '--port', '2222'])
    expect(await meshOk(inProcess, home, ['remote', 'add', 'pi@10.0.0.5', '--name', 'pi-2', '--service'])).toBe('updated pi@10.0.0.5; 2 host(s) in hosts.json\n')
    expect(await meshOk(inProcess, home, ['remote', 'list'])).toBe('pi@10.0.0.5  pi-2  service\npi@10.0.0.5  port 2222\n')
    expect(fs.statSync(hostsFile(home)).mode & 0o777).toBe(0o600)
    expect(readHosts(home).hosts).toEqual([{ destination: 'pi@10.0.0.5', name: 'pi-2', service: true }, { destination: 'pi@10.0.0.5', port: 2222 }])
  })
  it.each([
    ['{"version":1,"hosts":[{"destination":"-oProxyCommand=x"}]}', /hosts\.json is corrupt \(hosts\.0\.destination: not user@host\)/],
    ['{"version":1,"hosts":[{"destination":"a@b","port":0}]}', /hosts\.json is corrupt \(hosts\.0\.port/],
    ['{"version":1,"hosts":[{"destination":"a@b","extra":1}]}', /hosts\.json is corrupt/],
    ['{"version":1,"hosts":[{"destination":"a@b"},{"destination":"a@b","port":22}]}', /hosts\.json is corrupt \(a@b is listed twice\)/],
    ['{"version":2,"hosts":[]}', /hosts\.json is corrupt \(version/],
    ['not json', /hosts\.json/]
  ])('a broken hosts.json %s is one line, and is left as it was', async (content, message) => {
    const home = tmp()
    fs.writeFileSync(hostsFile(home), content)
    await meshFails(inProcess, home, ['remote', 'list'], message)
    await meshFails(inProcess, home, ['remote', 'add', 'x@y'], message)
    await meshFails(inProcess, home, ['remote', 'provision-all'], message)
  })
  it('bad flags are one line; provision-all with no hosts says how to add them', async () => {
    const home = tmp()
    await meshFails(inProcess, home, ['remote', 'provision', '-oProxyCommand=x'], /Unknown arguments/)
    await meshFails(inProcess, home, ['remote', 'provision'], /missing user@host/)
    await meshFails(inProcess, home, ['remote', 'add', 'a@b', '--pool', 'xyz'], /--pool must be a Pool ID/)
    await meshFails(inProcess, home, ['remote', 'provision-all'], /lists no hosts; add them with `mesh remote add user@host`/)
    expect(addHost(home, { destination: 'a@b' }).added).toBe(true)
  })
})

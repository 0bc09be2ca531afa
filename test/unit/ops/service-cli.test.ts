import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { child, inProcess, meshFails, meshOk } from '../../helpers/mesh-cli.js'
import { homeWithPool, tempDirs } from '../../helpers/pool-fixtures.js'
import { systemdRunning } from '../../../src/ops/service/systemd.js'

const tmp = tempDirs('mesh-service-cli-')

describe('mesh service (the built CLI)', () => {
  it('install --root into an image, status, a second install changes nothing, other settings rewrite, uninstall leaves MESH_HOME', async () => {
    const { home } = homeWithPool(tmp)
    const root = tmp()
    const args = ['service', 'install', '--root', root, '--threads', '1']
    expect(await meshOk(child, home, args)).toBe(`installed mesh-agent.service (MESH_HOME ${home})\n`)
    const unit = fs.readFileSync(path.join(root, 'etc/systemd/system/mesh-agent.service'), 'utf8')
    expect(unit).toContain(`ReadWritePaths=${home}`)
    expect(unit).toMatch(/^ExecStart=\S+node\S* \S+\/dist\/cli\/mesh\.js start --foreground$/m)
    expect(fs.readFileSync(path.join(root, 'etc/default/mesh-agent'), 'utf8')).toContain('MESH_THREADS="1"')

    const status = JSON.parse(await meshOk(child, home, ['service', 'status', '--root', root, '--json'])) as Record<string, unknown>
    expect(status).toMatchObject({ unit: 'mesh-agent.service', installed: true, enabled: true, active: null, home })

    expect(await meshOk(child, home, args)).toBe('mesh-agent.service is installed with these settings; nothing changed (MESH_HOME ' + home + ')\n')
    expect(await meshOk(child, home, ['service', 'install', '--root', root, '--threads', '2'])).toBe(`settings changed: rewrote mesh-agent (MESH_HOME ${home})\n`)

    const before = fs.readdirSync(home).sort()
    expect(await meshOk(child, home, ['service', 'uninstall', '--root', root])).toMatch(/^removed mesh-agent.service: .*mesh-agent.service, .*etc\/default\/mesh-agent, .*mesh-agent.conf\n$/)
    expect(fs.readdirSync(home).sort()).toEqual(before)
    expect(await meshOk(child, home, ['service', 'status', '--root', root])).toBe('mesh-agent.service is not installed (mesh service install)\n')
    expect(await meshOk(child, home, ['service', 'uninstall', '--root', root])).toBe('mesh-agent.service is not installed; nothing to remove\n')
  }, 60_000)

  it('bad input: one line, non-zero exit, nothing written', async () => {
    const { home } = homeWithPool(tmp)
    const root = tmp()
    const cases: Array<[string[], RegExp]> = [
      [['service', 'install', '--root', root, '--name', 'two words'], /--name "two words" must be letters, digits/],
      [['service', 'install', '--root', root, '--threads', '0'], /threads .* must be a whole number from 1 to 1024, not 0/],
      [['service', 'install', '--root', root, '--model', path.join(root, 'nope.gguf')], /model file .*nope\.gguf does not exist/],
      [['service', 'install', '--root', root, '--api', '0.0.0.0:8000'], /would be open to the network: create a key first/],
      [['service', 'install', '--root', root, '--control-plane', 'ftp://x'], /is not an http\(s\):\/\/HOST:PORT URL/],
      [['service', 'install', '--root', root, '--run-as', 'Root!'], /--run-as "Root!" is not a user name/],
      [['service', 'install', '--root', path.join(root, 'missing')], /--root .*missing is not a directory/],
      [['service', 'install', '--user', '--root', root], /--root installs a system service into an image; drop --user/],
      [['service'], /say which service command to run/]
    ]
    for (const [args, message] of cases) await meshFails(inProcess, home, args, message)
    expect(fs.readdirSync(root)).toEqual([])
  })

  it('on a machine without systemd, install says so in one line', async (ctx) => {
    if (systemdRunning()) ctx.skip('systemd runs here: this case is for machines without it')
    const { home } = homeWithPool(tmp)
    await meshFails(inProcess, home, ['service', 'install'], /^mesh: systemd is not running on this machine \(PID 1 is .+\); run `mesh start` instead, or give --root DIR/)
  })
})

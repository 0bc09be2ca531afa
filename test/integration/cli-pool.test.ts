// The built `mesh` executable as a child process, each command once for real and the main bad inputs.
// The long tables of bad input run the same code in-process: test/unit/cli-pool.test.ts.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { handleCertRequest } from '../../src/pool/admin.js'
import { fromHex } from '../../src/pool/encoding.js'
import { loadDevice } from '../../src/pool/identity.js'
import { certRequestFor, joinPool } from '../../src/pool/member.js'
import { configFile, deviceKeyFile, poolFile, rootKeyFile } from '../../src/pool/paths.js'
import { derivePoolId } from '../../src/pool/pool-id.js'
import { child, meshFails, meshOk } from '../helpers/mesh-cli.js'
import { homeWithPool, tempDirs } from '../helpers/pool-fixtures.js'

const tmp = tempDirs('mesh-cli-')

describe('mesh init (executable)', () => {
  it('creates config.json and a 0600 key and prints the node id; a second run is refused', async () => {
    const home = tmp()
    const out = JSON.parse(await meshOk(child, home, ['init', '--network-id', 'lan', '--name', 'laptop', '--json'])) as { nodeId: string }
    expect(out).toMatchObject({ name: 'laptop', networkId: 'lan', home })
    expect(out.nodeId).toMatch(/^12D3KooW/)
    expect(loadDevice(home).nodeId).toBe(out.nodeId)
    expect(fs.statSync(deviceKeyFile(home)).mode & 0o777).toBe(0o600)
    expect(fs.existsSync(configFile(home))).toBe(true)
    await meshFails(child, home, ['init', '--network-id', 'lan', '--name', 'laptop'], /already has a device identity; use --force/)
    expect(await meshOk(child, home, ['pool-list'])).toMatch(/No pools yet/)
  })
  it('takes NETWORK_ID and DEVICE_NAME from the environment', async () => {
    const home = tmp()
    await meshOk(child, home, ['init'], { NETWORK_ID: 'office-lan', DEVICE_NAME: 'desk' })
    expect(loadDevice(home)).toMatchObject({ networkId: 'office-lan', name: 'desk' })
  })
  it('--force never replaces a key that pools depend on', async () => {
    const { home, pool } = homeWithPool(tmp, 'box', 'token')
    await meshFails(child, home, ['init', '--network-id', 'lan', '--name', 'box', '--force'], new RegExp(`pools ${pool?.record.poolId.slice(0, 16) ?? ''} depend on it`))
  })
  it('missing flag; unwritable MESH_HOME (a path under a regular file)', async () => {
    const r = await meshFails(child, tmp(), ['init', '--name', 'box'], /missing --network-id \(or set NETWORK_ID\)/)
    expect(r.code).toBe(2)
    const dir = tmp()
    fs.writeFileSync(path.join(dir, 'file'), 'keep')
    await meshFails(child, path.join(dir, 'file', 'home'), ['init', '--network-id', 'lan', '--name', 'box'], /cannot write .*device\.key \(ENOTDIR\); check that MESH_HOME is writable/)
    expect(fs.readFileSync(path.join(dir, 'file'), 'utf8')).toBe('keep')
  })
  it('pool commands before init say to run it', async () => {
    await meshFails(child, tmp(), ['pool-create', '--name', 'office'], /has no device identity; run `mesh init --network-id ID --name NAME` first/)
  })
})

describe('pools (executable)', () => {
  it('pool-create prints a Pool ID derived from the printed root key, a token and the join command', async () => {
    const { home } = homeWithPool(tmp)
    const text = await meshOk(child, home, ['pool-create', '--name', 'office'])
    const id = /Pool ID: +([0-9a-f]{64})/.exec(text)?.[1] as string
    const key = /Pool Root Public Key: +([0-9a-f]{64})/.exec(text)?.[1] as string
    expect(derivePoolId(fromHex(key, 32) as Uint8Array)).toBe(id)
    expect(text).toMatch(/Join token: +[A-Za-z0-9_-]{43}\n/)
    expect(text).toContain(`mesh pool-join --pool-id ${id} --pool-root-pubkey=${key} --name "office" --token=`)
    expect(fs.statSync(rootKeyFile(home, id)).mode & 0o777).toBe(0o600)
    const list = JSON.parse(await meshOk(child, home, ['pool-list', '--json'])) as unknown[]
    expect(list).toMatchObject([{ poolId: id, name: 'office', role: 'admin', state: 'member', policy: 'token', certificate: { status: 'valid', roles: ['admin', 'member'] } }])
  })
  it('pool-create --policy open warns on stderr; POOL_NAME supplies the name', async () => {
    const { home } = homeWithPool(tmp)
    const r = await child(home, ['pool-create', '--policy', 'open', '--json'], { POOL_NAME: 'demo' })
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/WARNING: policy "open" signs a certificate for ANY device/)
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'demo', policy: 'open' })
  })
  it('pool-join records the pool pending its certificate; a mismatched id or bad key is refused', { timeout: 90_000 }, async () => {
    const { pool: a } = homeWithPool(tmp, 'admin', 'token')
    const { pool: b } = homeWithPool(tmp, 'admin2', 'token')
    const { home } = homeWithPool(tmp, 'member')
    if (a === undefined || b === undefined) throw new Error('setup')
    await meshFails(child, home, ['pool-join', '--pool-id', a.record.poolId, '--pool-root-pubkey', b.rootPublicKey, '--name', 'office'], /does not match the pool root public key/)
    await meshFails(child, home, ['pool-join', '--pool-id', a.record.poolId, '--pool-root-pubkey', a.rootPublicKey.slice(1), '--name', 'office'], /root public key must be 64 hex digits/)
    const out = await meshOk(child, home, ['pool-join', '--pool-id', a.record.poolId.slice(0, 16), '--pool-root-pubkey', a.rootPublicKey, '--name', 'office', '--token', a.joinToken])
    expect(out).toContain(`Recorded pool ${a.record.poolId}`)
    const listed = await meshOk(child, home, ['pool-list'])
    expect(listed).toMatch(new RegExp(`${a.record.poolId.slice(0, 16)} +office +member +pending-certificate +waiting for the admin`))
    // no agent runs here: stored records, and a note that says so
    expect(listed).toContain('Agent not running: these are the stored records only')
    expect(JSON.parse(await meshOk(child, home, ['pool-list', '--json']))).toMatchObject([{ poolId: a.record.poolId, source: 'stored', ring: null, peers: null }])
  })
  it('corrupt config.json and a tampered certificate byte are reported with the file', async () => {
    const { home, pool } = homeWithPool(tmp, 'box', 'manual')
    const file = poolFile(home, pool?.record.poolId ?? '')
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { certificate: string }
    const cert = Buffer.from(json.certificate, 'base64url'); cert[90] = (cert[90] as number) ^ 1
    fs.writeFileSync(file, JSON.stringify({ ...json, certificate: cert.toString('base64url') }))
    await meshFails(child, home, ['pool-status'], new RegExp(`${file} is corrupt \\(certificate has a bad signature`))
    fs.writeFileSync(configFile(home), '{"version": 1, "netw')
    await meshFails(child, home, ['pool-list'], new RegExp(`${configFile(home)} is corrupt \\(it is not valid JSON\\)`))
  })
})

describe('admin decisions (executable)', () => {
  // eight processes: give a loaded machine time
  it('pool-approve, pool-reject, pool-policy, pool-revoke, pool-status', { timeout: 90_000 }, async () => {
    const { home: admin, pool } = homeWithPool(tmp, 'admin', 'manual')
    if (pool === undefined) throw new Error('setup')
    const poolId = pool.record.poolId
    const members = [homeWithPool(tmp, 'm1').home, homeWithPool(tmp, 'm2').home]
    for (const m of members) {
      joinPool(m, { poolId, rootPublicKey: pool.rootPublicKey, name: 'office', now: Date.now() })
      // what the admin's agent does when a request arrives by beacon
      expect(handleCertRequest(admin, certRequestFor(m, poolId, Date.now()).bytes, Date.now()).decision).toEqual({ kind: 'pending' })
    }
    const [id1, id2] = members.map(m => loadDevice(m).nodeId) as [string, string]
    const status = await meshOk(child, admin, ['pool-status'])
    expect(status).toContain('Pending requests (2):')
    expect(status).toContain(id2)

    const approved = JSON.parse(await meshOk(child, admin, ['pool-approve', id1, '--json'])) as Record<string, string>
    expect(approved).toMatchObject({ poolId, nodeId: id1, name: 'm1' })
    expect(await meshOk(child, admin, ['pool-reject', id2, '--pool-id', poolId.slice(0, 16)])).toMatch(/Rejected/)
    expect(await meshOk(child, admin, ['pool-policy', '--pool-id', poolId, '--policy', 'token'])).toMatch(/now signs join requests by the token policy/)
    const revoked = JSON.parse(await meshOk(child, admin, ['pool-revoke', id1, '--json'])) as unknown
    expect(revoked).toMatchObject({ sequence: 1, revokedSerials: [approved.serial], revokedNodeIds: [id1] })

    const st = JSON.parse(await meshOk(child, admin, ['pool-status', '--json'])) as { pools: unknown[] }
    expect(st.pools).toMatchObject([{ policy: 'token', revocationSequence: 1, revokedNodeIds: [id1], pending: [], members: [{ name: 'admin' }] }])
  })
})

describe('the command line (executable)', () => {
  it('an unknown command fails on one line; --help works', async () => {
    await meshFails(child, tmp(), ['frobnicate'], /unknown command "frobnicate"; see mesh --help/)
    expect(await meshOk(child, tmp(), ['pool-join', '--help'])).toMatch(/--pool-root-pubkey/)
  })
  it('--version prints package.json\'s version (the CLI runs from a bundle that has no node_modules of its own)', async () => {
    const { version } = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { version: string }
    expect(await meshOk(child, tmp(), ['--version'])).toBe(`${version}\n`)
  })
})

// Every bad input of the identity and pool commands, through runCli in-process with captured streams
// (the executable itself is exercised in test/integration/cli-pool.test.ts).
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { handleCertRequest } from '../../src/pool/admin.js'
import { loadDevice } from '../../src/pool/identity.js'
import { certRequestFor, joinPool } from '../../src/pool/member.js'
import { configFile, deviceKeyFile, poolFile, rootKeyFile } from '../../src/pool/paths.js'
import { newJoinToken } from '../../src/pool/policy.js'
import { inProcess, meshFails, meshOk } from '../helpers/mesh-cli.js'
import { homeWithPool, snapshot, tempDirs } from '../helpers/pool-fixtures.js'

const tmp = tempDirs('mesh-clip-')
const ID = '602e587a5e549df0335ddddde1d7a73e163116015dfd047d071640f36e74e00a'
const KEY = '08b75d02170a95193f595961eec988e11e103fbea60ba6c607570550dc859150'
const NODE = '12D3KooWH5kaNWcKkiFnSZa3tWf4UzSaoGVM19UqNR4jSyGQUwjN'

describe('mesh init: bad flags', () => {
  it.each([
    [['init', '--network-id', 'lan'], /missing --name \(or set DEVICE_NAME\)/],
    [['init', '--network-id', '', '--name', 'box'], /missing --network-id/],
    [['init', '--network-id', 'has space', '--name', 'box'], /network id must be 1-64 letters/],
    [['init', '--network-id', 'x'.repeat(65), '--name', 'box'], /network id must be/],
    [['init', '--network-id', 'lan', '--name', 'x'.repeat(65)], /device name is longer than 64 bytes/],
    [['init', '--network-id', 'lan', '--name', ' padded'], /device name has leading or trailing spaces/],
    [['init', '--network-id', 'lan', '--name', 'two\nlines'], /device name contains control characters/],
    [['init', '--network-id', 'lan', '--name', 'a', '--name', 'b'], /--name is given more than once/],
    [['init', '--network-id', 'lan', '--name', 'box', '--bogus'], /Unknown argument: bogus/]
  ])('%j', async (args, message) => {
    const r = await meshFails(inProcess, tmp(), args, message)
    expect(r.code).toBe(2)
  })
})

describe('commands that need init, before it', () => {
  it.each([
    [['pool-create', '--name', 'office']],
    [['pool-join', '--pool-id', ID, '--pool-root-pubkey', KEY, '--name', 'office']],
    [['pool-list']],
    [['pool-status']],
    [['pool-approve', NODE]],
    [['pool-reject', NODE]],
    [['pool-revoke', NODE]],
    [['pool-policy', '--pool-id', ID, '--policy', 'manual']]
  ])('%j', async (args) => {
    const home = tmp()
    fs.writeFileSync(path.join(home, 'unrelated'), 'x')
    await meshFails(inProcess, home, args, /has no device identity; run `mesh init --network-id ID --name NAME` first/)
  })
})

describe('mesh pool-create: bad flags', () => {
  it.each([
    [['pool-create'], /missing --name \(or set POOL_NAME\)/],
    [['pool-create', '--name'], /missing --name/],
    [['pool-create', '--name', 'x', '--policy', 'everyone'], /policy must be one of token, manual, open \(got "everyone"\)/]
  ])('%j', async (args, message) => {
    await meshFails(inProcess, homeWithPool(tmp).home, args, message)
  })
})

describe('mesh pool-join: bad input', () => {
  const { pool: a } = homeWithPool(tmp, 'admin-a', 'token')
  const { pool: b } = homeWithPool(tmp, 'admin-b', 'token')
  if (a === undefined || b === undefined) throw new Error('setup')
  const id = a.record.poolId
  const key = a.rootPublicKey
  it.each([
    [['--pool-id', id, '--pool-root-pubkey', b.rootPublicKey, '--name', 'x'], /Pool ID [0-9a-f]{64} does not match the pool root public key \(which gives [0-9a-f]{64}\)/],
    [['--pool-id', b.record.poolId.slice(0, 16), '--pool-root-pubkey', key, '--name', 'x'], /does not match the pool root public key/],
    [['--pool-id', id.slice(0, 15), '--pool-root-pubkey', key, '--name', 'x'], /Pool ID must be 64 hex digits, or a unique prefix of at least 16/],
    [['--pool-id', id + '0', '--pool-root-pubkey', key, '--name', 'x'], /Pool ID must be 64 hex digits/],
    [['--pool-id', 'z' + id.slice(1), '--pool-root-pubkey', key, '--name', 'x'], /Pool ID must be 64 hex digits/],
    [['--pool-id', id, '--pool-root-pubkey', key.slice(2), '--name', 'x'], /root public key must be 64 hex digits/],
    [['--pool-id', id, '--pool-root-pubkey', 'g' + key.slice(1), '--name', 'x'], /root public key must be 64 hex digits/],
    [['--pool-id', id, '--pool-root-pubkey', Buffer.from(key, 'hex').toString('base64'), '--name', 'x'], /root public key must be 64 hex digits/],
    [['--pool-id', id, '--pool-root-pubkey', key, '--name', 'x', '--token', a.joinToken.slice(1)], /join token must be the 43 base64url characters/],
    [['--pool-id', id, '--pool-root-pubkey', key, '--name', 'x', '--token', a.joinToken.slice(0, -1) + '+'], /join token must be/],
    [['--pool-id', id, '--pool-root-pubkey', key, '--name', 'x', '--token', ''], /missing --token/],
    [['--pool-root-pubkey', key, '--name', 'x'], /missing --pool-id/],
    [['--pool-id', id, '--name', 'x'], /missing --pool-root-pubkey/],
    [['--pool-id', id, '--pool-root-pubkey', key], /missing --name \(or set POOL_NAME\)/]
  ])('%j', async (args, message) => {
    await meshFails(inProcess, homeWithPool(tmp, 'member').home, ['pool-join', ...args], message)
  })
  it('takes a token that starts with \'-\' as --token=T (tokens from older pools can), and new tokens never start so', async () => {
    const dashed = '-' + a.joinToken.slice(1)
    const { home } = homeWithPool(tmp, 'member')
    await meshOk(inProcess, home, ['pool-join', '--pool-id', id, `--pool-root-pubkey=${key}`, '--name', 'office', `--token=${dashed}`])
    for (let i = 0; i < 2000; i++) expect(newJoinToken().startsWith('-')).toBe(false)
    // the join line pool-create prints survives any token: flag=value throughout
    const created = JSON.parse(await meshOk(inProcess, homeWithPool(tmp, 'admin-c').home, ['pool-create', '--name', 'c', '--json'])) as { joinCommand: string }
    expect(created.joinCommand).toMatch(/ --pool-root-pubkey=[0-9a-f]{64} .* --token=[A-Za-z0-9_-]{43}$/)
  })
  it('twice is refused', async () => {
    const { home } = homeWithPool(tmp, 'member')
    await meshOk(inProcess, home, ['pool-join', '--pool-id', id, '--pool-root-pubkey', key, '--name', 'office'])
    await meshFails(inProcess, home, ['pool-join', '--pool-id', id, '--pool-root-pubkey', key, '--name', 'office'], /is already on this device/)
    // the admin's own pool too
    const { home: admin, pool } = homeWithPool(tmp, 'admin', 'token')
    await meshFails(inProcess, admin, ['pool-join', '--pool-id', pool?.record.poolId ?? '', '--pool-root-pubkey', pool?.rootPublicKey ?? '', '--name', 'x'], /already on this device/)
  })
})

describe('corrupt, truncated or hand-edited files', () => {
  it('config.json and keys/device.key', async () => {
    const { home } = homeWithPool(tmp)
    const cfg = fs.readFileSync(configFile(home), 'utf8')
    const key = fs.readFileSync(deviceKeyFile(home), 'utf8')
    const cases: Array<[string, string, RegExp]> = [
      [configFile(home), cfg.slice(0, 20), /config\.json is corrupt \(it is not valid JSON\)/],
      [configFile(home), '', /config\.json is corrupt \(it is empty\)/],
      [configFile(home), cfg.replace('"name": "box"', '"name": 7'), /config\.json is corrupt \(name: /],
      [configFile(home), cfg.replace('"version": 1', '"version": 2'), /config\.json is corrupt \(version: /],
      [deviceKeyFile(home), key.replace(/"seed": "[0-9a-f]{4}/, '"seed": "0000'), /config\.json is corrupt \(nodeId does not match .*device\.key\)/],
      [deviceKeyFile(home), key.replace(/"seed": "[0-9a-f]{2}/, '"seed": "'), /device\.key is corrupt \(seed is not 64 hex digits\)/],
      [deviceKeyFile(home), '{}', /device\.key is corrupt \(not a mesh key file\)/]
    ]
    for (const [file, content, message] of cases) {
      fs.writeFileSync(file, content)
      for (const args of [['pool-list'], ['pool-status'], ['pool-create', '--name', 'x']]) await meshFails(inProcess, home, args, message)
      fs.writeFileSync(configFile(home), cfg)
      fs.writeFileSync(deviceKeyFile(home), key)
    }
    fs.rmSync(deviceKeyFile(home))
    await meshFails(inProcess, home, ['pool-list'], /device\.key is corrupt \(it is missing but config\.json exists\)/)
  })
  it('pool records and root keys', async () => {
    const { home, pool } = homeWithPool(tmp, 'box', 'manual')
    const poolId = pool?.record.poolId ?? ''
    const file = poolFile(home, poolId)
    const good = fs.readFileSync(file, 'utf8')
    const edit = (f: (j: Record<string, unknown>) => void): string => { const j = JSON.parse(good) as Record<string, unknown>; f(j); return JSON.stringify(j) }
    const flipCert = (i: number) => (j: Record<string, unknown>) => {
      const c = Buffer.from(j.certificate as string, 'base64url'); c[i] = (c[i] as number) ^ 1; j.certificate = c.toString('base64url')
    }
    const cases: Array<[string, RegExp]> = [
      [good.slice(0, good.length - 10), /is corrupt \(it is not valid JSON\)/],
      [edit(j => { j.policy = 'everyone' }), /is corrupt \(policy: /],
      [edit(j => { j.role = 'owner' }), /is corrupt \(role: /],
      [edit(j => { j.rootPublicKey = KEY }), /is corrupt \(rootPublicKey does not match poolId\)/],
      [edit(j => { j.certificate = 'AAAA' }), /is corrupt \(malformed certificate: /],
      [edit(flipCert(10)), /is corrupt \(certificate is for pool /],
      [edit(flipCert(70)), /is corrupt \(certificate has a bad signature/],
      [edit(flipCert(100)), /is corrupt \(certificate was issued by key /]
    ]
    for (const [content, message] of cases) {
      fs.writeFileSync(file, content)
      for (const args of [['pool-list'], ['pool-status', '--pool-id', poolId], ['pool-policy', '--pool-id', poolId, '--policy', 'open']]) {
        await meshFails(inProcess, home, args, new RegExp(`${file} ${message.source}`))
      }
    }
    fs.writeFileSync(file, good)
    const other = loadDevice(homeWithPool(tmp).home).nodeId
    fs.writeFileSync(rootKeyFile(home, poolId), '{"version":1,"type":"ed25519","seed":"' + '11'.repeat(32) + '"}')
    await meshFails(inProcess, home, ['pool-revoke', other, '--pool-id', poolId], /root\.key is corrupt \(it is not the root key of this pool\)/)
    fs.rmSync(rootKeyFile(home, poolId))
    await meshFails(inProcess, home, ['pool-revoke', other, '--pool-id', poolId], /root\.key is corrupt \(it is missing, but this device is the admin/)
  })
})

describe('admin commands: bad input', () => {
  it('unknown or malformed nodes and pools', async () => {
    const { home: admin, pool } = homeWithPool(tmp, 'admin', 'manual')
    if (pool === undefined) throw new Error('setup')
    const { home: member } = homeWithPool(tmp, 'member')
    joinPool(member, { poolId: pool.record.poolId, rootPublicKey: pool.rootPublicKey, name: 'office', now: Date.now() })
    handleCertRequest(admin, certRequestFor(member, pool.record.poolId, Date.now()).bytes, Date.now())
    const memberId = loadDevice(member).nodeId
    const adminId = loadDevice(admin).nodeId
    await meshFails(inProcess, admin, ['pool-approve', 'not-a-node'], /"not-a-node" is not a node id/)
    await meshFails(inProcess, admin, ['pool-approve', 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'], /is not a node id/) // an RSA-style id
    await meshFails(inProcess, admin, ['pool-approve'], /missing NODE/)
    await meshFails(inProcess, admin, ['pool-approve', adminId], /no pending request from/)
    await meshFails(inProcess, admin, ['pool-reject', adminId, '--pool-id', pool.record.poolId], /no pending request from/)
    await meshFails(inProcess, admin, ['pool-approve', memberId, '--pool-id', '0'.repeat(16)], /no pool 0000000000000000 on this device/)
    await meshFails(inProcess, admin, ['pool-approve', memberId, '--pool-id', 'xyz'], /Pool ID must be 64 hex digits/)
    await meshFails(inProcess, admin, ['pool-policy', '--pool-id', pool.record.poolId], /missing --policy/)
    await meshFails(inProcess, admin, ['pool-policy', '--policy', 'open'], /missing --pool-id/)
    await meshFails(inProcess, admin, ['pool-revoke', adminId], /refusing to revoke this device/)
    await meshFails(inProcess, member, ['pool-policy', '--pool-id', pool.record.poolId, '--policy', 'open'], /not the admin of pool/)
    await meshFails(inProcess, member, ['pool-revoke', adminId], /not the admin of any pool/)
    await meshOk(inProcess, admin, ['pool-revoke', memberId])
    await meshFails(inProcess, admin, ['pool-revoke', memberId, '--pool-id', pool.record.poolId], /already revoked/)
    await meshFails(inProcess, admin, ['pool-approve', memberId], /no pending request/)
  })
  it('open policy warns; an unchanged policy writes nothing', async () => {
    const { home, pool } = homeWithPool(tmp, 'admin', 'token')
    const before = snapshot(home)
    const r = await inProcess(home, ['pool-policy', '--pool-id', pool?.record.poolId ?? '', '--policy', 'token'])
    expect(r.code).toBe(0)
    expect(snapshot(home)).toEqual(before)
    const open = await inProcess(home, ['pool-policy', '--pool-id', pool?.record.poolId ?? '', '--policy', 'open', '--json'])
    expect(open.stderr).toMatch(/WARNING/)
    expect(JSON.parse(open.stdout)).toMatchObject({ policy: 'open' })
  })
})

describe('the command line', () => {
  it('unknown commands and arguments', async () => {
    const home = tmp()
    await meshFails(inProcess, home, ['frobnicate'], /^mesh: unknown command "frobnicate"; see mesh --help$/)
    await meshFails(inProcess, home, ['pool-lst'], /unknown command "pool-lst"; did you mean pool-list\?/)
    await meshFails(inProcess, home, ['pool-list', 'extra'], /Unknown argument: extra/)
    expect(snapshot(home)).toEqual({})
  })
  it.each(['init', 'pool-create', 'pool-join', 'pool-list', 'pool-status', 'pool-approve', 'pool-reject', 'pool-policy', 'pool-revoke'])('%s --help', async (cmd) => {
    const out = await meshOk(inProcess, tmp(), [cmd, '--help'])
    expect(out).toContain(`mesh ${cmd}`)
    expect(out).toContain('--json')
  })
})

import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { resolveAgentConfig } from '../../src/agent/config.js'
import { ModelMismatchError, planModel } from '../../src/agent/model-service.js'
import { hashFile } from '../../src/inference/files.js'
import { modelIdentity } from '../../src/inference/identity.js'
import { BUNDLED_MODEL } from '../../src/inference/served.js'
import { tempDirs } from '../helpers/pool-fixtures.js'
import { SHARED_DIR, sharedPath } from '../helpers/shared.js'

/*
 * What `mesh start --model-sha256 HEX` plans, from the flags as the CLI resolves them: a missing
 * model may be a llama2.c checkpoint (with this member's tokenizer) or a GGUF file (unless a
 * --tokenizer was named); one fetched earlier is served from MESH_HOME/models/ in either format.
 */
const tempDir = tempDirs('mesh-gguf-plan-')
const SHA = 'ab'.repeat(32)

describe('planning a model named by its sha256', () => {
  it('with no file here: a checkpoint with the bundled tokenizer, or a GGUF file, whichever a member announces', async () => {
    const home = tempDir()
    const plan = await planModel(resolveAgentConfig(home, { modelSha256: SHA }).model, home)
    const tokenizer = await hashFile(BUNDLED_MODEL.tokenizerPath)
    expect(plan).toEqual({
      kind: 'fetch',
      sha256: SHA,
      home,
      tokenizerPath: BUNDLED_MODEL.tokenizerPath,
      wants: [{ format: 'llama2c', modelId: modelIdentity(SHA, tokenizer).id }, { format: 'gguf', modelId: modelIdentity(SHA, SHA).id }]
    })
  })

  it('with --tokenizer named: only a llama2.c checkpoint (a GGUF file brings its own)', async () => {
    const home = tempDir()
    const tokenizerPath = path.resolve('test/fixtures/llama2-tokenizer/tokenizer.bin')
    const plan = await planModel(resolveAgentConfig(home, { modelSha256: SHA, tokenizer: tokenizerPath }).model, home)
    expect(plan.kind === 'fetch' && plan.wants).toEqual([{ format: 'llama2c', modelId: modelIdentity(SHA, await hashFile(tokenizerPath)).id }])
  })
})

describe.skipIf(SHARED_DIR === null)('a GGUF file fetched earlier', () => {
  it('is served from MESH_HOME/models/<sha256>.gguf, checked against the sha256 again', async () => {
    const home = tempDir()
    const file = sharedPath('models/gguf/stories260K.q8_0.gguf')
    const sha256 = await hashFile(file)
    fs.mkdirSync(path.join(home, 'models'))
    const cached = path.join(home, 'models', `${sha256}.gguf`)
    fs.copyFileSync(file, cached)
    const plan = await planModel(resolveAgentConfig(home, { modelSha256: sha256 }).model, home)
    expect(plan.kind === 'serve' && plan.model).toMatchObject({ format: 'gguf', checkpointPath: cached, identity: { id: modelIdentity(sha256, sha256).id } })

    // a file under another model's name is refused with one line, not served
    fs.renameSync(cached, path.join(home, 'models', `${SHA}.gguf`))
    const err = await planModel(resolveAgentConfig(home, { modelSha256: SHA }).model, home).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ModelMismatchError)
    expect((err as Error).message).toBe(`model file ${path.join(home, 'models', `${SHA}.gguf`)} has sha256 ${sha256}, not ${SHA} as --model-sha256 says; fix the flag, or remove the file to fetch the right one`)
  })
})

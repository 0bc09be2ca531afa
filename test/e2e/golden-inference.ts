/**
 * The inference check for e2e tests: `mesh inference --prompt "Once upon a time"
 * --max-tokens 32 --temperature 0 --json` on a pool member returns llama2.c's greedy tokens for
 * that prompt (a prefix of the 64-step golden run) and the same text as `mesh inference --local`.
 */
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'
import { expect } from 'vitest'
import type { LabNode, NetnsLab } from './netns.js'

const GOLDEN = fileURLToPath(new URL('../fixtures/golden/stories260K-greedy.json', import.meta.url))
const PROMPT = 'Once upon a time'
const MAX_TOKENS = 32

interface Generation { prompt: string, steps: number, prompt_token_ids: number[], token_ids: number[] }
export interface PoolResult { text: string, token_ids: number[], generated_tokens: number, members: Array<{ node_id: string, leader: boolean }> }

/** Greedy ids for PROMPT and MAX_TOKENS: greedy decoding makes them a prefix of the longest golden run. */
function expectedIds (): number[] {
  const golden = JSON.parse(fs.readFileSync(GOLDEN, 'utf8')) as { generations: Generation[] }
  const g = golden.generations.find((x) => x.prompt === PROMPT && x.steps === 64)
  if (g === undefined) throw new Error(`${GOLDEN} has no 64-step run for ${JSON.stringify(PROMPT)}`)
  return g.token_ids.slice(0, g.prompt_token_ids.length + MAX_TOKENS)
}

/** Run the pool inference on `node` and check it against the golden ids and the local run; returns the result and its wall time. */
export async function expectGoldenInference (lab: Pick<NetnsLab, 'mesh' | 'meshOk'>, node: LabNode): Promise<{ result: PoolResult, ms: number }> {
  const args = ['inference', '--prompt', PROMPT, '--max-tokens', String(MAX_TOKENS), '--temperature', '0', '--json']
  const t0 = performance.now()
  const pool = await lab.mesh(node, args, {}, 120_000)
  const ms = performance.now() - t0
  expect(pool.code, pool.stderr).toBe(0)
  const result = JSON.parse(pool.stdout) as PoolResult
  const local = JSON.parse(await lab.meshOk(node, [...args, '--local'])) as { text: string, token_ids: number[] }
  expect(result.token_ids).toEqual(expectedIds())
  expect(local.token_ids).toEqual(expectedIds())
  expect(result.text).toBe(local.text)
  expect(result.generated_tokens).toBe(MAX_TOKENS)
  return { result, ms }
}

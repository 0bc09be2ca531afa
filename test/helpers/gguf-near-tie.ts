/**
 * Greedy runs of one GGUF model on a ring and on one device, compared token by token: the same ids,
 * or the same up to a position where one device's two candidates are a near-tie, after which the
 * runs part. A ring sums each layer's partial results across members, a float sum in another order
 * than one device's matrix product, so a near-tie may go either way (../shared/golden/gguf/README.md:
 * "flips at near-ties are normal"); a wrong shard or a lost position moves logits by whole units.
 */
import { expect } from 'vitest'
import { createLlmState, forwardBatch, type LlmModel } from '../../src/inference/llm/forward.js'
import { defaultLlmEngine } from '../../src/inference/llm/engine.js'
import { llmModel, loadGguf } from '../../src/inference/llm/load.js'

/**
 * Two logits within this fraction of their size are a near-tie. Measured on llama3-test (random
 * weights, logits ~75): one device's own batched and token-by-token passes differ by 0.25 there,
 * as activations are rounded to 8 bits per block; a missing or doubled partial moves them by tens.
 */
export const NEAR_TIE = 0.01

export class OneDevice {
  private constructor (private readonly model: LlmModel) {}

  /** The model on the kernels `mesh inference --local` picks, one thread (the test shares two cores with agents). */
  static async load (path: string): Promise<OneDevice> {
    const engine = defaultLlmEngine()
    return new OneDevice(llmModel(await loadGguf(path, undefined, engine), engine, 1))
  }

  /** The logits (vocab,) that follow `ids`, fed from position 0. */
  async logitsAfter (ids: readonly number[]): Promise<Float32Array> {
    const s = createLlmState(this.model, ids.length, ids.length)
    return (await forwardBatch(this.model, s, ids, 0, ids.length - 1)).slice()
  }
}

/**
 * `ring` equals `one` (one device's greedy ids, prompt included), or parts from it only after the
 * prompt and at a near-tie (`device` is loaded only then). Returns a line saying where they
 * parted, or null when equal.
 */
export async function expectOneDeviceOrNearTie (device: () => Promise<OneDevice>, ring: readonly number[], one: readonly number[], promptTokens: number, what: string): Promise<string | null> {
  let p = 0
  while (p < ring.length && p < one.length && ring[p] === one[p]) p++
  if (p === ring.length && p === one.length) return null
  expect(p, `${what}: the ring and one device part inside the prompt`).toBeGreaterThanOrEqual(promptTokens)
  const a = ring[p]
  const b = one[p]
  expect(a !== undefined && b !== undefined, `${what}: one run stopped at token ${p}, the other went on`).toBe(true)
  const logits = await (await device()).logitsAfter(one.slice(0, p))
  const la = logits[a as number] ?? NaN
  const lb = logits[b as number] ?? NaN
  expect(Math.abs(la - lb), `${what}: at token ${p} the ring took ${a}, one device ${b}: logits ${la} and ${lb} are no near-tie`).toBeLessThan(NEAR_TIE * Math.max(Math.abs(la), Math.abs(lb)))
  return `${what}: the ring took ${a} at token ${p} where one device took ${b}, a near-tie (logits ${la.toFixed(3)} and ${lb.toFixed(3)}); the same ids before it`
}

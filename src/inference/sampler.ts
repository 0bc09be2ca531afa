import { InferenceSettingError } from './errors.js'

export interface SamplerSettings {
  readonly temperature: number // 0 = greedy
  readonly topP: number // nucleus mass in (0, 1]; 1 samples from the whole distribution
  readonly seed: bigint // xorshift state, non-zero
  readonly topK?: number // keep the k likeliest tokens; 0 or absent = off
  readonly minP?: number // drop tokens below minP × the likeliest one's probability; 0 or absent = off
}

export interface Sampler {
  /** Pick the next token. With temperature > 0 the logits are turned into probabilities in place. */
  sample: (logits: Float32Array) => number
}

export function validateSamplerSettings (s: SamplerSettings): void {
  if (!(s.temperature >= 0) || !Number.isFinite(s.temperature)) throw new InferenceSettingError(`--temperature is ${s.temperature}; use 0 (greedy) or a positive number such as 0.8`)
  if (!(s.topP > 0 && s.topP <= 1)) throw new InferenceSettingError(`--top-p is ${s.topP}; it must be in (0, 1], e.g. 0.9`)
  if (s.topK !== undefined && (!Number.isInteger(s.topK) || s.topK < 0)) throw new InferenceSettingError(`--top-k is ${s.topK}; use 0 (off) or a whole number such as 40`)
  if (s.minP !== undefined && !(s.minP >= 0 && s.minP < 1)) throw new InferenceSettingError(`--min-p is ${s.minP}; it must be in [0, 1), e.g. 0.05 (0 = off)`)
  if (s.seed <= 0n || s.seed >= 1n << 64n) throw new InferenceSettingError(`--seed is ${s.seed}; use an integer from 1 to 2^64-1`)
}

const MASK64 = (1n << 64n) - 1n

/** llama2.c's xorshift64* generator, so a seed gives the same stream of coins as run.c. */
export function xorshiftRng (seed: bigint): () => number {
  let state = seed & MASK64
  return () => {
    state ^= state >> 12n
    state = (state ^ (state << 25n)) & MASK64
    state ^= state >> 27n
    const u32 = Number(((state * 0x2545F4914F6CDD1Dn) & MASK64) >> 32n)
    return (u32 >>> 8) / 16777216 // float32 in [0, 1)
  }
}

/**
 * run.c's sampler: argmax at temperature 0, else softmax(logits / T) and multinomial or top-p.
 * With top-k or min-p on, llama.cpp's chain instead: top-k, top-p, min-p, then the temperature.
 */
export function createSampler (settings: SamplerSettings): Sampler {
  validateSamplerSettings(settings)
  const { temperature, topP } = settings
  const topK = settings.topK ?? 0
  const minP = settings.minP ?? 0
  const coin = xorshiftRng(settings.seed)
  return {
    sample: (logits) => {
      if (temperature === 0) return argmax(logits)
      if (topK > 0 || minP > 0) return sampleChain(logits, { topK, topP, minP, temperature }, coin())
      for (let i = 0; i < logits.length; i++) logits[i] = logits[i] / temperature
      softmaxAll(logits)
      return topP >= 1 ? sampleMultinomial(logits, coin()) : sampleTopP(logits, topP, coin())
    }
  }
}

export function argmax (x: Float32Array): number {
  let best = 0
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i
  return best
}

function softmaxAll (x: Float32Array): void {
  let max = x[0]
  for (let i = 1; i < x.length; i++) if (x[i] > max) max = x[i]
  let sum = 0
  for (let i = 0; i < x.length; i++) { x[i] = Math.exp(x[i] - max); sum += x[i] }
  for (let i = 0; i < x.length; i++) x[i] = x[i] / sum
}

function sampleMultinomial (probs: Float32Array, coin: number): number {
  let cdf = 0
  for (let i = 0; i < probs.length; i++) {
    cdf = Math.fround(cdf + probs[i])
    if (coin < cdf) return i
  }
  return probs.length - 1 // rounding: the cdf ended just below 1
}

/**
 * Sample from the smallest set of most likely tokens whose mass exceeds topP. Tokens below
 * (1 - topP)/(n - 1) cannot be in that set, so they are dropped before sorting (as run.c does).
 */
function sampleTopP (probs: Float32Array, topP: number, coin: number): number {
  const cutoff = (1 - topP) / (probs.length - 1)
  const candidates: number[] = []
  for (let i = 0; i < probs.length; i++) if (probs[i] >= cutoff) candidates.push(i)
  candidates.sort((a, b) => probs[b] - probs[a])
  let mass = 0
  let last = candidates.length - 1
  for (let i = 0; i < candidates.length; i++) {
    mass = Math.fround(mass + probs[candidates[i]])
    if (mass > topP) { last = i; break }
  }
  const r = coin * mass
  let cdf = 0
  for (let i = 0; i <= last; i++) {
    cdf = Math.fround(cdf + probs[candidates[i]])
    if (r < cdf) return candidates[i]
  }
  return candidates[last]
}

/**
 * llama.cpp's default sampler chain (common/sampling.cpp): keep the top-k logits, then the
 * smallest set whose probability reaches top-p, then those with at least min-p × the top
 * probability (both measured at temperature 1), then sample from softmax(logit / T) of what is left.
 */
function sampleChain (logits: Float32Array, s: { topK: number, topP: number, minP: number, temperature: number }, coin: number): number {
  let ids = topIds(logits, s.topK > 0 ? Math.min(s.topK, logits.length) : logits.length)
  const probs = softmaxOf(ids.map((i) => logits[i]))
  let keep = ids.length
  if (s.topP < 1) {
    let mass = 0
    for (let i = 0; i < ids.length; i++) {
      mass += probs[i]
      if (mass >= s.topP) { keep = i + 1; break }
    }
  }
  if (s.minP > 0) {
    let k = 1
    while (k < keep && probs[k] >= s.minP * probs[0]) k++
    keep = k
  }
  ids = ids.slice(0, keep)
  const final = softmaxOf(ids.map((i) => logits[i] / s.temperature))
  let cdf = 0
  for (let i = 0; i < ids.length; i++) {
    cdf += final[i]
    if (coin < cdf) return ids[i]
  }
  return ids[ids.length - 1]
}

/** The ids of the k largest logits, largest first. */
function topIds (logits: Float32Array, k: number): number[] {
  if (k >= logits.length) return [...logits.keys()].sort((a, b) => logits[b] - logits[a])
  // a bounded pass: only tokens above the current k-th best enter the sort
  const ids: number[] = []
  let floor = -Infinity
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] <= floor && ids.length >= k) continue
    ids.push(i)
    if (ids.length >= 4 * k) {
      ids.sort((a, b) => logits[b] - logits[a])
      ids.length = k
      floor = logits[ids[k - 1]]
    }
  }
  ids.sort((a, b) => logits[b] - logits[a])
  return ids.slice(0, k)
}

function softmaxOf (xs: readonly number[]): number[] {
  let max = -Infinity
  for (const x of xs) if (x > max) max = x
  const e = xs.map((x) => Math.exp(x - max))
  const sum = e.reduce((a, b) => a + b, 0)
  return e.map((v) => v / sum)
}

import { readFileSync } from 'node:fs'
import { sharedPath } from './shared.js'

/** One case of ../shared/golden/gguf/NAME.json: a prompt's ids and, per position, the exact logits of the 16 likeliest tokens. */
export interface GoldenCase {
  prompt: string
  token_ids: number[]
  positions: Array<Array<[number, number, number]>> // [token id, exact logit, llama.cpp's logit]
  llamacpp_vs_exact: { mean_max_abs_err_top16: number, argmax_agree: number, positions: number }
}

export const goldenCases = (name: string): GoldenCase[] =>
  (JSON.parse(readFileSync(sharedPath(`golden/gguf/${name}.json`), 'utf8')) as { cases: GoldenCase[] }).cases

/** Mean over positions of the largest top-16 error against the exact logits, and at how many positions the argmax is the exact one. */
export function goldenAccuracy (rows: readonly Float32Array[], c: GoldenCase): { meanErr: number, argmaxAgree: number } {
  let sumErr = 0
  let agree = 0
  c.positions.forEach((top, p) => {
    sumErr += Math.max(...top.map(([id, exact]) => Math.abs(rows[p][id] - exact)))
    let best = 0
    for (let i = 1; i < rows[p].length; i++) if (rows[p][i] > rows[p][best]) best = i
    if (best === top[0][0]) agree++
  })
  return { meanErr: sumErr / c.positions.length, argmaxAgree: agree }
}

import type { Weights } from './checkpoint.js'
import { headSize, kvMul, type ModelConfig } from './config.js'
import { addInPlace, attend, rmsnorm } from './kernels.js'
import { localAllReduce, type AllReduce } from './reduce.js'
import type { Matmuls } from './matmuls.js'
import { shardDims, type Shard, type ShardDims } from './shard.js'
import type { RunState } from './state.js'

/** What one device holds of a model: the weights, its shard of every layer, and the engine for it. */
export interface ShardedModel {
  readonly config: ModelConfig
  readonly weights: Weights
  readonly shard: Shard
  readonly matmuls: Matmuls
}


/**
 * One position of the llama2.c transformer (run.c `forward`), for this device's shard.
 * Returns the logits (vocab,): the classifier is not sharded, so any member loaded with it can
 * sample.
 */
export async function forward (m: ShardedModel, s: RunState, token: number, pos: number, allReduce: AllReduce = localAllReduce): Promise<Float32Array> {
  await forwardLayers(m, s, token, pos, allReduce)
  await m.matmuls.classifier(s.x, s.logits)
  return s.logits
}

/**
 * The forward pass without the classifier, leaving the final normed state in s.x: what a member
 * that does not sample runs (the classifier costs as much as several layers).
 */
export async function forwardLayers (m: ShardedModel, s: RunState, token: number, pos: number, allReduce: AllReduce = localAllReduce): Promise<void> {
  s.x.set(embedding(m, token))
  await forwardEmbedded(m, s, pos, allReduce)
}

/** The token's row of the embedding table (dim,): the input of the first layer. */
export function embedding (m: ShardedModel, token: number): Float32Array {
  const table = m.weights.tokEmb
  if (table === null) throw new Error('this shard was loaded without the token embedding: its input comes from the job\'s leader')
  const dim = m.config.dim
  return table.subarray(token * dim, (token + 1) * dim)
}

/** forwardLayers from an embedding already in s.x (a job's member gets it from the leader). */
export async function forwardEmbedded (m: ShardedModel, s: RunState, pos: number, allReduce: AllReduce = localAllReduce): Promise<void> {
  const { config: c, weights: w, matmuls: mm } = m
  const d = shardDims(c, m.shard)

  for (let l = 0; l < c.nLayers; l++) {
    // attention: own heads → partial Wo output, summed over the ring
    rmsnorm(s.xb, s.x, w.layers[l].rmsAtt)
    await mm.qkv(l, s.xb, s.q, s.k, s.v)
    rope(s, d, c, pos)
    cacheKv(s, d, l, pos)
    if (mm.attend !== undefined) mm.attend(s, l, pos)
    else attendOwnHeads(s, d, c, l, pos)
    await mm.attentionOut(l, s.att, s.xb2)
    await allReduce(s.xb2, { position: pos, layer: l, kind: 'attention' })
    addInPlace(s.x, s.xb2)

    // FFN: own hidden units → partial W2 output, summed over the ring
    rmsnorm(s.xb, s.x, w.layers[l].rmsFfn)
    await mm.ffn(l, s.xb, s.xb2)
    await allReduce(s.xb2, { position: pos, layer: l, kind: 'ffn' })
    addInPlace(s.x, s.xb2)
  }

  rmsnorm(s.x, s.x, w.rmsFinal)
}

/** Rotate consecutive pairs of q and k by angle pos·10000^(-2i/headSize) (RoPE). */
function rope (s: RunState, d: ShardDims, c: ModelConfig, pos: number): void {
  const half = headSize(c) / 2
  const rotate = (vec: Float32Array): void => {
    for (let i = 0; i < vec.length; i += 2) {
      const f = pos * half + ((i / 2) % half)
      const cos = s.ropeCos[f]; const sin = s.ropeSin[f]
      const v0 = vec[i]; const v1 = vec[i + 1]
      vec[i] = v0 * cos - v1 * sin
      vec[i + 1] = v0 * sin + v1 * cos
    }
  }
  rotate(s.q)
  if (d.kvDim > 0) rotate(s.k)
}

function cacheKv (s: RunState, d: ShardDims, l: number, pos: number): void {
  const at = (l * s.positions + pos) * d.kvDim
  s.keyCache.set(s.k, at)
  s.valueCache.set(s.v, at)
}

/** Attention of the shard's own query heads over layer l's cache (kernels.ts attend). */
function attendOwnHeads (s: RunState, d: ShardDims, c: ModelConfig, l: number, pos: number): void {
  const layerAt = l * s.positions * d.kvDim
  attend(s.att, s.scores, s.q, s.keyCache.subarray(layerAt), s.valueCache.subarray(layerAt), d.nHeads, headSize(c), d.kvDim, kvMul(c), s.positions, pos)
}

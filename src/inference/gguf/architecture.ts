import { UnsupportedModelError } from '../errors.js'
import type { GgufFile, GgufTensorInfo, GgufValue } from './reader.js'

/**
 * A decoder-only transformer as a GGUF file describes it: the llama family (Llama 2/3, Mistral,
 * TinyLlama, SmolLM), qwen2 (q/k/v biases) and qwen3 (q/k RMSNorm, head size set apart from
 * dim/heads). One description for all three; the forward pass reads the flags.
 */
export interface LlmConfig {
  readonly arch: Architecture
  readonly name: string
  readonly dim: number
  readonly nLayers: number
  readonly nHeads: number
  readonly nKvHeads: number
  readonly headDim: number // attention.key_length, else dim / heads
  readonly hidden: number // FFN units
  readonly vocabSize: number
  readonly contextLength: number
  readonly ropeTheta: number
  /** interleaved: pairs (2i, 2i+1) of each head (llama); neox: pairs (i, i + headDim/2) (qwen). */
  readonly ropeStyle: 'interleaved' | 'neox'
  readonly rmsEps: number
  readonly qkvBias: boolean
  readonly qkNorm: boolean
  readonly tiedClassifier: boolean // logits use token_embd (no output.weight)
  readonly ropeFreqs: boolean // Llama 3.x: rope_freqs.weight divides each pair's frequency
}

export type Architecture = 'llama' | 'qwen2' | 'qwen3'
export const ARCHITECTURES: readonly Architecture[] = ['llama', 'qwen2', 'qwen3']

/** What each architecture adds to the plain llama block. */
const ARCH_TRAITS: Record<Architecture, { ropeStyle: LlmConfig['ropeStyle'], qkvBias: boolean, qkNorm: boolean, defaultTheta: number }> = {
  llama: { ropeStyle: 'interleaved', qkvBias: false, qkNorm: false, defaultTheta: 10000 },
  qwen2: { ropeStyle: 'neox', qkvBias: true, qkNorm: false, defaultTheta: 1000000 },
  qwen3: { ropeStyle: 'neox', qkvBias: false, qkNorm: true, defaultTheta: 1000000 }
}

/** Limits far above any model that fits in memory; they stop a corrupt header before arithmetic overflows. */
const MAX = { dim: 1 << 16, layers: 1 << 10, heads: 1 << 10, headDim: 1 << 12, hidden: 1 << 18, vocab: 1 << 22, context: 1 << 24 }

/** Read the model's shape from the metadata; the message names the key that is missing or wrong. */
export function llmConfig (f: GgufFile): LlmConfig {
  const where = f.path
  const arch = f.metadata.get('general.architecture')
  if (typeof arch !== 'string') throw new UnsupportedModelError(`${where}: general.architecture is missing; is it a model (not a vocabulary-only) GGUF?`)
  if (!(ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new UnsupportedModelError(`${where}: architecture ${arch} is not supported (mesh runs ${ARCHITECTURES.join(', ')})`)
  }
  const a = arch as Architecture
  const traits = ARCH_TRAITS[a]
  const int = (key: string, max: number, fallback?: number): number => {
    const v = f.metadata.get(`${a}.${key}`) ?? fallback
    if (v === undefined) throw new UnsupportedModelError(`${where}: metadata ${a}.${key} is missing`)
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new UnsupportedModelError(`${where}: metadata ${a}.${key} is ${describe(v)}; it must be a whole number from 1 to ${max}`)
    return v
  }
  const real = (key: string, fallback: number): number => {
    const v = f.metadata.get(`${a}.${key}`) ?? fallback
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new UnsupportedModelError(`${where}: metadata ${a}.${key} is ${describe(v)}; it must be a positive number`)
    return v
  }
  const dim = int('embedding_length', MAX.dim)
  const nHeads = int('attention.head_count', MAX.heads)
  const nKvHeads = int('attention.head_count_kv', MAX.heads, nHeads)
  if (nHeads % nKvHeads !== 0) throw new UnsupportedModelError(`${where}: ${nHeads} attention heads do not divide into ${nKvHeads} kv heads`)
  const headDim = int('attention.key_length', MAX.headDim, dim % nHeads === 0 ? dim / nHeads : undefined)
  const valueLength = int('attention.value_length', MAX.headDim, headDim)
  if (valueLength !== headDim) throw new UnsupportedModelError(`${where}: value heads of ${valueLength} differ from key heads of ${headDim}; mesh needs them equal`)
  if (headDim % 2 !== 0) throw new UnsupportedModelError(`${where}: head size ${headDim} is odd; RoPE rotates pairs`)
  const ropeDim = int('rope.dimension_count', MAX.headDim, headDim)
  if (ropeDim !== headDim) throw new UnsupportedModelError(`${where}: RoPE over ${ropeDim} of ${headDim} head dimensions (partial rotary) is not supported`)
  const tokEmb = f.tensors.find((t) => t.name === 'token_embd.weight')
  const vocabFromTensor = tokEmb?.dims[1]
  const tokens = f.metadata.get('tokenizer.ggml.tokens')
  const vocabSize = int('vocab_size', MAX.vocab, Array.isArray(tokens) ? tokens.length : vocabFromTensor)
  return {
    arch: a,
    name: typeof f.metadata.get('general.name') === 'string' ? f.metadata.get('general.name') as string : a,
    dim,
    nLayers: int('block_count', MAX.layers),
    nHeads,
    nKvHeads,
    headDim,
    hidden: int('feed_forward_length', MAX.hidden),
    vocabSize,
    contextLength: int('context_length', MAX.context, 2048),
    ropeTheta: real('rope.freq_base', traits.defaultTheta),
    ropeStyle: traits.ropeStyle,
    rmsEps: real('attention.layer_norm_rms_epsilon', 1e-5),
    qkvBias: traits.qkvBias,
    qkNorm: traits.qkNorm,
    tiedClassifier: !f.tensors.some((t) => t.name === 'output.weight'),
    ropeFreqs: f.tensors.some((t) => t.name === 'rope_freqs.weight')
  }
}

const describe = (v: GgufValue | undefined): string => typeof v === 'string' ? JSON.stringify(v) : typeof v === 'object' ? 'an array' : String(v)

/** The tensors of one layer, by role. Biases and q/k norms exist only where the architecture has them. */
export interface LayerTensors {
  readonly attnNorm: GgufTensorInfo
  readonly wq: GgufTensorInfo
  readonly wk: GgufTensorInfo
  readonly wv: GgufTensorInfo
  readonly wo: GgufTensorInfo
  readonly bq: GgufTensorInfo | null
  readonly bk: GgufTensorInfo | null
  readonly bv: GgufTensorInfo | null
  readonly qNorm: GgufTensorInfo | null
  readonly kNorm: GgufTensorInfo | null
  readonly ffnNorm: GgufTensorInfo
  readonly gate: GgufTensorInfo
  readonly up: GgufTensorInfo
  readonly down: GgufTensorInfo
}

export interface ModelTensors {
  readonly tokEmb: GgufTensorInfo
  readonly outputNorm: GgufTensorInfo
  readonly output: GgufTensorInfo // token_embd itself when tied
  readonly ropeFreqs: GgufTensorInfo | null
  readonly layers: readonly LayerTensors[]
}

/**
 * Find every tensor the forward pass needs and check its shape against the config (GGUF dims
 * list the row length first: a [out, in] matrix is dims [in, out]). Norms and biases may be any
 * type (they are dequantized at load); the reader has already refused types mesh cannot run.
 */
export function modelTensors (f: GgufFile, c: LlmConfig): ModelTensors {
  const byName = new Map(f.tensors.map((t) => [t.name, t]))
  const get = (name: string, shape: readonly number[]): GgufTensorInfo => {
    const t = byName.get(name)
    if (t === undefined) throw new UnsupportedModelError(`${f.path}: tensor ${name} is missing (a ${c.arch} model needs it)`)
    const dims = t.dims.length > shape.length && t.dims.slice(shape.length).every((d) => d === 1) ? t.dims.slice(0, shape.length) : t.dims
    if (dims.length !== shape.length || dims.some((d, i) => d !== shape[i])) {
      throw new UnsupportedModelError(`${f.path}: tensor ${name} is ${t.dims.join(' x ')}, but the metadata implies ${shape.join(' x ')}`)
    }
    return t
  }
  const maybe = (present: boolean, name: string, shape: readonly number[]): GgufTensorInfo | null => present ? get(name, shape) : null
  const { dim, hidden, headDim: hd, vocabSize } = c
  const qDim = c.nHeads * hd
  const kvDim = c.nKvHeads * hd
  const tokEmb = get('token_embd.weight', [dim, vocabSize])
  const layers: LayerTensors[] = []
  for (let l = 0; l < c.nLayers; l++) {
    const b = `blk.${l}.`
    layers.push({
      attnNorm: get(`${b}attn_norm.weight`, [dim]),
      wq: get(`${b}attn_q.weight`, [dim, qDim]),
      wk: get(`${b}attn_k.weight`, [dim, kvDim]),
      wv: get(`${b}attn_v.weight`, [dim, kvDim]),
      wo: get(`${b}attn_output.weight`, [qDim, dim]),
      bq: maybe(c.qkvBias, `${b}attn_q.bias`, [qDim]),
      bk: maybe(c.qkvBias, `${b}attn_k.bias`, [kvDim]),
      bv: maybe(c.qkvBias, `${b}attn_v.bias`, [kvDim]),
      qNorm: maybe(c.qkNorm, `${b}attn_q_norm.weight`, [hd]),
      kNorm: maybe(c.qkNorm, `${b}attn_k_norm.weight`, [hd]),
      ffnNorm: get(`${b}ffn_norm.weight`, [dim]),
      gate: get(`${b}ffn_gate.weight`, [dim, hidden]),
      up: get(`${b}ffn_up.weight`, [dim, hidden]),
      down: get(`${b}ffn_down.weight`, [hidden, dim])
    })
  }
  return {
    tokEmb,
    outputNorm: get('output_norm.weight', [dim]),
    output: c.tiedClassifier ? tokEmb : get('output.weight', [dim, vocabSize]),
    ropeFreqs: maybe(c.ropeFreqs, 'rope_freqs.weight', [hd / 2]),
    layers
  }
}

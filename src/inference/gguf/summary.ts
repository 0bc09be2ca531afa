import { blockType } from '../quant/block-types.js'
import type { TextTokenizer } from '../text/tokenizer.js'
import type { LlmConfig } from './architecture.js'
import type { GgufFile } from './reader.js'

/** llama.cpp's llama_ftype labels (general.file_type): what model hubs call the quantization. */
const FILE_TYPES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 7: 'Q8_0', 8: 'Q5_0', 9: 'Q5_1', 10: 'Q2_K', 11: 'Q3_K_S', 12: 'Q3_K_M',
  13: 'Q3_K_L', 14: 'Q4_K_S', 15: 'Q4_K_M', 16: 'Q5_K_S', 17: 'Q5_K_M', 18: 'Q6_K', 19: 'IQ2_XXS', 20: 'IQ2_XS',
  21: 'Q2_K_S', 22: 'IQ3_XS', 23: 'IQ3_XXS', 24: 'IQ1_S', 25: 'IQ4_NL', 26: 'IQ3_S', 27: 'IQ3_M', 28: 'IQ2_S',
  29: 'IQ2_M', 30: 'IQ4_XS', 31: 'IQ1_M', 32: 'BF16', 36: 'TQ1_0', 37: 'TQ2_0', 38: 'MXFP4_MOE'
}

/** Weights counted as llama.cpp's model loader counts them (every tensor's elements). */
const parameterCount = (f: GgufFile): number => f.tensors.reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1), 0)

export interface SpecialToken { readonly id: number, readonly text: string }

/** What `mesh model info` shows of a GGUF model. */
export interface GgufSummary {
  readonly format: 'gguf'
  readonly ggufVersion: number
  readonly architecture: string
  readonly name: string
  readonly parameters: number
  readonly contextLength: number
  readonly fileType: string // Q4_K_M …, or 'unknown'
  readonly tensorTypes: Record<string, number> // type name → tensor count
  readonly shape: { dim: number, layers: number, heads: number, kvHeads: number, headDim: number, ffn: number, vocab: number, ropeTheta: number, tiedClassifier: boolean }
  readonly tokenizer: { model: string, pre: string, vocabSize: number, addBos: boolean, bos: SpecialToken | null, eos: SpecialToken | null, endOfGeneration: SpecialToken[] }
  readonly chatTemplate: boolean
}

export function ggufSummary (f: GgufFile, c: LlmConfig, t: TextTokenizer): GgufSummary {
  const ft = f.metadata.get('general.file_type')
  const tensorTypes: Record<string, number> = {}
  for (const info of f.tensors) {
    const name = blockType(info.type)?.name ?? `type ${info.type}`
    tensorTypes[name] = (tensorTypes[name] ?? 0) + 1
  }
  const special = (id: number | null): SpecialToken | null => id === null ? null : { id, text: t.tokenText(id) }
  return {
    format: 'gguf',
    ggufVersion: f.version,
    architecture: c.arch,
    name: c.name,
    parameters: parameterCount(f),
    contextLength: c.contextLength,
    fileType: typeof ft === 'number' ? FILE_TYPES[ft] ?? `file type ${ft}` : 'unknown',
    tensorTypes,
    shape: { dim: c.dim, layers: c.nLayers, heads: c.nHeads, kvHeads: c.nKvHeads, headDim: c.headDim, ffn: c.hidden, vocab: c.vocabSize, ropeTheta: c.ropeTheta, tiedClassifier: c.tiedClassifier },
    tokenizer: {
      model: String(f.metadata.get('tokenizer.ggml.model') ?? 'none'),
      pre: t.pre,
      vocabSize: t.vocabSize,
      addBos: t.addBos,
      bos: special(t.bos),
      eos: special(t.eos),
      endOfGeneration: [...t.eog].sort((a, b) => a - b).map((id) => ({ id, text: t.tokenText(id) }))
    },
    chatTemplate: typeof f.metadata.get('tokenizer.chat_template') === 'string'
  }
}

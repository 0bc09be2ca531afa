import { UnsupportedModelError } from '../errors.js'
import type { LayerTensors, ModelTensors } from '../gguf/architecture.js'
import type { GgufTensorInfo } from '../gguf/reader.js'
import { dequantizeRow, rowBytes } from '../quant/block-types.js'

/**
 * A matrix kept in its file's type: `rows` rows of `cols` elements, row r at byte r·rowBytes of
 * `bytes` (a view into the loaded file). Only kernels read it; nothing expands it to float32.
 */
export interface QTensor {
  readonly name: string
  readonly type: number // ggml type id (quant/block-types.ts)
  readonly rows: number // output dimension
  readonly cols: number // input dimension: the row length
  readonly rowBytes: number
  readonly bytes: Uint8Array
  readonly packed?: true // bytes repacked for the native kernels (native-linear.ts packForNative): unreadable by the others
}

export interface LlmLayerWeights {
  readonly attnNorm: Float32Array
  readonly wq: QTensor
  readonly wk: QTensor
  readonly wv: QTensor
  readonly wo: QTensor
  readonly bq: Float32Array | null
  readonly bk: Float32Array | null
  readonly bv: Float32Array | null
  readonly qNorm: Float32Array | null
  readonly kNorm: Float32Array | null
  readonly ffnNorm: Float32Array
  readonly gate: QTensor
  readonly up: QTensor
  readonly down: QTensor
}

export interface LlmWeights {
  readonly tokEmb: QTensor | null // null on a ring member: the leader embeds
  readonly outputNorm: Float32Array
  readonly output: QTensor // a ring member's: its rows (llmShardDims vocab), whose logits the leader gathers
  readonly ropeFreqs: Float32Array | null // (headDim/2,) Llama 3 frequency factors
  readonly layers: readonly LlmLayerWeights[]
}

/**
 * Views of the tensors in `data` (the file's tensor data section, loaded). Vectors (norms, biases,
 * frequency factors) are small, so they become float32 whatever their type.
 */
export function llmWeights (t: ModelTensors, data: Uint8Array): LlmWeights {
  const matrix = (info: GgufTensorInfo): QTensor => {
    const cols = info.dims[0]
    const rb = rowBytes(info.type, cols)
    if (rb === undefined) throw new UnsupportedModelError(`tensor ${info.name} has unsupported type id ${info.type}`)
    return { name: info.name, type: info.type, rows: info.bytes / rb, cols, rowBytes: rb, bytes: data.subarray(info.offset, info.offset + info.bytes) }
  }
  const vector = (info: GgufTensorInfo): Float32Array => {
    const out = new Float32Array(info.dims[0])
    dequantizeRow(info.type, data.subarray(info.offset, info.offset + info.bytes), info.dims[0], out)
    return out
  }
  const maybe = (info: GgufTensorInfo | null): Float32Array | null => info === null ? null : vector(info)
  const layer = (l: LayerTensors): LlmLayerWeights => ({
    attnNorm: vector(l.attnNorm),
    wq: matrix(l.wq),
    wk: matrix(l.wk),
    wv: matrix(l.wv),
    wo: matrix(l.wo),
    bq: maybe(l.bq),
    bk: maybe(l.bk),
    bv: maybe(l.bv),
    qNorm: maybe(l.qNorm),
    kNorm: maybe(l.kNorm),
    ffnNorm: vector(l.ffnNorm),
    gate: matrix(l.gate),
    up: matrix(l.up),
    down: matrix(l.down)
  })
  return { tokEmb: matrix(t.tokEmb), outputNorm: vector(t.outputNorm), output: matrix(t.output), ropeFreqs: maybe(t.ropeFreqs), layers: t.layers.map(layer) }
}

/** Row `r` of a matrix as float32 (the token embedding lookup). */
export function matrixRow (m: QTensor, r: number, out: Float32Array): void {
  dequantizeRow(m.type, m.bytes.subarray(r * m.rowBytes, (r + 1) * m.rowBytes), m.cols, out)
}

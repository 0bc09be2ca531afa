import onnxProto from 'onnx-proto'

const { onnx } = onnxProto

/** A small ONNX graph described as data: float32 tensors only, which is all the forward pass needs. */
export interface GraphSpec {
  readonly inputs: ReadonlyArray<{ name: string, dims: number[] }>
  readonly outputs: ReadonlyArray<{ name: string, dims: number[] }>
  readonly initializers: ReadonlyArray<{ name: string, dims: number[], data: Float32Array }>
  readonly nodes: ReadonlyArray<{ op: string, inputs: string[], outputs: string[], ints?: Record<string, number> }>
}

/** Serialise a graph as an ONNX model (IR 8, opset 17) for InferenceSession.create. */
export function encodeModel (g: GraphSpec): Uint8Array {
  const valueInfo = (v: { name: string, dims: number[] }): onnxProto.onnx.IValueInfoProto => ({
    name: v.name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: v.dims.map((d) => ({ dimValue: d })) } } }
  })
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'mesh',
    graph: {
      name: 'mesh',
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
      initializer: g.initializers.map((t) => ({
        name: t.name,
        dims: t.dims,
        dataType: onnx.TensorProto.DataType.FLOAT,
        rawData: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)
      })),
      node: g.nodes.map((n, i) => ({
        name: `${n.op}_${i}`,
        opType: n.op,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.ints ?? {}).map(([name, i]) => ({ name, i, type: onnx.AttributeProto.AttributeType.INT }))
      }))
    }
  })
  return onnx.ModelProto.encode(model).finish()
}

/**
 * Writes GGUF bytes for tests: a valid file from parts, so a test can break exactly one thing
 * (a count, an offset, a type) and see the reader's error for it.
 */
export type MetaValue =
  | { type: 'u32', value: number } | { type: 'i32', value: number } | { type: 'f32', value: number }
  | { type: 'u64', value: bigint } | { type: 'bool', value: boolean } | { type: 'string', value: string }
  | { type: 'string[]', value: string[] } | { type: 'f32[]', value: number[] } | { type: 'i32[]', value: number[] }

export interface TensorSpec { name: string, dims: number[], type: number, data: Uint8Array, offset?: number }

export interface GgufSpec {
  version?: number
  alignment?: number
  metadata: Array<[string, MetaValue]>
  tensors: TensorSpec[]
  /** override the counts written in the header (to lie about them) */
  tensorCount?: bigint
  kvCount?: bigint
}

class Out {
  private readonly parts: Buffer[] = []
  length = 0
  push (b: Buffer): void { this.parts.push(b); this.length += b.length }
  u32 (v: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); this.push(b) }
  i32 (v: number): void { const b = Buffer.alloc(4); b.writeInt32LE(v); this.push(b) }
  u64 (v: bigint): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); this.push(b) }
  f32 (v: number): void { const b = Buffer.alloc(4); b.writeFloatLE(v); this.push(b) }
  str (s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(BigInt(b.length)); this.push(b) }
  bytes (): Buffer { return Buffer.concat(this.parts) }
}

const TYPE_IDS = { u32: 4, i32: 5, f32: 6, bool: 7, string: 8, u64: 10 }

function writeValue (o: Out, v: MetaValue): void {
  switch (v.type) {
    case 'u32': o.u32(TYPE_IDS.u32); o.u32(v.value); break
    case 'i32': o.u32(TYPE_IDS.i32); o.i32(v.value); break
    case 'f32': o.u32(TYPE_IDS.f32); o.f32(v.value); break
    case 'u64': o.u32(TYPE_IDS.u64); o.u64(v.value); break
    case 'bool': o.u32(TYPE_IDS.bool); o.push(Buffer.from([v.value ? 1 : 0])); break
    case 'string': o.u32(TYPE_IDS.string); o.str(v.value); break
    case 'string[]': o.u32(9); o.u32(TYPE_IDS.string); o.u64(BigInt(v.value.length)); v.value.forEach((s) => { o.str(s) }); break
    case 'f32[]': o.u32(9); o.u32(TYPE_IDS.f32); o.u64(BigInt(v.value.length)); v.value.forEach((x) => { o.f32(x) }); break
    case 'i32[]': o.u32(9); o.u32(TYPE_IDS.i32); o.u64(BigInt(v.value.length)); v.value.forEach((x) => { o.i32(x) }); break
  }
}

export function writeGguf (spec: GgufSpec): Uint8Array {
  const alignment = spec.alignment ?? 32
  const o = new Out()
  o.u32(0x46554747)
  o.u32(spec.version ?? 3)
  o.u64(spec.tensorCount ?? BigInt(spec.tensors.length))
  o.u64(spec.kvCount ?? BigInt(spec.metadata.length))
  for (const [key, v] of spec.metadata) { o.str(key); writeValue(o, v) }
  let at = 0
  const offsets = spec.tensors.map((t) => {
    const off = t.offset ?? at
    at = Math.ceil((off + t.data.length) / alignment) * alignment
    return off
  })
  spec.tensors.forEach((t, i) => {
    o.str(t.name)
    o.u32(t.dims.length)
    t.dims.forEach((d) => { o.u64(BigInt(d)) })
    o.u32(t.type)
    o.u64(BigInt(offsets[i]))
  })
  const header = o.bytes()
  const dataStart = Math.ceil(header.length / alignment) * alignment
  const end = Math.max(0, ...spec.tensors.map((t, i) => offsets[i] + t.data.length))
  const file = Buffer.alloc(dataStart + end)
  header.copy(file, 0)
  spec.tensors.forEach((t, i) => { Buffer.from(t.data).copy(file, dataStart + offsets[i]) })
  return new Uint8Array(file.buffer, file.byteOffset, file.length)
}

import { open } from 'node:fs/promises'
import { GgufFormatError } from '../errors.js'
import { readHead, regularFileSize } from '../files.js'
import { blockType } from '../quant/block-types.js'

/**
 * The GGUF container (github.com/ggml-org/ggml docs/gguf.md): magic "GGUF", version, counts,
 * metadata key/values, tensor infos, then the tensor data at an aligned offset. Versions 2 and 3
 * (little-endian, 64-bit counts) are read; every count and length is checked against the bytes
 * that remain before anything is allocated, so a hostile header cannot make us allocate more
 * than the file's size.
 */

export const GGUF_MAGIC = 0x46554747 // "GGUF" read as a little-endian uint32
const DEFAULT_ALIGNMENT = 32
const MAX_DIMS = 4
const MAX_KEY_BYTES = 65535
/** Real headers are a few MiB (a 150k-token vocabulary with its merges is about 10); more is a corrupt count. */
const MAX_HEADER_BYTES = 256 << 20

/** Metadata value types by their id in the file. */
enum ValueType { U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 }

/** Numeric arrays stay typed arrays: a 128k-token vocabulary's scores are one Float32Array, not 128k boxed numbers. */
export type GgufNumberArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array |
Float32Array | Float64Array | BigUint64Array | BigInt64Array
export type GgufValue = number | bigint | boolean | string | GgufNumberArray | readonly string[] | readonly boolean[] | readonly GgufValue[]

export interface GgufTensorInfo {
  readonly name: string
  readonly dims: readonly number[] // ne[0] first: ne[0] is the row length (a matrix's input dimension)
  readonly type: number // ggml type id; a row of quant/block-types.ts
  readonly offset: number // from the start of the data section
  readonly bytes: number
}

export interface GgufFile {
  readonly path: string
  readonly version: number
  readonly fileBytes: number
  readonly metadata: ReadonlyMap<string, GgufValue>
  readonly tensors: readonly GgufTensorInfo[]
  readonly alignment: number
  readonly dataOffset: number // absolute file offset of the tensor data
  readonly headerBytes: number // where the tensor infos end (before padding)
}

/** ggml type names of the types mesh cannot run, so an error can name them as llama.cpp would. */
const OTHER_TYPE_NAMES: Record<number, string> = {
  4: 'Q4_2 (removed)', 5: 'Q4_3 (removed)', 9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS',
  18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32',
  27: 'I64', 28: 'F64', 29: 'IQ1_M', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4'
}

/** Does the file start with the GGUF magic? (Anything else is read as a llama2.c checkpoint.) */
export async function isGgufFile (path: string): Promise<boolean> {
  await regularFileSize(path, 'model')
  const head = await readHead(path, 4)
  return head.byteLength === 4 && new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true) === GGUF_MAGIC
}

/** Read the header (metadata and tensor infos) of a GGUF file; tensor data is not read. */
export async function readGguf (path: string): Promise<GgufFile> {
  const fileBytes = await regularFileSize(path, 'model')
  const fh = await open(path, 'r')
  try {
    // most headers fit in a few MiB; a larger one (a big vocabulary) grows the read, up to the file
    const limit = Math.min(fileBytes, MAX_HEADER_BYTES)
    for (let want = Math.min(limit, 4 << 20); ; want = Math.min(limit, want * 4)) {
      const head = new Uint8Array(want)
      const { bytesRead } = await fh.read(head, 0, want, 0)
      try {
        return parseHead(head.subarray(0, bytesRead), fileBytes, path)
      } catch (err) {
        if (!(err instanceof NeedMoreBytes)) throw err
        if (bytesRead >= fileBytes) throw truncated(path, err)
        if (bytesRead >= limit) throw new GgufFormatError(`${path}: the GGUF header claims more than ${MAX_HEADER_BYTES >> 20} MiB (${err.what} is too large); the file is corrupt`)
      }
    }
  } finally {
    await fh.close()
  }
}

/** Cursor ran past the bytes we have: more of the file may fix it, the end of the file cannot. */
class NeedMoreBytes extends Error {
  constructor (readonly what: string) { super(what) }
}

const truncated = (where: string, err: NeedMoreBytes): GgufFormatError =>
  new GgufFormatError(`${where}: truncated GGUF file (it ends inside ${err.what}); download it again`)

/**
 * Parse a GGUF header from its first bytes (`head`, which may be the whole file). `fileBytes` is
 * the whole file's size: tensor data must lie inside it.
 */
export function parseGguf (head: Uint8Array, fileBytes: number, where: string): GgufFile {
  try {
    return parseHead(head, fileBytes, where)
  } catch (err) {
    if (!(err instanceof NeedMoreBytes)) throw err
    throw head.byteLength >= fileBytes ? truncated(where, err) : new GgufFormatError(`${where}: the GGUF header is longer than the ${head.byteLength} bytes given (${err.what})`)
  }
}

/** parseGguf, but a head that ends too early throws NeedMoreBytes so readGguf can read more. */
function parseHead (head: Uint8Array, fileBytes: number, where: string): GgufFile {
  const r = new Cursor(head, where)
  if (head.byteLength < 4 || r.u32('the magic') !== GGUF_MAGIC) throw new GgufFormatError(`${where} is not a GGUF file (no "GGUF" magic at its start)`)
  const version = r.u32('the version')
  if (version === 1) throw new GgufFormatError(`${where}: GGUF version 1 is not supported (only 2 and 3); convert the model again with a current llama.cpp`)
  if (version !== 2 && version !== 3) {
    const swapped = ((version & 0xff) << 24 | (version & 0xff00) << 8 | (version >>> 8) & 0xff00 | version >>> 24) >>> 0
    if (swapped === 2 || swapped === 3) throw new GgufFormatError(`${where} is a big-endian GGUF file; mesh reads little-endian GGUF only`)
    throw new GgufFormatError(`${where}: GGUF version ${version} is not supported (only 2 and 3)`)
  }
  const tensorCount = r.count('the tensor count', 8 + 4 + 8 + 8) // smallest tensor info: empty name, 1 dim, type, offset
  const kvCount = r.count('the metadata count', 8 + 4 + 1) // smallest pair: empty key, type, one byte
  const metadata = new Map<string, GgufValue>()
  for (let i = 0; i < kvCount; i++) {
    const key = r.string(`metadata key ${i}`, MAX_KEY_BYTES)
    const type = r.u32(`the type of ${key}`)
    if (metadata.has(key)) throw new GgufFormatError(`${where}: metadata key ${key} appears twice`)
    metadata.set(key, readValue(r, type, key, 0))
  }

  const alignment = alignmentOf(metadata, where)
  const infos: Array<Omit<GgufTensorInfo, 'bytes'>> = []
  const names = new Set<string>()
  for (let i = 0; i < tensorCount; i++) {
    const name = r.string(`the name of tensor ${i}`, MAX_KEY_BYTES)
    if (names.has(name)) throw new GgufFormatError(`${where}: tensor ${name} appears twice`)
    names.add(name)
    const nDims = r.u32(`the dimensions of ${name}`)
    if (nDims < 1 || nDims > MAX_DIMS) throw new GgufFormatError(`${where}: tensor ${name} has ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`)
    const dims: number[] = []
    for (let d = 0; d < nDims; d++) dims.push(r.u64AsNumber(`dimension ${d} of ${name}`))
    const type = r.u32(`the type of ${name}`)
    const offset = r.u64AsNumber(`the offset of ${name}`)
    infos.push({ name, dims, type, offset })
  }
  const headerBytes = r.at
  const dataOffset = alignUp(headerBytes, alignment)
  const tensors = infos.map((t) => ({ ...t, bytes: tensorBytes(t, where) }))
  checkPlacement(tensors, fileBytes - dataOffset, alignment, where)
  return { path: where, version, fileBytes, metadata, tensors, alignment, dataOffset, headerBytes }
}

function readValue (r: Cursor, type: number, key: string, depth: number): GgufValue {
  switch (type) {
    case ValueType.U8: return r.take(1, key).getUint8(0)
    case ValueType.I8: return r.take(1, key).getInt8(0)
    case ValueType.U16: return r.take(2, key).getUint16(0, true)
    case ValueType.I16: return r.take(2, key).getInt16(0, true)
    case ValueType.U32: return r.u32(key)
    case ValueType.I32: return r.take(4, key).getInt32(0, true)
    case ValueType.F32: return r.take(4, key).getFloat32(0, true)
    case ValueType.F64: return r.take(8, key).getFloat64(0, true)
    case ValueType.U64: return r.take(8, key).getBigUint64(0, true)
    case ValueType.I64: return r.take(8, key).getBigInt64(0, true)
    case ValueType.BOOL: {
      const b = r.take(1, key).getUint8(0)
      if (b > 1) throw new GgufFormatError(`${r.where}: metadata ${key} is a bool with the value ${b}`)
      return b === 1
    }
    case ValueType.STRING: return r.string(key, Number.MAX_SAFE_INTEGER)
    case ValueType.ARRAY: {
      if (depth > 2) throw new GgufFormatError(`${r.where}: metadata ${key} nests arrays more than 3 deep`)
      const elementType = r.u32(`the element type of ${key}`)
      const size = ELEMENT_BYTES[elementType]
      if (size === undefined && elementType !== ValueType.STRING && elementType !== ValueType.ARRAY && elementType !== ValueType.BOOL) {
        throw new GgufFormatError(`${r.where}: metadata ${key} is an array of unknown type ${elementType}`)
      }
      const n = r.count(`the length of ${key}`, size ?? (elementType === ValueType.BOOL ? 1 : elementType === ValueType.STRING ? 8 : 12))
      if (size !== undefined) return r.typedArray(elementType, n, key)
      const out: GgufValue[] = []
      for (let i = 0; i < n; i++) out.push(readValue(r, elementType, key, depth + 1))
      return out as readonly GgufValue[]
    }
    default: throw new GgufFormatError(`${r.where}: metadata ${key} has unknown value type ${type}`)
  }
}

/** Bytes per element of the numeric array types (bool and string arrays are read one by one). */
const ELEMENT_BYTES: Partial<Record<number, number>> = {
  [ValueType.U8]: 1, [ValueType.I8]: 1, [ValueType.U16]: 2, [ValueType.I16]: 2, [ValueType.U32]: 4, [ValueType.I32]: 4,
  [ValueType.F32]: 4, [ValueType.F64]: 8, [ValueType.U64]: 8, [ValueType.I64]: 8
}

function alignmentOf (metadata: ReadonlyMap<string, GgufValue>, where: string): number {
  const a = metadata.get('general.alignment')
  if (a === undefined) return DEFAULT_ALIGNMENT
  if (typeof a !== 'number' || !Number.isInteger(a) || a < 1 || a > 1 << 20 || (a & (a - 1)) !== 0) {
    throw new GgufFormatError(`${where}: general.alignment is ${String(a)}; it must be a power of two`)
  }
  return a
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a

function tensorBytes (t: Omit<GgufTensorInfo, 'bytes'>, where: string): number {
  const bt = blockType(t.type)
  if (bt === undefined) {
    const name = OTHER_TYPE_NAMES[t.type]
    throw new GgufFormatError(`${where}: tensor ${t.name} has type ${name ?? `id ${t.type}`}, which mesh ${name === undefined ? 'does not know' : 'cannot run'} ` +
      '(supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)')
  }
  if (t.dims.some((d) => d < 1)) throw new GgufFormatError(`${where}: tensor ${t.name} has a zero dimension (${t.dims.join(' x ')})`)
  if (t.dims[0] % bt.blockElems !== 0) throw new GgufFormatError(`${where}: tensor ${t.name} has rows of ${t.dims[0]}, not a multiple of ${bt.name}'s block of ${bt.blockElems}`)
  let rows = 1
  for (let d = 1; d < t.dims.length; d++) rows *= t.dims[d]
  const bytes = (t.dims[0] / bt.blockElems) * bt.blockBytes * rows
  if (!Number.isSafeInteger(bytes)) throw new GgufFormatError(`${where}: tensor ${t.name} is impossibly large (${t.dims.join(' x ')})`)
  return bytes
}

/** Every tensor aligned, inside the data section, and no two overlapping. */
function checkPlacement (tensors: readonly GgufTensorInfo[], dataBytes: number, alignment: number, where: string): void {
  for (const t of tensors) {
    if (t.offset % alignment !== 0) throw new GgufFormatError(`${where}: tensor ${t.name} starts at data offset ${t.offset}, not a multiple of the alignment ${alignment}`)
    if (t.offset + t.bytes > dataBytes) {
      throw new GgufFormatError(`${where}: tensor ${t.name} (${t.bytes} bytes at data offset ${t.offset}) ends past the end of the file; the file is truncated or corrupt, download it again`)
    }
  }
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset)
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]
    if (byOffset[i].offset < prev.offset + prev.bytes) throw new GgufFormatError(`${where}: tensors ${prev.name} and ${byOffset[i].name} overlap`)
  }
}

/** A little-endian reader over the bytes we have, bounded by them. */
class Cursor {
  at = 0
  private readonly view: DataView
  constructor (private readonly bytes: Uint8Array, readonly where: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  get remaining (): number { return this.bytes.byteLength - this.at }

  take (n: number, what: string): DataView {
    if (n > this.remaining) throw new NeedMoreBytes(what)
    const v = new DataView(this.view.buffer, this.view.byteOffset + this.at, n)
    this.at += n
    return v
  }

  u32 (what: string): number { return this.take(4, what).getUint32(0, true) }

  /** A uint64 that must fit a JavaScript number. */
  u64AsNumber (what: string): number {
    const v = this.take(8, what).getBigUint64(0, true)
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufFormatError(`${this.where}: ${what} is ${v}, larger than any file`)
    return Number(v)
  }

  /**
   * A uint64 count of items at least `minItemBytes` each. More items than could fit in the rest of
   * the head is only possible if the head is short (so ask for more) or the file lies.
   */
  count (what: string, minItemBytes: number): number {
    const n = this.u64AsNumber(what)
    if (n * minItemBytes > this.remaining) throw new NeedMoreBytes(what)
    return n
  }

  string (what: string, maxBytes: number): string {
    const n = this.u64AsNumber(`the length of ${what}`)
    if (n > maxBytes) throw new GgufFormatError(`${this.where}: ${what} is ${n} bytes long (at most ${maxBytes})`)
    if (n > this.remaining) throw new NeedMoreBytes(what)
    const s = Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.at, n).toString('utf8')
    this.at += n
    return s
  }

  typedArray (type: ValueType, n: number, what: string): GgufNumberArray {
    const size = ELEMENT_BYTES[type] ?? 1
    if (n * size > this.remaining) throw new NeedMoreBytes(what)
    // copy: the head buffer is temporary, and the copy is aligned for the typed view
    const copy = this.bytes.slice(this.at, this.at + n * size).buffer
    this.at += n * size
    switch (type) {
      case ValueType.U8: return new Uint8Array(copy)
      case ValueType.I8: return new Int8Array(copy)
      case ValueType.U16: return new Uint16Array(copy)
      case ValueType.I16: return new Int16Array(copy)
      case ValueType.U32: return new Uint32Array(copy)
      case ValueType.I32: return new Int32Array(copy)
      case ValueType.F32: return new Float32Array(copy)
      case ValueType.F64: return new Float64Array(copy)
      case ValueType.U64: return new BigUint64Array(copy)
      default: return new BigInt64Array(copy)
    }
  }
}

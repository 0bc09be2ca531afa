import { TokenizerFormatError } from './errors.js'
import { allocateHeap, readWholeFile, regularFileSize } from './files.js'

export const BOS = 1
export const EOS = 2

/** A llama2.c tokenizer: SentencePiece pieces (with ▁ already turned into spaces) and merge scores. */
export interface Tokenizer {
  readonly path: string
  readonly sha256: string
  readonly maxTokenLength: number
  readonly pieces: readonly Uint8Array[] // raw UTF-8 bytes per token id
  readonly scores: Float32Array // (vocab,)
  readonly keys: readonly string[] // piece bytes as latin1 strings: cheap to concatenate while merging
  readonly ids: ReadonlyMap<string, number> // latin1 key → id
}

/** Load a tokenizer.bin, checking that it holds exactly `vocabSize` tokens (the model's vocab). */
export async function loadTokenizer (path: string, vocabSize: number): Promise<Tokenizer> {
  const size = await regularFileSize(path, 'tokenizer')
  const { bytes, sha256 } = await readWholeFile(path, size, allocateHeap)
  return { path, sha256, ...parseTokenizer(bytes, vocabSize, `tokenizer ${path}`) }
}

export function parseTokenizer (bytes: Uint8Array, vocabSize: number, where: string): Omit<Tokenizer, 'path' | 'sha256'> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (bytes.byteLength < 4) throw new TokenizerFormatError(`${where}: file is ${bytes.byteLength} bytes, too short for a tokenizer`)
  const maxTokenLength = view.getUint32(0, true)
  const pieces: Uint8Array[] = []
  const scores = new Float32Array(vocabSize)
  const keys: string[] = []
  const ids = new Map<string, number>()
  let at = 4
  for (let id = 0; id < vocabSize; id++) {
    if (at + 8 > bytes.byteLength) throw new TokenizerFormatError(`${where} ends after ${id} tokens, but the model has a vocabulary of ${vocabSize}: is it the tokenizer of this model?`)
    scores[id] = view.getFloat32(at, true)
    const len = view.getInt32(at + 4, true)
    at += 8
    if (len < 0 || len > maxTokenLength || at + len > bytes.byteLength) {
      throw new TokenizerFormatError(`${where}: token ${id} has a bad length ${len} (max_token_length ${maxTokenLength}, ${bytes.byteLength - at} bytes left)`)
    }
    const piece = bytes.slice(at, at + len)
    at += len
    pieces.push(piece)
    // run.c looks pieces up by binary search over a sorted copy; with no duplicate pieces the first id is the id
    const key = latin1(piece)
    keys.push(key)
    if (!ids.has(key)) ids.set(key, id)
  }
  if (at !== bytes.byteLength) throw new TokenizerFormatError(`${where} has more than the model's ${vocabSize} tokens (${bytes.byteLength - at} bytes left over): is it the tokenizer of this model?`)
  return { maxTokenLength, pieces, scores, keys, ids }
}

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')

/**
 * Encode text as run.c does: BOS, a dummy-prefix space if the text is non-empty, one token per
 * UTF-8 code point (unknown ones fall back to byte tokens, id = byte + 3), then merge the adjacent
 * pair with the best-scoring concatenation until no pair is in the vocabulary.
 */
export function encode (tok: Tokenizer, text: string, bos = true): number[] {
  const tokens: number[] = bos ? [BOS] : []
  const utf8 = new TextEncoder().encode(text)
  if (utf8.length > 0) tokens.push(lookup(tok, ' ', 'dummy prefix'))
  let start = 0
  for (let i = 0; i < utf8.length; i++) {
    // a code point is a lead byte and its continuation bytes (10xxxxxx), at most 4 bytes as in run.c
    const next = utf8[i + 1]
    if (i + 1 < utf8.length && (next & 0xc0) === 0x80 && i + 1 - start < 4) continue
    const cp = utf8.subarray(start, i + 1)
    const id = tok.ids.get(latin1(cp))
    if (id !== undefined) tokens.push(id)
    else for (const b of cp) tokens.push(b + 3)
    start = i + 1
  }
  const first = bos ? 1 : 0
  for (;;) {
    let bestScore = -1e10
    let bestId = -1
    let bestAt = -1
    for (let i = first; i < tokens.length - 1; i++) {
      const id = tok.ids.get(tok.keys[tokens[i]] + tok.keys[tokens[i + 1]])
      if (id !== undefined && tok.scores[id] > bestScore) {
        bestScore = tok.scores[id]
        bestId = id
        bestAt = i
      }
    }
    if (bestAt < 0) return tokens
    tokens.splice(bestAt, 2, bestId)
  }
}

function lookup (tok: Tokenizer, piece: string, what: string): number {
  const id = tok.ids.get(piece)
  if (id === undefined) throw new TokenizerFormatError(`tokenizer ${tok.path} has no ${what} token ${JSON.stringify(piece)}`)
  return id
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{1,2})/

/**
 * The bytes run.c prints for `token` following `prev`: a leading space is dropped after BOS,
 * `<0xHH>` becomes that byte, and a single byte that is neither printable ASCII nor whitespace
 * is not printed at all (run.c's safe_printf).
 */
export function printedPiece (tok: Tokenizer, prev: number, token: number): Uint8Array {
  let piece = tok.pieces[token]
  if (prev === BOS && piece[0] === 0x20) piece = piece.subarray(1)
  const byte = BYTE_PIECE.exec(latin1(piece))
  if (byte !== null) piece = Uint8Array.of(parseInt(byte[1], 16))
  if (piece.length === 1 && !isPrintOrSpace(piece[0])) return piece.subarray(0, 0)
  return piece
}

/** C locale isprint || isspace */
const isPrintOrSpace = (b: number): boolean => (b >= 0x20 && b <= 0x7e) || (b >= 0x09 && b <= 0x0d)

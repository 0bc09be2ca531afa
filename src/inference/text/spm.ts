import { MinHeap } from './bpe.js'

/**
 * SentencePiece (`tokenizer.ggml.model` = llama) as llama.cpp's llm_tokenizer_spm_session runs it:
 * start from one symbol per character, repeatedly merge the adjacent pair whose concatenation is
 * the highest-scoring token (leftmost at equal score), then write each symbol as its token or,
 * for a single character the vocabulary lacks, as its UTF-8 bytes (`<0xXX>`). (llama.cpp's
 * resegment can also undo merges, but a pair is only merged when the result is a token, so that
 * branch never runs.) The text arrives with spaces already written as '▁'.
 */
export interface SpmVocab {
  readonly tokenId: ReadonlyMap<string, number>
  readonly scores: Float32Array | null
  /** The token of one byte: `<0xXX>`, else the byte as a one-character string (byte_to_token). */
  byteToken: (byte: number) => number | undefined
}

interface Bigram { left: number, right: number, score: number, size: number }

/** Highest score first; at equal score the leftmost pair (llm_bigram_spm's comparator). */
const bigramBefore = (a: Bigram, b: Bigram): boolean => a.score > b.score || (a.score === b.score && a.left < b.left)

const utf8 = new TextEncoder()

export function spmTokenize (vocab: SpmVocab, text: string, out: number[]): void {
  const starts: number[] = []
  const lengths: number[] = []
  for (let i = 0; i < text.length;) {
    const n = (text.codePointAt(i) as number) > 0xffff ? 2 : 1
    starts.push(i)
    lengths.push(n)
    i += n
  }
  const count = starts.length
  if (count === 0) return
  const prev = Array.from({ length: count }, (_, i) => i - 1)
  const next = Array.from({ length: count }, (_, i) => (i + 1 < count ? i + 1 : -1))
  const heap = new MinHeap<Bigram>(bigramBefore)
  const span = (i: number, n: number): string => text.substr(starts[i] as number, n)

  const tryAddBigram = (left: number, right: number): void => {
    if (left < 0 || right < 0) return
    const piece = span(left, (lengths[left] as number) + (lengths[right] as number))
    const id = vocab.tokenId.get(piece)
    if (id === undefined) return
    heap.push({ left, right, score: vocab.scores?.[id] ?? 0, size: piece.length })
  }
  for (let i = 1; i < count; i++) tryAddBigram(i - 1, i)

  while (heap.size > 0) {
    const { left, right, size } = heap.pop()
    const ln = lengths[left] as number
    const rn = lengths[right] as number
    if (ln === 0 || rn === 0 || ln + rn !== size) continue // one side was merged since
    lengths[left] = size
    lengths[right] = 0
    const after = next[right] as number
    next[left] = after
    if (after >= 0) prev[after] = left
    tryAddBigram(prev[left] as number, left)
    tryAddBigram(left, after)
  }

  for (let i = 0; i !== -1; i = next[i] as number) {
    const piece = span(i, lengths[i] as number)
    const id = vocab.tokenId.get(piece)
    if (id !== undefined) { out.push(id); continue }
    for (const b of utf8.encode(piece)) {
      const byteId = vocab.byteToken(b)
      if (byteId !== undefined) out.push(byteId)
    }
  }
}

import type { PreTokenizer } from './pretokenize.js'

/**
 * Byte-level BPE (GPT-2, Llama 3, Qwen): the text is cut into words by the pre-tokenizer, each
 * word's UTF-8 bytes are written as GPT-2's printable stand-in characters, and adjacent symbols are
 * merged lowest merge rank first (`tokenizer.ggml.merges`, line i has rank i), as llama.cpp's
 * llm_tokenizer_bpe_session does.
 */

/**
 * GPT-2's byte ↔ unicode map: printable Latin-1 bytes stand for themselves, the other 68 bytes
 * for U+0100 onwards in byte order (so a space is 'Ġ', a newline 'Ċ').
 */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const chars: string[] = new Array<string>(256)
  let next = 256
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)
    chars[b] = String.fromCharCode(printable ? b : next++)
  }
  return chars
})()

/** The inverse of BYTE_TO_CHAR, by UTF-16 code unit (all 256 stand-ins are below U+0144). */
export const CHAR_TO_BYTE: ReadonlyMap<number, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c.charCodeAt(0), b]))

const utf8 = new TextEncoder()

/** A word's UTF-8 bytes as GPT-2 stand-in characters (unicode_byte_encoding_process). */
export function byteEncode (word: string): string {
  const bytes = utf8.encode(word)
  let s = ''
  for (const b of bytes) s += BYTE_TO_CHAR[b]
  return s
}

/** A word's tokens are the same every time; prompts repeat words, chats repeat whole turns. */
const WORD_CACHE_LIMIT = 1 << 16

interface Bigram { left: number, right: number, rank: number, size: number }

/** Lowest rank first; at equal rank the leftmost pair (llm_bigram_bpe's comparator). */
function bigramBefore (a: Bigram, b: Bigram): boolean {
  return a.rank < b.rank || (a.rank === b.rank && a.left < b.left)
}

export class ByteLevelBpe {
  /** Merge line → rank. The line itself is the key: symbols never hold a raw space, so `left + ' ' + right` finds it. */
  private readonly ranks = new Map<string, number>()
  private readonly cache = new Map<string, readonly number[]>()

  constructor (
    private readonly tokenId: ReadonlyMap<string, number>,
    merges: readonly string[],
    private readonly pre: PreTokenizer
  ) {
    for (let i = 0; i < merges.length; i++) {
      const line = merges[i] as string
      // llama.cpp's bpe_ranks.emplace keeps the first rank of a repeated merge
      if (!this.ranks.has(line)) this.ranks.set(line, i)
    }
  }

  /** Append the tokens of a stretch of text without special tokens. */
  tokenize (text: string, out: number[]): void {
    for (const word of this.pre.split(text)) {
      const encoded = byteEncode(word)
      let ids = this.cache.get(encoded)
      if (ids === undefined) {
        ids = this.tokenizeWord(encoded)
        if (this.cache.size >= WORD_CACHE_LIMIT) this.cache.clear()
        this.cache.set(encoded, ids)
      }
      for (const id of ids) out.push(id)
    }
  }

  private tokenizeWord (word: string): number[] {
    if (this.pre.ignoreMerges) {
      const whole = this.tokenId.get(word)
      if (whole !== undefined) return [whole]
    }
    // symbols: one per character of the encoded word, as [start, length) with a linked list
    const starts: number[] = []
    const lengths: number[] = []
    for (let i = 0; i < word.length;) {
      const n = (word.codePointAt(i) as number) > 0xffff ? 2 : 1
      starts.push(i)
      lengths.push(n)
      i += n
    }
    const count = starts.length
    const prev = Array.from({ length: count }, (_, i) => i - 1)
    const next = Array.from({ length: count }, (_, i) => (i + 1 < count ? i + 1 : -1))
    const heap = new MinHeap<Bigram>(bigramBefore)
    const text = (i: number): string => word.substr(starts[i] as number, lengths[i] as number)
    const addBigram = (left: number, right: number): void => {
      if (left < 0 || right < 0) return
      const rank = this.ranks.get(text(left) + ' ' + text(right))
      if (rank === undefined) return
      heap.push({ left, right, rank, size: (lengths[left] as number) + (lengths[right] as number) })
    }
    for (let i = 1; i < count; i++) addBigram(i - 1, i)

    while (heap.size > 0) {
      const { left, right, size } = heap.pop()
      const ln = lengths[left] as number
      const rn = lengths[right] as number
      // stale: one side was merged since (symbols only grow, so equal lengths mean unchanged)
      if (ln === 0 || rn === 0 || ln + rn !== size) continue
      lengths[left] = size
      lengths[right] = 0
      const after = next[right] as number
      next[left] = after
      if (after >= 0) prev[after] = left
      addBigram(prev[left] as number, left)
      addBigram(left, after)
    }

    const ids: number[] = []
    for (let i = 0; i < count; i++) {
      if (lengths[i] === 0) continue
      const piece = text(i)
      const id = this.tokenId.get(piece)
      if (id !== undefined) {
        ids.push(id)
        continue
      }
      // Not in the vocabulary (a vocabulary lacking a merge's result): llama.cpp looks each UTF-8
      // byte of the symbol up as a one-byte string, which only ASCII bytes can be; the rest are dropped.
      for (const b of utf8.encode(piece)) {
        if (b >= 0x80) continue
        const byteId = this.tokenId.get(String.fromCharCode(b))
        if (byteId !== undefined) ids.push(byteId)
      }
    }
    return ids
  }
}

/** A binary heap: the tokenizers' work queues (llama.cpp uses std::priority_queue). */
export class MinHeap<T> {
  private readonly items: T[] = []
  constructor (private readonly before: (a: T, b: T) => boolean) {}

  get size (): number { return this.items.length }

  push (item: T): void {
    const a = this.items
    a.push(item)
    let i = a.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.before(a[i] as T, a[parent] as T)) break
      ;[a[i], a[parent]] = [a[parent] as T, a[i] as T]
      i = parent
    }
  }

  /** The first item; call only when size > 0. */
  pop (): T {
    const a = this.items
    const top = a[0] as T
    const last = a.pop() as T
    if (a.length > 0) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let best = i
        if (l < a.length && this.before(a[l] as T, a[best] as T)) best = l
        if (r < a.length && this.before(a[r] as T, a[best] as T)) best = r
        if (best === i) break
        ;[a[i], a[best]] = [a[best] as T, a[i] as T]
        i = best
      }
    }
    return top
  }
}

/** What a byte-level token's text prints: each stand-in character back to its byte (llama_decode_text). */
export function byteDecode (text: string): Uint8Array {
  const out: number[] = []
  for (let i = 0; i < text.length; i++) {
    const b = CHAR_TO_BYTE.get(text.charCodeAt(i))
    if (b !== undefined) {
      out.push(b)
      continue
    }
    // a character outside the map: llama.cpp prints "[UNK_BYTE_0x<its utf-8 hex>" + the token's text + "]"
    const cp = text.codePointAt(i) as number
    const ch = String.fromCodePoint(cp)
    if (cp > 0xffff) i++
    const hex = [...utf8.encode(ch)].map((x) => x.toString(16).padStart(2, '0')).join('')
    for (const x of utf8.encode(`[UNK_BYTE_0x${hex}${text}]`)) out.push(x)
  }
  return Uint8Array.from(out)
}

import { GgufFormatError, UnsupportedModelError } from '../errors.js'
import type { GgufValue } from '../gguf/reader.js'
import { ByteLevelBpe, byteDecode } from './bpe.js'
import { preTokenizer, SUPPORTED_PRE_TOKENIZERS } from './pretokenize.js'
import { spmTokenize, type SpmVocab } from './spm.js'

/**
 * A GGUF file's own tokenizer, as llama.cpp's llama-vocab.cpp reads and runs it: SentencePiece
 * (`llama`) or byte-level BPE (`gpt2`), special and control tokens found in the text first
 * (tokenizer_st_partition), and the end-of-generation set chat needs.
 */
export interface EncodeOptions {
  /** Add BOS (and EOS) as the vocabulary says (llama.cpp's add_special). */
  readonly addSpecial: boolean
  /** Read control tokens written in the text (`<|eot_id|>` …) as those tokens (parse_special). */
  readonly parseSpecial: boolean
}

export interface TextTokenizer {
  readonly kind: 'spm' | 'bpe'
  readonly pre: string // the pre-tokenizer's name ('default' for SentencePiece)
  readonly vocabSize: number
  readonly bos: number | null
  readonly eos: number | null
  readonly addBos: boolean
  readonly addEos: boolean
  /** Tokens that end a generation: eos, eot, eom and the texts llama.cpp lists (`<|im_end|>` …). */
  readonly eog: ReadonlySet<number>
  encode: (text: string, opts: EncodeOptions) => number[]
  /** A token's text as the vocabulary stores it. */
  tokenText: (id: number) => string
  /** The bytes a token prints; control tokens print nothing unless `special` (token_to_piece). */
  pieceBytes: (id: number, special?: boolean) => Uint8Array
}

// llama.cpp's token types (tokenizer.ggml.token_type), as attribute bits
const NORMAL = 1
const UNKNOWN = 2
const CONTROL = 3
const USER_DEFINED = 4
const UNUSED = 5
const BYTE = 6
const ATTR: Readonly<Record<number, number>> = { [UNKNOWN]: 1 << 1, [UNUSED]: 1 << 2, [NORMAL]: 1 << 3, [CONTROL]: 1 << 4, [USER_DEFINED]: 1 << 5, [BYTE]: 1 << 6 }
const A_UNKNOWN = 1 << 1
const A_NORMAL = 1 << 3
const A_CONTROL = 1 << 4
const A_USER_DEFINED = 1 << 5
const A_BYTE = 1 << 6
const A_LSTRIP = 1 << 8
const A_RSTRIP = 1 << 9

/** Texts llama.cpp takes for an end-of-turn token when the file names none (special_eot_id). */
const EOT_TEXTS = ['<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>', '[EOT]', '<｜end▁of▁sentence｜>', '<end_of_utterance>']
/** Texts llama.cpp always counts as end of generation (special_eog_ids). */
const EOG_TEXTS = new Set(['<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>', '<|endoftext|>',
  '</s>', '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>', '<end_of_utterance>', '<eos>', '<turn|>', '<|tool_response>', '<｜end▁of▁sentence｜>', '[e~['])

const utf8 = new TextEncoder()
const isAsciiSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r'

type Fragment = string | number // raw text, or a token found in it

export function ggufTokenizer (metadata: ReadonlyMap<string, GgufValue>, where: string): TextTokenizer {
  const bad = (key: string, what: string): never => { throw new GgufFormatError(`${where}: ${key} ${what}; the file's tokenizer is damaged, download the model again`) }
  const model = metadata.get('tokenizer.ggml.model')
  if (typeof model !== 'string') bad('tokenizer.ggml.model', 'is missing')
  if (model !== 'llama' && model !== 'gpt2') {
    throw new UnsupportedModelError(`${where}: tokenizer "${String(model)}" is not supported; mesh runs "llama" (SentencePiece) and "gpt2" (byte-level BPE) tokenizers`)
  }
  const tokens = metadata.get('tokenizer.ggml.tokens')
  if (!Array.isArray(tokens) || tokens.length === 0 || typeof tokens[0] !== 'string') bad('tokenizer.ggml.tokens', 'is missing or not a list of strings')
  const texts = tokens as readonly string[]
  const n = texts.length
  const scoresValue = metadata.get('tokenizer.ggml.scores')
  const scores = scoresValue instanceof Float32Array ? scoresValue : null
  if (scoresValue !== undefined && (scores === null || scores.length !== n)) bad('tokenizer.ggml.scores', `is not ${n} float32 values`)
  const typesValue = metadata.get('tokenizer.ggml.token_type')
  const types = typesValue instanceof Int32Array ? typesValue : null
  if (typesValue !== undefined && (types === null || types.length !== n)) bad('tokenizer.ggml.token_type', `is not ${n} int32 values`)
  const flag = (key: string, fallback: boolean): boolean => {
    const v = metadata.get(key)
    if (v === undefined) return fallback
    return typeof v === 'boolean' ? v : bad(key, 'is not a boolean')
  }
  const id = (key: string): number | null => {
    const v = metadata.get(key)
    if (v === undefined) return null
    // llama.cpp ignores (with a warning) a special id outside the vocabulary
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < n ? v : null
  }

  const tokenId = new Map<string, number>()
  for (let i = 0; i < n; i++) if (!tokenId.has(texts[i] as string)) tokenId.set(texts[i] as string, i)
  const attrs = new Uint16Array(n)
  for (let i = 0; i < n; i++) attrs[i] = types === null ? A_NORMAL : ATTR[types[i] as number] ?? 0

  const spm = model === 'llama'
  const preName = spm ? 'default' : metadata.get('tokenizer.ggml.pre') ?? 'default'
  if (typeof preName !== 'string') bad('tokenizer.ggml.pre', 'is not a string')
  const pre = preTokenizer(preName as string)
  if (pre === undefined) {
    throw new UnsupportedModelError(`${where}: pre-tokenizer "${String(preName)}" is not supported; mesh knows ${SUPPORTED_PRE_TOKENIZERS.join(', ')}`)
  }

  // llama.cpp's defaults per tokenizer model, then the file's own settings
  const bos = id('tokenizer.ggml.bos_token_id') ?? (spm && n > 1 ? 1 : null)
  const eos = id('tokenizer.ggml.eos_token_id') ?? (spm && n > 2 ? 2 : null)
  const addBos = flag('tokenizer.ggml.add_bos_token', spm || pre.addBosDefault) && bos !== null && !pre.noBos
  const addEos = flag('tokenizer.ggml.add_eos_token', false) && eos !== null
  const addSpacePrefix = flag('tokenizer.ggml.add_space_prefix', spm)

  let eot = id('tokenizer.ggml.eot_token_id')
  let eom = id('tokenizer.ggml.eom_token_id')
  for (const [text, i] of tokenId) {
    if (eot === null && EOT_TEXTS.includes(text)) { eot = i; attrs[i] = (attrs[i] as number) | A_CONTROL }
    if (eom === null && text === '<|eom_id|>') { eom = i; attrs[i] = (attrs[i] as number) | A_CONTROL }
  }
  const eog = new Set<number>()
  for (const [text, i] of tokenId) {
    if (!EOG_TEXTS.has(text)) continue
    eog.add(i)
    attrs[i] = (attrs[i] as number) | A_CONTROL
  }
  for (const t of [eos, eot, eom]) if (t !== null) eog.add(t)

  // special tokens, longest first, are cut out of the text before the tokenizer proper runs
  const special: number[] = []
  for (let i = 0; i < n; i++) if (((attrs[i] as number) & (A_CONTROL | A_USER_DEFINED | A_UNKNOWN)) !== 0) special.push(i)
  special.sort((a, b) => utf8.encode(texts[b] as string).length - utf8.encode(texts[a] as string).length)
  // Phi-3's special tokens swallow the whitespace after them (llama.cpp sets it by model name)
  const name = metadata.get('general.name')
  if (typeof name === 'string' && /phi-?3/i.test(name)) {
    for (const i of special) attrs[i] = (attrs[i] as number) | A_RSTRIP
    for (const t of ['</s>']) { const i = tokenId.get(t); if (i !== undefined) attrs[i] = (attrs[i] as number) | A_RSTRIP }
    for (const t of ['<unk>', '<s>', '<|endoftext|>']) { const i = tokenId.get(t); if (i !== undefined) attrs[i] = (attrs[i] as number) & ~A_RSTRIP }
  }

  const partition = (text: string, parseSpecial: boolean): Fragment[] => {
    let fragments: Fragment[] = [text]
    for (const sid of special) {
      const a = attrs[sid] as number
      if (!parseSpecial && (a & (A_CONTROL | A_UNKNOWN)) !== 0) continue // user-defined tokens are always cut out
      const st = texts[sid] as string
      if (st === '') continue
      const next: Fragment[] = []
      for (const f of fragments) {
        if (typeof f === 'number') { next.push(f); continue }
        let rest = f
        for (let at = rest.indexOf(st); at >= 0; at = rest.indexOf(st)) {
          let left = rest.slice(0, at)
          if ((a & A_LSTRIP) !== 0) while (isAsciiSpace(left[left.length - 1])) left = left.slice(0, -1)
          if (left !== '') next.push(left)
          next.push(sid)
          rest = rest.slice(at + st.length)
          if ((a & A_RSTRIP) !== 0) while (isAsciiSpace(rest[0])) rest = rest.slice(1)
        }
        if (rest !== '') next.push(rest)
      }
      fragments = next
    }
    return fragments
  }

  const byteIds = new Int32Array(256).fill(-1)
  for (let b = 0; b < 256; b++) {
    const hex = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`
    byteIds[b] = tokenId.get(hex) ?? tokenId.get(String.fromCharCode(b)) ?? -1
  }
  const spmVocab: SpmVocab = { tokenId, scores, byteToken: (b) => (byteIds[b] as number) >= 0 ? byteIds[b] : undefined }
  let bpe: ByteLevelBpe | null = null
  if (!spm) {
    const merges = metadata.get('tokenizer.ggml.merges')
    if (!Array.isArray(merges) || (merges.length > 0 && typeof merges[0] !== 'string')) bad('tokenizer.ggml.merges', 'is missing or not a list of strings')
    bpe = new ByteLevelBpe(tokenId, merges as readonly string[], pre)
  }

  const encode = (text: string, opts: EncodeOptions): number[] => {
    const out: number[] = []
    if (opts.addSpecial && addBos && bos !== null) out.push(bos)
    const fragments = text === '' ? [] : partition(text, opts.parseSpecial)
    let prevSpecial = true // SentencePiece prefixes a space to the text and to text after a special token
    for (const f of fragments) {
      if (typeof f === 'number') { out.push(f); prevSpecial = true; continue }
      if (bpe !== null) bpe.tokenize(f, out)
      else spmTokenize(spmVocab, ((addSpacePrefix && prevSpecial ? ' ' : '') + f).replaceAll(' ', '▁'), out)
      prevSpecial = false
    }
    if (opts.addSpecial && addEos && eos !== null) out.push(eos)
    return out
  }

  const pieceBytes = (i: number, specialToo = false): Uint8Array => {
    const a = attrs[i] ?? 0
    const text = texts[i] ?? ''
    if ((a & (A_CONTROL | A_UNKNOWN)) !== 0) return specialToo ? utf8.encode(text) : new Uint8Array(0)
    if ((a & A_USER_DEFINED) !== 0) return utf8.encode(text)
    if ((a & A_NORMAL) !== 0) return spm ? utf8.encode(text.replaceAll('▁', ' ')) : byteDecode(text)
    if ((a & A_BYTE) !== 0) {
      // SentencePiece byte tokens are `<0xXX>`; byte-level BPE ones are the byte's stand-in character
      const hex = /^<0x([0-9A-Fa-f]{2})>$/.exec(text)
      return hex !== null ? Uint8Array.of(parseInt(hex[1] as string, 16)) : byteDecode(text)
    }
    return new Uint8Array(0) // unused and undefined tokens print nothing
  }

  return {
    kind: spm ? 'spm' : 'bpe',
    pre: pre.name,
    vocabSize: n,
    bos,
    eos,
    addBos,
    addEos,
    eog,
    encode,
    tokenText: (i) => texts[i] ?? '',
    pieceBytes
  }
}

/**
 * Streaming text from token ids: a token may end inside a UTF-8 character (byte tokens, BPE
 * pieces of an emoji), so bytes are held until they form whole characters.
 */
export interface TextDecoderStream {
  push: (id: number) => string
  /** Whatever is held (an incomplete character prints as U+FFFD). */
  flush: () => string
}

export function textDecoder (t: TextTokenizer): TextDecoderStream {
  const decoder = new TextDecoder('utf-8')
  return {
    push: (id) => decoder.decode(t.pieceBytes(id), { stream: true }),
    flush: () => decoder.decode()
  }
}

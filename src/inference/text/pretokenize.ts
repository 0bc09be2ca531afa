/**
 * The pre-tokenizer split of byte-level BPE vocabularies: before merges run, the text is cut into
 * words by the regexes that `tokenizer.ggml.pre` names, exactly as llama.cpp's llama-vocab.cpp
 * lists them per LLAMA_VOCAB_PRE_TYPE and unicode.cpp applies them.
 *
 * llama.cpp runs several regexes in sequence: each one cuts every piece the previous ones left,
 * and both its matches and the unmatched stretches between them become pieces. Its hand-written
 * splitters (gpt2, llama3, qwen2) are the regexes below written out as loops; the translations
 * here keep the regexes, with two changes JavaScript needs:
 * - `\s` becomes `\p{White_Space}`: llama.cpp's whitespace is Unicode's White_Space set, where
 *   JavaScript's `\s` also takes U+FEFF and leaves out U+0085.
 * - every regex runs on one piece at a time (a slice), so lookaheads like `\s+(?!\S)` see the
 *   piece's end where llama.cpp's splitters see it.
 */

/** How a vocabulary's words are cut, and the llama.cpp vocabulary settings that go with the name. */
export interface PreTokenizer {
  readonly name: string // the group's llama.cpp name, e.g. 'llama3' for llama-bpe
  /** Whole words found in the vocabulary skip merging (llama.cpp's ignore_merges, Llama 3 and Tekken style). */
  readonly ignoreMerges: boolean
  /** llama.cpp's add_bos default for the group when the file has no tokenizer.ggml.add_bos_token. */
  readonly addBosDefault: boolean
  /** The group has no BOS token even if the model type's default names one (chatglm). */
  readonly noBos: boolean
  split: (text: string) => string[]
}

const WS = '\\p{White_Space}'
const NOT_WS = '\\P{White_Space}'

/** Write a llama.cpp regex string with \s and \S as Unicode White_Space (see above). */
function re (source: string): RegExp {
  const translated = source
    .replaceAll('\\s', WS)
    .replaceAll('\\S', NOT_WS)
  return new RegExp(translated, 'gu')
}

// The regex strings as llama-vocab.cpp has them (its "adapted" forms: case-insensitive
// contractions spelled out, since std::regex and JavaScript lack (?i:...) groups).
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
const LLAMA3 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
const QWEN2 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
const QWEN35 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

interface Group {
  readonly regexes: readonly string[]
  readonly names: readonly string[] // tokenizer.ggml.pre values llama.cpp maps to this group
  readonly ignoreMerges?: boolean
  readonly addBos?: boolean
  readonly noBos?: boolean
}

const GROUPS: Readonly<Record<string, Group>> = {
  // LLAMA_VOCAB_PRE_TYPE_DEFAULT: what llama.cpp uses when a file names no pre-tokenizer
  default: {
    regexes: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]'],
    names: ['default']
  },
  llama3: {
    regexes: [LLAMA3],
    names: ['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2', 'jina-v5-nano'],
    ignoreMerges: true,
    addBos: true
  },
  dbrx: { regexes: [LLAMA3], names: ['dbrx', 'smaug-bpe'] },
  chatglm4: { regexes: [LLAMA3], names: ['glm4', 'chatglm-bpe'], noBos: true },
  gpt2: {
    regexes: [GPT2],
    names: ['gpt-2', 'phi-2', 'jina-es', 'jina-de', 'gigachat', 'jina-v2-es', 'jina-v2-de', 'a.x-4.0', 'mellum',
      'modern-bert', 'exaone4', 'mpt', 'olmo', 'jais', 'trillion', 'granite-docling']
  },
  qwen2: {
    regexes: [QWEN2],
    names: ['qwen2', 'deepseek-r1-qwen', 'kormo', 'f2llmv2', 'megrez', 'stablelm2', 'hunyuan', 'solar-open']
  },
  qwen35: { regexes: [QWEN35], names: ['qwen35'] },
  // StarCoder, SmolLM and friends: every digit is its own word, then the GPT-2 split
  starcoder: {
    regexes: ['\\p{N}', GPT2],
    names: ['starcoder', 'refact', 'command-r', 'smollm', 'codeshell', 'exaone', 'minerva-7b', 'mellum2']
  }
}

const BY_NAME = new Map<string, { group: string, def: Group }>()
for (const [group, def] of Object.entries(GROUPS)) {
  for (const name of def.names) BY_NAME.set(name, { group, def })
}

/** Every tokenizer.ggml.pre value mesh can split by, for error messages. */
export const SUPPORTED_PRE_TOKENIZERS: readonly string[] = [...BY_NAME.keys()]

/** The pre-tokenizer a `tokenizer.ggml.pre` value names, or undefined if mesh does not know it. */
export function preTokenizer (pre: string): PreTokenizer | undefined {
  const found = BY_NAME.get(pre)
  if (found === undefined) return undefined
  const regexes = found.def.regexes.map(re)
  return {
    name: found.group,
    ignoreMerges: found.def.ignoreMerges ?? false,
    addBosDefault: found.def.addBos ?? false,
    noBos: found.def.noBos ?? false,
    split: (text) => splitAll(text, regexes)
  }
}

/** Apply the regexes in turn, each to every piece the previous ones made (unicode_regex_split). */
function splitAll (text: string, regexes: readonly RegExp[]): string[] {
  let pieces = text.length > 0 ? [text] : []
  for (const regex of regexes) {
    const next: string[] = []
    for (const piece of pieces) splitPiece(piece, regex, next)
    pieces = next
  }
  return pieces
}

/** One regex over one piece: its matches and the stretches between them, in order. */
function splitPiece (piece: string, regex: RegExp, out: string[]): void {
  regex.lastIndex = 0
  let done = 0
  for (let m = regex.exec(piece); m !== null; m = regex.exec(piece)) {
    const length = m[0].length
    if (length === 0) { // none of these regexes matches empty text, but never loop on one that does
      regex.lastIndex = m.index + 1
      continue
    }
    if (m.index > done) out.push(piece.slice(done, m.index))
    out.push(m[0])
    done = m.index + length
  }
  if (done < piece.length) out.push(piece.slice(done))
}

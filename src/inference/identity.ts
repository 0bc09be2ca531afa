import { createHash } from 'node:crypto'

/** A model is its files: members of a ring compare these to be sure they run the same model. */
export interface ModelIdentity {
  readonly checkpointSha256: string
  readonly tokenizerSha256: string
  readonly id: string // sha256 of "<checkpoint sha256>\n<tokenizer sha256>\n"
}

export function modelIdentity (checkpointSha256: string, tokenizerSha256: string): ModelIdentity {
  const id = createHash('sha256').update(`${checkpointSha256}\n${tokenizerSha256}\n`).digest('hex')
  return { checkpointSha256, tokenizerSha256, id }
}

/**
 * Whether a ring member can take part in a model's jobs: every member of a job must serve the
 * same model (the same checkpoint and tokenizer, by sha256), as its heartbeat announces it.
 */
export type ModelMatch =
  | { readonly serves: true }
  | { readonly serves: false, readonly reason: 'no-model-announced' | 'different-model', readonly text: string }

/** `ours`: the job's model id; `theirs`: what the member announced (undefined/'' before it said). */
export function matchModel (ours: string, theirs: string | undefined): ModelMatch {
  if (theirs === undefined || theirs === '') {
    return { serves: false, reason: 'no-model-announced', text: 'has not announced a model yet' }
  }
  if (theirs !== ours) {
    return { serves: false, reason: 'different-model', text: `serves another model (${shortModelId(theirs)})` }
  }
  return { serves: true }
}

/** Enough of a model id to tell models apart on screen. */
export const shortModelId = (id: string): string => id.slice(0, 12)

import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'

/**
 * What the ring benches' member processes share: their ids, the median of runs, and the typed
 * messages between the bench and its children (child.send / process.send).
 */
export const memberIds = (n: number): string[] => Array.from({ length: n }, (_, i) => `m${i}`)
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** The next message of `kind` from a child, skipping others. */
export async function nextFrom<M extends { kind: string }, K extends M['kind']> (child: ChildProcess, kind: K): Promise<Extract<M, { kind: K }>> {
  for (;;) {
    const [msg] = await once(child, 'message') as [M]
    if (msg.kind === kind) return msg as Extract<M, { kind: K }>
  }
}

/** In a child: the bench's next message. */
export const nextFromParent = async <M>(): Promise<M> => await new Promise((resolve) => process.once('message', resolve))

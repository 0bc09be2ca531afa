import type { ControlChannel, JobMessage } from '../../src/inference/job/messages.js'

/**
 * Two ends of an in-process control stream: what one end sends the other receives, in order;
 * closing either end ends both. A fake wire for testing the job logic, which the agent runs over
 * libp2p streams.
 */
export function channelPair (): [ControlChannel, ControlChannel] {
  const queues: [JobMessage[], JobMessage[]] = [[], []]
  const waiters: Array<((m: JobMessage | undefined) => void) | undefined> = [undefined, undefined]
  let closed = false
  const end = (me: 0 | 1): ControlChannel => {
    const other = me === 0 ? 1 : 0
    return {
      send: async (m) => {
        if (closed) throw new Error('channel closed')
        const w = waiters[other]
        if (w !== undefined) { waiters[other] = undefined; w(m) } else queues[other].push(m)
      },
      receive: async (timeoutMs) => {
        const queued = queues[me].shift()
        if (queued !== undefined || closed) return queued
        return await new Promise((resolve) => {
          const timer = timeoutMs === undefined ? undefined : setTimeout(() => { waiters[me] = undefined; resolve(undefined) }, timeoutMs)
          waiters[me] = (m) => { clearTimeout(timer); resolve(m) }
        })
      },
      close: () => {
        closed = true
        for (const i of [0, 1] as const) { const w = waiters[i]; waiters[i] = undefined; w?.(undefined) }
      }
    }
  }
  return [end(0), end(1)]
}

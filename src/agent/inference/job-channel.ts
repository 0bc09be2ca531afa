import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { decodeJobMessage, encodeJobMessage, MAX_JOB_MESSAGE_BYTES, type ControlChannel } from '../../inference/job/messages.js'

/**
 * A job's control stream over libp2p: length-prefixed job messages. Anything that cannot be read
 * or decoded ends the channel (receive gives undefined), which the job logic treats as the peer
 * leaving the job.
 */
export function libp2pChannel (stream: Stream, onBadMessage: () => void = () => {}): ControlChannel {
  const lp = lpStream(stream, { maxDataLength: MAX_JOB_MESSAGE_BYTES })
  let ended = false
  return {
    send: async (m) => { await lp.write(encodeJobMessage(m)) },
    receive: async (timeoutMs) => {
      if (ended) return undefined
      try {
        const bytes = await lp.read(timeoutMs === undefined ? undefined : { signal: AbortSignal.timeout(timeoutMs) })
        const m = decodeJobMessage(bytes.subarray())
        if (m === undefined) { onBadMessage(); ended = true; stream.abort(new Error('bad job message')) }
        return m
      } catch {
        ended = true
        return undefined
      }
    },
    close: () => {
      if (ended) return
      ended = true
      void stream.close().catch(() => { stream.abort(new Error('closed')) })
    }
  }
}

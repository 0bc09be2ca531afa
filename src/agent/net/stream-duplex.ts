import type { Stream } from '@libp2p/interface'
import { Duplex } from 'node:stream'

/**
 * A libp2p stream as a Node Duplex, for code written against sockets (the tensor plane's links
 * when members reach each other only through a relay). Backpressure both ways: a full libp2p
 * send buffer holds the write callback until 'drain'; a full Duplex read buffer pauses the stream.
 * Closing either end closes the other: the stream's 'close' destroys the Duplex (with its error,
 * if any), and destroying the Duplex aborts the stream.
 */
export function streamDuplex (stream: Stream): Duplex {
  let paused = false
  let ended = false
  const end = (): void => {
    if (ended) return
    ended = true
    duplex.push(null)
  }
  const duplex = new Duplex({
    allowHalfOpen: false,
    read () {
      if (!paused) return
      paused = false
      try { stream.resume() } catch { /* closing: 'close' ends the Duplex */ }
    },
    write (chunk: Buffer, _encoding, callback) {
      try {
        if (stream.send(chunk)) callback()
        else stream.onDrain().then(() => { callback() }, callback)
      } catch (err) {
        callback(err as Error)
      }
    },
    final (callback) {
      stream.close().then(() => { callback() }, callback)
    },
    destroy (err, callback) {
      stream.abort(err ?? new Error('closed'))
      callback(err)
    }
  })
  stream.addEventListener('message', (e) => {
    if (ended) return
    const data = e.data instanceof Uint8Array ? e.data : e.data.subarray()
    if (!duplex.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength)) && !paused) {
      paused = true
      stream.pause()
    }
  })
  stream.addEventListener('remoteCloseWrite', end)
  stream.addEventListener('close', (e) => {
    if (e.error !== undefined) { duplex.destroy(e.error); return }
    end()
    duplex.destroy()
  })
  return duplex
}

import type http from 'node:http'

/** at least every 15 s something must pass, or proxies and clients drop a quiet stream (a long prompt) */
export const KEEPALIVE_MS = 10_000

/**
 * A Server-Sent Events answer as strict OpenAI clients parse it: `text/event-stream`, LF only,
 * each event `data: <json>\n\n`, the end `data: [DONE]\n\n`. Headers go out at once; while no
 * event passes, a comment line keeps the connection alive.
 */
export class SseStream {
  private lastWrite = Date.now()
  private readonly timer: NodeJS.Timeout

  constructor (private readonly res: http.ServerResponse, headers: Record<string, string>, keepaliveMs = KEEPALIVE_MS) {
    res.socket?.setNoDelay(true) // one token is one small write: send it now
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' })
    res.flushHeaders()
    this.timer = setInterval(() => {
      if (Date.now() - this.lastWrite >= keepaliveMs) this.write(': keepalive\n\n')
    }, Math.max(10, Math.floor(keepaliveMs / 2)))
  }

  get open (): boolean { return !this.res.writableEnded && !this.res.destroyed }

  event (data: object): void { this.write(`data: ${JSON.stringify(data)}\n\n`) }

  /** `[DONE]` and the end of the answer. */
  end (): void {
    clearInterval(this.timer)
    if (!this.open) return
    this.res.end('data: [DONE]\n\n')
  }

  /** The client left: stop the keepalive, write nothing more. */
  close (): void { clearInterval(this.timer) }

  private write (text: string): void {
    if (!this.open) return
    this.lastWrite = Date.now()
    this.res.write(text)
  }
}

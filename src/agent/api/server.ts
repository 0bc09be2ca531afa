import fs from 'node:fs'
import http from 'node:http'
import { AgentSocketError } from '../errors.js'
import { apiSocket, runDir } from '../paths.js'

/** What the local API serves. Each route returns plain JSON data. */
export interface ApiRoutes {
  status: () => unknown
  peers: (poolId: string | undefined) => unknown
  /** each pool's ring (or one pool's): epoch, members in order with column ranges, convergence */
  ring: (poolId: string | undefined) => unknown
  /** answer first, then stop: the caller waits for the process to exit */
  stop: () => void
  /** run an inference job, streaming its events; `body` is the untrusted request JSON */
  inference?: (body: unknown, emit: (event: object) => void) => Promise<void>
  inferenceStats?: () => unknown
}

/** An inference request is a prompt and a few settings: a bound well above any context. */
const MAX_BODY_BYTES = 256 * 1024

// Linux sun_path is 108 bytes including the terminating NUL
const MAX_SOCKET_PATH = 107

/** Events closer together than this share one write: a small model's tokens come every ~100 µs. */
const FLUSH_MS = 2

/**
 * NDJSON lines written in batches: one write (a syscall and an HTTP chunk) per FLUSH_MS or per turn
 * of the event loop, whichever comes first, so a generation loop that never yields (a ring of one,
 * no network to wait on) still streams, and one that waits on the network writes each token at once.
 */
function coalesced (res: http.ServerResponse): { emit: (event: object) => void, flush: () => void } {
  let pending = ''
  let last = performance.now()
  let scheduled = false
  const flush = (): void => {
    scheduled = false
    if (pending === '' || res.writableEnded) return
    res.write(pending)
    pending = ''
    last = performance.now()
  }
  return {
    flush,
    emit: (event) => {
      pending += JSON.stringify(event) + '\n'
      if (performance.now() - last >= FLUSH_MS) flush()
      else if (!scheduled) { scheduled = true; setImmediate(flush) }
    }
  }
}

/**
 * HTTP over a Unix socket in MESH_HOME/run (0700, socket 0600): only the owner of MESH_HOME can
 * talk to the agent, and no TCP port is opened for it.
 */
export class LocalApi {
  private server: http.Server | undefined
  constructor (private readonly home: string, private readonly routes: ApiRoutes) {}

  async start (): Promise<void> {
    if (this.server !== undefined) return
    const sock = apiSocket(this.home)
    if (Buffer.byteLength(sock) > MAX_SOCKET_PATH) {
      throw new AgentSocketError(`the API socket path ${sock} is longer than ${MAX_SOCKET_PATH} bytes; use a shorter MESH_HOME`)
    }
    fs.mkdirSync(runDir(this.home), { recursive: true, mode: 0o700 })
    fs.chmodSync(runDir(this.home), 0o700)
    fs.rmSync(sock, { force: true }) // left by a crashed agent; the pid file check ran before us
    const server = http.createServer((req, res) => { this.handle(req, res) })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(sock, () => { server.off('error', reject); resolve() })
    })
    fs.chmodSync(sock, 0o600)
    this.server = server
  }

  private handle (req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://agent')
    const reply = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    try {
      if (req.method === 'GET' && url.pathname === '/v1/status') return reply(200, this.routes.status())
      if (req.method === 'GET' && url.pathname === '/v1/peers') return reply(200, this.routes.peers(url.searchParams.get('pool') ?? undefined))
      if (req.method === 'GET' && url.pathname === '/v1/ring') return reply(200, this.routes.ring(url.searchParams.get('pool') ?? undefined))
      if (req.method === 'GET' && url.pathname === '/v1/inference-stats' && this.routes.inferenceStats !== undefined) return reply(200, this.routes.inferenceStats())
      if (req.method === 'POST' && url.pathname === '/v1/inference' && this.routes.inference !== undefined) return this.stream(req, res, this.routes.inference)
      if (req.method === 'POST' && url.pathname === '/v1/stop') {
        res.on('finish', () => { this.routes.stop() })
        return reply(202, { stopping: true })
      }
      reply(404, { error: `no route ${req.method ?? ''} ${url.pathname}` })
    } catch (err) {
      reply(500, { error: err instanceof Error ? err.message : String(err) })
    }
  }

  /** Read a bounded JSON body, then answer with one JSON event per line (NDJSON) as the route emits them. */
  private stream (req: http.IncomingMessage, res: http.ServerResponse, route: NonNullable<ApiRoutes['inference']>): void {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_BODY_BYTES) { res.writeHead(413, { 'content-type': 'application/json' }); res.end(JSON.stringify({ error: `request larger than ${MAX_BODY_BYTES} bytes` })); req.destroy() } else chunks.push(c)
    })
    req.on('end', () => {
      if (res.writableEnded) return
      let body: unknown
      try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')) } catch {
        res.writeHead(400, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: 'the request is not JSON' }))
        return
      }
      res.writeHead(200, { 'content-type': 'application/x-ndjson' })
      const out = coalesced(res)
      route(body, out.emit)
        .catch((err: unknown) => { out.emit({ type: 'error', error: 'Error', usage: false, message: err instanceof Error ? err.message : String(err) }) })
        .finally(() => { out.flush(); res.end() })
    })
  }

  async stop (): Promise<void> {
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    server.closeAllConnections()
    await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    fs.rmSync(apiSocket(this.home), { force: true })
  }
}

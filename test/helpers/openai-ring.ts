import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { expect, vi } from 'vitest'
import { callAgent } from '../../src/agent/api/client.js'
import type { RingReport } from '../../src/agent/net/pool-ring.js'
import { killAgents, startAgents } from './agent-procs.js'
import { tempRoot, testPool, type TestDevice } from './pools.js'

/** A TCP port free right now on 127.0.0.1 (the kernel picks it). */
export async function freeTcpPort (): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((resolve) => { s.listen(0, '127.0.0.1', () => { resolve() }) })
  const port = (s.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => { s.close(() => { resolve() }) })
  return port
}

/** A ring of agents (child processes, each its own MESH_HOME) whose first serves the OpenAI API. */
export interface ApiRing {
  readonly devs: TestDevice[]
  /** http://127.0.0.1:PORT of the first agent's API */
  readonly base: string
  readonly port: number
  stop: () => void
}

/**
 * Start `n` agents on 127.0.0.1, all with `args`, the first serving the OpenAI API on a free port
 * (its agent.json says `"api": "127.0.0.1:PORT"`), and wait until each sees the whole ring converged.
 */
export async function startApiRing (n: number, args: readonly string[]): Promise<ApiRing> {
  const root = tempRoot()
  const p = testPool(root, Array.from({ length: n }, (_, i) => i === 0 ? 'admin' : `m${i}`))
  const devs = [p.admin, ...p.members]
  const port = await freeTcpPort()
  fs.writeFileSync(path.join(devs[0].home, 'agent.json'), JSON.stringify({ api: `127.0.0.1:${port}` }))
  const homes: string[] = []
  const stop = (): void => { killAgents(homes); fs.rmSync(root, { recursive: true, force: true }) }
  try {
    await startAgents(devs.map((d) => d.home), homes, args)
    await waitForRing(devs, n)
  } catch (err) { stop(); throw err }
  return { devs, base: `http://127.0.0.1:${port}`, port, stop }
}

/** Wait until every agent sees `n` ring members, converged. */
export async function waitForRing (devs: readonly TestDevice[], n: number): Promise<void> {
  await vi.waitFor(async () => {
    for (const d of devs) {
      const [r] = await callAgent<RingReport[]>(d.home, 'GET', '/v1/ring')
      expect(r?.topology.members).toHaveLength(n)
      expect(r?.converged).toBe(true)
    }
  }, { timeout: 60_000, interval: 200 })
}

export interface RawResponse { status: number, headers: http.IncomingHttpHeaders, body: Buffer }

/**
 * One HTTP request with node:http, for what fetch hides: the raw bytes of the answer, any Host
 * header, the moment headers arrive (`onHeaders`), and each chunk as it comes (`onData`).
 */
export async function rawRequest (base: string, method: string, path: string, opts: {
  headers?: Record<string, string>, body?: string | Buffer, onHeaders?: (res: http.IncomingMessage) => void, onData?: (soFar: Buffer, req: http.ClientRequest) => void
} = {}): Promise<RawResponse> {
  const url = new URL(path, base)
  return await new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers: opts.headers }, (res) => {
      opts.onHeaders?.(res)
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => { chunks.push(c); opts.onData?.(Buffer.concat(chunks), req) })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }) })
      res.on('error', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }) })
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

export const postJson = async (base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<RawResponse> =>
  await rawRequest(base, 'POST', path, { body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } })

export const jsonOf = (r: RawResponse): any => JSON.parse(r.body.toString('utf8'))

/** The events of an SSE answer, checked as strict clients read them: LF only, `data: ` lines, blank-line separated, [DONE] last. */
export function sseEvents (body: Buffer): { events: any[], comments: string[] } {
  const text = body.toString('utf8')
  expect(text).not.toContain('\r')
  expect(text.endsWith('data: [DONE]\n\n')).toBe(true)
  const blocks = text.slice(0, -'data: [DONE]\n\n'.length).split('\n\n')
  expect(blocks.pop()).toBe('')
  const events: any[] = []
  const comments: string[] = []
  for (const b of blocks) {
    if (b.startsWith(':')) { comments.push(b); continue }
    expect(b.startsWith('data: ') && !b.includes('\n')).toBe(true)
    events.push(JSON.parse(b.slice(6)))
  }
  return { events, comments }
}

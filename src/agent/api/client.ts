import http from 'node:http'
import { AgentApiError, AgentNotRunningError } from '../errors.js'
import { apiSocket } from '../paths.js'

/**
 * One request to the local API of the agent of `home`. AgentNotRunningError when nothing listens
 * (no socket, or a socket left by a crashed agent).
 */
export async function callAgent<T> (home: string, method: 'GET' | 'POST', pathAndQuery: string, timeoutMs = 5000): Promise<T> {
  return await new Promise<T>((resolve, reject) => {
    const req = http.request({ socketPath: apiSocket(home), method, path: pathAndQuery, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        let body: unknown
        try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')) } catch { return reject(new AgentApiError('the agent sent a reply that is not JSON')) }
        if ((res.statusCode ?? 500) >= 400) {
          const msg = typeof body === 'object' && body !== null && 'error' in body ? String(body.error) : `status ${res.statusCode ?? '?'}`
          return reject(new AgentApiError(`the agent refused: ${msg}`))
        }
        resolve(body as T)
      })
    })
    req.on('timeout', () => { req.destroy(new AgentApiError(`the agent did not answer within ${timeoutMs} ms; see MESH_HOME/logs/agent.log`)) })
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof AgentApiError) return reject(err)
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTDIR') return reject(new AgentNotRunningError(home))
      reject(new AgentApiError(`cannot reach the agent: ${err.code ?? err.message}`))
    })
    req.end()
  })
}

/**
 * POST a JSON body and hand each line of the NDJSON answer to `onEvent` as it arrives; resolves
 * when the agent ends the stream. AgentNotRunningError when nothing listens.
 */
export async function streamAgent (home: string, path: string, body: unknown, onEvent: (event: unknown) => void): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const req = http.request({ socketPath: apiSocket(home), method: 'POST', path, headers: { 'content-type': 'application/json' } }, (res) => {
      if ((res.statusCode ?? 500) >= 400) {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          let msg = `status ${res.statusCode ?? '?'}`
          try { const b = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: unknown }; if (b.error !== undefined) msg = String(b.error) } catch { /* keep the status */ }
          reject(new AgentApiError(`the agent refused: ${msg}`))
        })
        return
      }
      let pending = ''
      res.setEncoding('utf8')
      res.on('data', (text: string) => {
        pending += text
        let nl
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl)
          pending = pending.slice(nl + 1)
          if (line.trim() === '') continue
          let event: unknown
          try { event = JSON.parse(line) } catch { reject(new AgentApiError('the agent sent a line that is not JSON')); req.destroy(); return }
          onEvent(event)
        }
      })
      res.on('end', () => { resolve() })
      res.on('error', (err) => { reject(new AgentApiError(`the agent's answer broke off: ${err.message}`)) })
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTDIR') return reject(new AgentNotRunningError(home))
      reject(new AgentApiError(`cannot reach the agent: ${err.code ?? err.message}`))
    })
    req.end(JSON.stringify(body))
  })
}

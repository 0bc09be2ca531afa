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

/**
 * Test helpers for mesh-control-plane: a signing client for a test member, and the real server as a
 * child process on 127.0.0.1 with its own MESH_HOME.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { ControlPlaneClient, type ControlPlaneClientOptions } from '../../src/control-plane/client.js'
import { exited, type TestMember } from './members.js'

export const MAIN = path.resolve('dist/control-plane/main.js')

export function clientFor (url: string, m: TestMember, opts?: ControlPlaneClientOptions): ControlPlaneClient {
  return new ControlPlaneClient(url, m.pool.poolId, { certBytes: m.certBytes, privateKey: m.seed }, opts)
}

export interface RunningControlPlane {
  readonly proc: ChildProcess
  readonly port: number
  readonly url: string
  readonly stderr: () => string
  /** SIGTERM and wait for exit */
  stop: () => Promise<void>
}

/** Start the server; resolves once it printed its bound address (JSON). */
export async function startControlPlane (home: string, args: string[]): Promise<RunningControlPlane> {
  const proc = spawn(process.execPath, [MAIN, '--home', home, '--host', '127.0.0.1', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n')[0]
      if (out.includes('\n') && line !== undefined) resolve((JSON.parse(line) as { port: number }).port)
    })
    proc.once('exit', (code) => reject(new Error(`control plane exited with ${code}: ${err}`)))
  })
  return {
    proc,
    port,
    url: `http://127.0.0.1:${port}`,
    stderr: () => err,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
      await exited(proc)
    }
  }
}

/** mesh-relay as a child process on 127.0.0.1 with its own MESH_HOME, for the tests that need a relay. */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'

export const RELAY = path.resolve('dist/relay/main.js')

export interface RunningRelay { proc: ChildProcess, peerId: string, addr: string, stun: { host: string, ports: number[] } }

/** Start the relay on a free port, without STUN unless `args` name --stun-port (fixed UDP ports would collide between tests) (recorded in `started` first, so afterEach can stop it); resolves once it printed its addresses. */
export async function startRelay (home: string, args: string[], started: ChildProcess[]): Promise<RunningRelay> {
  const proc = spawn(process.execPath, [RELAY, '--home', home, '--host', '127.0.0.1', '--port', '0', '--json', '--stun-port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  started.push(proc)
  let out = ''
  let err = ''
  proc.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  const info = await new Promise<{ peerId: string, addresses: string[], stun: { host: string, ports: number[] } }>((resolve, reject) => {
    proc.stdout?.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0] as string)) })
    proc.once('exit', (code) => reject(new Error(`relay exited with ${code}: ${err}`)))
  })
  return { proc, peerId: info.peerId, addr: info.addresses[0] as string, stun: info.stun }
}

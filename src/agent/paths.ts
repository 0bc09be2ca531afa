import path from 'node:path'

/** run/ holds the pid file and the API socket; it is 0700 so only the owner can reach the socket. */
export function runDir (home: string): string { return path.join(home, 'run') }
export function pidFile (home: string): string { return path.join(runDir(home), 'agent.pid') }
export function apiSocket (home: string): string { return path.join(runDir(home), 'agent.sock') }
export function peerCacheFile (home: string): string { return path.join(home, 'peers.json') }
/** stdout/stderr of a detached agent: only a crash before the logger exists ends up here */
export function daemonOutFile (home: string): string { return path.join(home, 'logs', 'agent.out') }

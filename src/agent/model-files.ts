import fs from 'node:fs'
import { fetchedModelPath, type ServeConfig } from './config.js'

/**
 * The checkpoint file to serve: the one named, else (given a sha256) one fetched earlier; null
 * when it must come from the pool. Without a sha256 it is the one named, there or not.
 */
export function localCheckpoint (m: ServeConfig, home: string): string | null {
  if (m.sha256 === undefined || fs.existsSync(m.checkpointPath)) return m.checkpointPath
  const cached = fetchedModelPath(home, m.sha256)
  return fs.existsSync(cached) ? cached : null
}

import path from 'node:path'
import { z } from 'zod'
import { CorruptFileError, readJsonFile, writeJsonAtomic } from '../atomic-file.js'

const schema = z.strictObject({ incarnation: z.number().int().nonnegative() })

/**
 * The incarnation for this start of the agent: higher than every earlier one on this device, so
 * peers take the restarted member's heartbeats as news rather than replays. The wall clock gives
 * a good start; the stored value covers a clock that was set back.
 */
export function nextIncarnation (home: string, wallNowMs: number): number {
  const file = path.join(home, 'ring_incarnation.json')
  const raw = readJsonFile(file)
  let last = 0
  if (raw !== undefined) {
    const parsed = schema.safeParse(raw)
    if (!parsed.success) throw new CorruptFileError(file, 'expected {"incarnation": <whole number>}')
    last = parsed.data.incarnation
  }
  const incarnation = Math.max(Math.floor(wallNowMs), last + 1)
  writeJsonAtomic(file, { incarnation })
  return incarnation
}

import { existsSync } from 'node:fs'
import path from 'node:path'

/**
 * The project's shared test data (GGUF models, goldens) lives beside the repository in ../shared
 * (or MESH_SHARED). Tests that need it skip, saying so, where a checkout has none.
 */
const dir = path.resolve(process.env.MESH_SHARED ?? path.join(process.cwd(), '..', 'shared'))
export const SHARED_DIR: string | null = existsSync(path.join(dir, 'models', 'gguf')) ? dir : null
export const sharedPath = (rel: string): string => path.join(SHARED_DIR ?? dir, rel)
if (SHARED_DIR === null) console.warn(`skipping GGUF tests: no shared test data at ${dir} (set MESH_SHARED)`)

import { fileURLToPath } from 'node:url'

/** A file of the bundled stories260K model, relative to this file in src/cli, dist/cli and dist/bundle alike. */
export const bundledModelFile = (file: string): string => fileURLToPath(new URL(`../../models/stories260K/${file}`, import.meta.url))

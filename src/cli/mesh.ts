#!/usr/bin/env node
/**
 * The `mesh` executable. It runs the CLI from the bundle that `npm run build` makes
 * (scripts/bundle.mjs: a few files instead of ~380 ES modules, several times faster to load);
 * a build without it runs the modules as they are.
 */
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'

const bundle = new URL('../bundle/mesh.js', import.meta.url)
await import(fs.existsSync(fileURLToPath(bundle)) ? bundle.href : './main.js')

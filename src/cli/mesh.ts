#!/usr/bin/env node
import '../polyfill.js'
import { hideBin } from 'yargs/helpers'
import { processIO } from './io.js'
import { runCli } from './run.js'

process.exitCode = await runCli(hideBin(process.argv), processIO)

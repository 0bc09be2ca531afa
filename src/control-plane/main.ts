#!/usr/bin/env node
import '../polyfill.js'
import { notImplementedMain } from '../cli/not-implemented.js'

notImplementedMain('mesh-control-plane', 'HTTP fallback for ring join and job distribution')

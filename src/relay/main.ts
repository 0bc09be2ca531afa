#!/usr/bin/env node
import '../polyfill.js'
import { notImplementedMain } from '../cli/not-implemented.js'

notImplementedMain('mesh-relay', 'libp2p circuit relay for members that cannot reach each other directly')

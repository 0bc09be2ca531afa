import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // libp2p 3 needs Promise.withResolvers, which Node 20 lacks
    setupFiles: ['src/polyfill.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // integration and e2e tests start real processes; two cores cannot run many at once
    maxWorkers: 2
  }
})

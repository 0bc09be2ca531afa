import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

/** Checks on the repository itself: what a newcomer following the README would trip over. */
const git = (...args: string[]): string => execFileSync('git', args, { encoding: 'utf8' })
const inGit = existsSync('.git') || (() => { try { git('rev-parse', '--git-dir'); return true } catch { return false } })()

describe.skipIf(!inGit)('the repository', () => {
  it('every script the README tells people to run is executable in git', () => {
    const readme = readFileSync('README.md', 'utf8')
    const scripts = [...new Set([...readme.matchAll(/(?:^|[\s`(])((?:scripts|bench)\/[\w.-]+\.sh)\b/gm)].map((m) => m[1] as string))]
    expect(scripts.length).toBeGreaterThan(0)
    for (const s of scripts) {
      const mode = git('ls-files', '-s', s).split(' ')[0]
      expect(`${s} ${mode}`).toBe(`${s} 100755`)
    }
  })

  it('every module under src/ is imported by something (no dead files)', () => {
    const files = git('ls-files', 'src').split('\n').filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    const sources = files.map((f) => readFileSync(f, 'utf8')).join('\n') + readFileSync('scripts/bundle.mjs', 'utf8') + readFileSync('package.json', 'utf8')
    // entry points are named in package.json's bin (as dist/…/*.js)
    const unused = files.filter((f) => {
      const stem = f.replace(/^src\//, '').replace(/\.ts$/, '')
      const base = stem.split('/').pop() as string
      return !new RegExp(`['"/]${base.replace(/[.-]/g, '\\$&')}\\.js['"]`).test(sources) && !sources.includes(`dist/${stem}.js`)
    })
    expect(unused).toEqual([])
  })

  it('imports run one way: nothing outside src/cli imports the CLI (the daemons share src/process)', () => {
    const files = git('ls-files', 'src').split('\n').filter((f) => f.endsWith('.ts') && !f.startsWith('src/cli/'))
    const reaching = files.filter((f) => /from '(\.\.\/)+cli\//.test(readFileSync(f, 'utf8')))
    expect(reaching).toEqual([])
  })

  it('npm ci is quiet on our account: no project .npmrc keys npm does not know, every install script decided in allowScripts', () => {
    // npm warns on unknown keys in a project .npmrc (and will stop reading them), and on install scripts allowScripts does not cover
    expect(existsSync('.npmrc')).toBe(false)
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { allowScripts?: Record<string, boolean> }
    const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> }
    const withScripts = Object.entries(lock.packages).filter(([, p]) => p.hasInstallScript === true).map(([at]) => at.replace(/^.*node_modules\//, ''))
    expect(withScripts.filter((name) => typeof pkg.allowScripts?.[name] !== 'boolean')).toEqual([])
  })
})

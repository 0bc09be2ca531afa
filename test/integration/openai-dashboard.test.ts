import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { callAgent } from '../../src/agent/api/client.js'
import type { InferenceStats } from '../../src/agent/inference/events.js'
import { readPid } from '../../src/agent/pidfile.js'
import { mesh } from '../helpers/agent-procs.js'
import { startApiRing, type ApiRing } from '../helpers/openai-ring.js'
import { tempRoot } from '../helpers/pools.js'

/*
 * The dashboard in a real headless browser: Debian's chromium (installed here when missing, as
 * the project's setup does) driven by playwright-core, against a 2-member ring of agents serving
 * the bundled stories260K. Screenshots go to the test's temp dir (printed) to look at.
 */
const CHROMIUM = '/usr/bin/chromium'
function ensureChromium (): string | undefined {
  if (fs.existsSync(CHROMIUM)) return undefined
  try { execFileSync('apt-get', ['install', '-y', 'chromium'], { stdio: 'ignore', timeout: 600_000 }) } catch { /* reported below */ }
  return fs.existsSync(CHROMIUM) ? undefined : 'chromium is not installed and apt-get install -y chromium failed'
}
const missing = ensureChromium()
if (missing !== undefined) console.warn(`skipping the dashboard browser test: ${missing}`)

let r: ApiRing
let browser: Browser
let page: Page
const problems: string[] = []
const shots = tempRoot()

beforeAll(async () => {
  if (missing !== undefined) return
  r = await startApiRing(2, [])
  browser = await chromium.launch({ executablePath: CHROMIUM })
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`) })
  page.on('pageerror', (e) => { problems.push(`pageerror: ${e.message}`) })
  console.log(`dashboard screenshots: ${shots}`)
}, 120_000)
afterAll(async () => {
  await browser?.close()
  r?.stop()
})

const shot = async (name: string): Promise<void> => { await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true }) }
const stats = async (): Promise<InferenceStats> => await callAgent<InferenceStats>(r.devs[0].home, 'GET', '/v1/inference-stats')

describe.skipIf(missing !== undefined)('the dashboard in chromium', () => {
  it('loads with no console errors and shows the members and the ring', async () => {
    await page.goto(r.base + '/')
    await expect.poll(async () => await page.locator('#ring-info').getAttribute('data-members'), { timeout: 10_000 }).toBe('2')
    await expect.poll(async () => await page.locator('#members tr').count()).toBe(2)
    for (const d of r.devs) {
      const row = page.locator(`#members tr[data-node="${d.nodeId}"]`)
      await expect.poll(async () => await row.textContent()).toContain(d.name)
      expect(await row.getAttribute('data-status')).toBe('ONLINE')
      expect(await row.locator('td').nth(6).textContent()).toBe('yes')
    }
    expect(await page.locator('#ring-bar div').count()).toBe(2)
    // every member's resident memory, the other's from its heartbeats
    for (const d of r.devs) await expect.poll(async () => await page.locator(`#shares tr[data-node="${d.nodeId}"] td.memory`).textContent()).toMatch(/^\d+ MiB$/)
    expect(await page.locator('#ring-info').textContent()).toMatch(/epoch \d+ · 2 members · converged · 8192 columns/)
    expect(await page.locator('#counters').textContent()).toMatch(/beacons sent/)
    await shot('1-loaded')
    expect(problems).toEqual([])
  }, 60_000)

  it('the chat view streams a reply (several DOM updates before the end) with its tok/s, and stop cancels the job', async () => {
    await expect.poll(async () => await page.locator('#chat-model').textContent()).toMatch(/^stories260K/)
    // count the changes to the chat's text as they come (page code: the test's types know no DOM, and the page's policy allows no string eval)
    await page.evaluate(() => {
      const g = globalThis as unknown as { updates: number, MutationObserver: new (f: () => void) => { observe: (n: unknown, o: object) => void }, document: { getElementById: (id: string) => unknown } }
      g.updates = 0
      new g.MutationObserver(() => { g.updates++ }).observe(g.document.getElementById('chat-log'), { subtree: true, childList: true, characterData: true })
    })
    await page.fill('#chat-input', 'Once upon a time')
    await page.click('#chat-send')
    await page.waitForSelector('.reply[data-done="true"]', { timeout: 30_000 })
    const updates = await page.evaluate(() => (globalThis as unknown as { updates: number }).updates)
    expect(updates).toBeGreaterThan(5)
    expect(await page.locator('.reply .text').first().textContent()).not.toBe('')
    expect(await page.locator('.reply .meta').first().textContent()).toMatch(/^\d+\.\d tok\/s · first token \d+ ms · (length|stop)$/)
    await shot('2-chat')

    const before = (await stats()).totals.cancelled
    await page.fill('#chat-input', 'Once upon a time there was')
    await page.click('#chat-send')
    await expect.poll(async () => (await page.locator('.reply .text').nth(1).textContent())?.length ?? 0, { timeout: 10_000, interval: 20 }).toBeGreaterThan(10)
    await page.click('#chat-stop')
    await page.waitForSelector('.reply[data-stopped="true"]', { timeout: 5000 })
    await expect.poll(async () => (await stats()).totals.cancelled, { timeout: 2000, interval: 50 }).toBe(before + 1)
    expect((await stats()).active.leading).toEqual([])
    await shot('3-stopped')
    expect(problems).toEqual([])
  }, 60_000)

  it('a member killed with -9 leaves the page within the liveness bound', async () => {
    const gone = r.devs[1]
    process.kill(readPid(gone.home)!, 'SIGKILL')
    const t = performance.now()
    await expect.poll(async () => await page.locator('#ring-info').getAttribute('data-members'), { timeout: 15_000, interval: 100 }).toBe('1')
    // the ring drops it at OFFLINE (5 s of silence); the page polls once a second
    expect(performance.now() - t).toBeLessThan(8000)
    expect(await page.locator(`#members tr[data-node="${gone.nodeId}"] td`).nth(6).textContent()).toBe('no')
    await shot('4-member-gone')
    expect(problems).toEqual([])
  }, 60_000)

  it('with an API key set, the page asks for it and sends it as a header, never in the URL', async () => {
    const created = await mesh(r.devs[0].home, ['api-key', 'create', '--json'])
    const { key } = JSON.parse(created.stdout) as { key: string }
    const urls: string[] = []
    page.on('request', (req) => { urls.push(req.url()) })
    await page.reload()
    await page.locator('#key-form').waitFor({ state: 'visible', timeout: 10_000 })
    expect(await page.locator('#key-why').textContent()).toContain('needs a key')
    await page.fill('#key-input', key)
    await page.click('#key-form button')
    await expect.poll(async () => await page.locator('#conn').textContent(), { timeout: 10_000 }).toBe('live')
    expect(await page.locator('#key-form').isVisible()).toBe(false)
    expect(urls.some((u) => u.includes(key))).toBe(false)
    await shot('5-key')
    // the 401s before the key was given are the browser's own console lines, not the page's errors
    expect(problems.filter((p) => !p.includes('401'))).toEqual([])
  }, 60_000)
})

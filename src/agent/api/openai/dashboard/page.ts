/*
 * The dashboard: one self-contained page (styles and script inline), compiled into the agent, so
 * nothing is fetched from anywhere at run time and there is no build server. It polls
 * GET /api/dashboard once a second and chats through POST /v1/chat/completions (or
 * /v1/completions for a model without a chat template) like any client. Every string from the pool
 * (names, addresses, model ids) goes into the DOM as text, never as markup. With API keys set,
 * it asks for one and keeps it in sessionStorage, sent as a header, never in a URL.
 */

const STYLE = `
:root { --bg: #0f1216; --panel: #171b21; --line: #2a3039; --text: #dfe5ec; --dim: #8b95a1; --ok: #3fb950; --warn: #d29922; --bad: #f85149; --accent: #58a6ff; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; background: var(--bg); color: var(--text); }
header { display: flex; gap: 16px; align-items: baseline; padding: 12px 20px; border-bottom: 1px solid var(--line); }
header h1 { font-size: 18px; margin: 0; }
header .dim { color: var(--dim); }
main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(320px, 2fr); gap: 16px; padding: 16px 20px; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin-bottom: 16px; }
section h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .05em; color: var(--dim); margin: 0 0 8px; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--dim); font-weight: 500; }
code, .mono { font-family: ui-monospace, monospace; font-size: 12px; }
.ONLINE, .online { color: var(--ok); } .SUSPECT, .suspect { color: var(--warn); } .OFFLINE, .offline { color: var(--bad); }
#ring-bar { display: flex; height: 28px; border-radius: 4px; overflow: hidden; border: 1px solid var(--line); margin: 6px 0; }
#ring-bar div { display: flex; align-items: center; justify-content: center; font-size: 11px; color: #0b0d10; overflow: hidden; }
.bars div.bar { display: flex; height: 14px; margin: 2px 0 8px; background: var(--line); border-radius: 3px; overflow: hidden; }
.bars .compute { background: var(--accent); } .bars .network { background: var(--warn); }
.legend span { margin-right: 12px; color: var(--dim); } .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
#chat-log { height: 320px; overflow-y: auto; border: 1px solid var(--line); border-radius: 6px; padding: 8px; margin-bottom: 8px; }
.msg { margin: 0 0 10px; white-space: pre-wrap; } .msg.user { color: var(--accent); } .msg .meta { color: var(--dim); font-size: 12px; }
textarea { width: 100%; min-height: 60px; background: var(--bg); color: var(--text); border: 1px solid var(--line); border-radius: 6px; padding: 6px; font: inherit; }
button { background: var(--accent); color: #0b0d10; border: 0; border-radius: 6px; padding: 6px 14px; font-weight: 600; cursor: pointer; }
button:disabled { opacity: .4; cursor: default; } button.stop { background: var(--bad); }
#key-form { display: none; padding: 16px 20px; } #key-form input { width: 420px; padding: 6px; }
.error { color: var(--bad); } .counters td:first-child { color: var(--dim); } .counters td:last-child { white-space: normal; word-break: break-all; }
`

const SCRIPT = `
'use strict'
const $ = (id) => document.getElementById(id)
const COLORS = ['#58a6ff', '#3fb950', '#d29922', '#bc8cff', '#f778ba', '#39c5cf', '#ffa657', '#a5d6ff']
/** an element with text children only: nothing from the pool is ever parsed as markup */
function h (tag, attrs, ...kids) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs || {})) { if (k === 'style') e.style.cssText = v; else e.setAttribute(k, v) }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k === undefined || k === null ? '' : String(k)))
  return e
}
const short = (id) => id && id.length > 16 ? id.slice(0, 8) + '…' + id.slice(-4) : (id || '')
const fmt = (x, d = 1) => x === null || x === undefined ? '–' : Number(x).toFixed(d)

let key = sessionStorage.getItem('mesh-api-key') || ''
const authHeaders = () => key === '' ? {} : { authorization: 'Bearer ' + key }
let model = null

function askForKey (why) {
  $('key-form').style.display = 'block'
  $('key-why').textContent = why
}
$('key-form').addEventListener('submit', (ev) => {
  ev.preventDefault()
  key = $('key-input').value.trim()
  sessionStorage.setItem('mesh-api-key', key)
  $('key-form').style.display = 'none'
  poll()
})

async function poll () {
  let res
  try { res = await fetch('/api/dashboard', { headers: authHeaders(), cache: 'no-store' }) } catch { $('conn').textContent = 'agent unreachable'; return }
  if (res.status === 401) { askForKey(key === '' ? 'This agent\\'s API needs a key (mesh api-key create).' : 'That key was refused.'); return }
  if (!res.ok) { $('conn').textContent = 'dashboard: HTTP ' + res.status; return }
  $('conn').textContent = 'live'
  render(await res.json())
}

function render (d) {
  const s = d.status
  $('node').textContent = s.name + ' (' + short(s.nodeId) + ')'
  $('model').textContent = s.model ? 'model ' + (model ? model.id : short(s.model.id)) : 'fetching model…'
  $('api').textContent = 'API ' + d.gateway.address + (d.gateway.keys ? ' · keys on' : ' · no keys') + ' · queue ' + (d.gateway.queue.running ? 1 : 0) + '+' + d.gateway.queue.waiting
  const ring = d.ring[0]
  renderRing(ring)
  renderMembers(s, d.peers, ring)
  renderShares(ring, d.stats)
  $('memory').textContent = 'this agent: ' + d.memory.rss_mib + ' MiB resident; machine ' + d.memory.free_mib + ' of ' + d.memory.total_mib + ' MiB free'
  renderJobs(d.stats)
  renderCounters(s)
}

function renderRing (ring) {
  const bar = $('ring-bar')
  bar.replaceChildren()
  if (!ring) { $('ring-info').textContent = 'no ring yet (this agent holds no pool certificate)'; return }
  const t = ring.topology
  $('ring-info').textContent = 'pool ' + short(ring.poolId) + ' · epoch ' + t.epoch + ' · ' + t.members.length + ' members · ' + (ring.converged ? 'converged' : 'converging') + ' · ' + t.columns + ' columns'
  $('ring-info').dataset.epoch = String(t.epoch)
  $('ring-info').dataset.members = String(t.members.length)
  t.members.forEach((m, i) => {
    bar.append(h('div', { title: m.name + ' [' + m.start + ', ' + m.end + ')', style: 'width:' + (100 * (m.end - m.start) / t.columns) + '%;background:' + COLORS[i % COLORS.length] }, m.name + ' ' + (m.end - m.start)))
  })
}

function renderMembers (s, peers, ring) {
  const inRing = new Map((ring ? ring.topology.members : []).map((m) => [m.nodeId, m]))
  const models = ring && ring.models ? ring.models.members : {}
  const self = s.pools[0]
  const rows = [{ name: s.name, nodeId: s.nodeId, address: 'this agent', roles: [self ? self.role : ''], status: 'ONLINE' }]
  for (const p of peers) if (!rows.some((r) => r.nodeId === p.nodeId)) rows.push({ name: p.name, nodeId: p.nodeId, address: p.address, roles: p.roles, status: p.status })
  $('members').replaceChildren(...rows.map((r) => h('tr', { 'data-node': r.nodeId, 'data-status': r.status },
    h('td', {}, r.name), h('td', { class: 'mono', title: r.nodeId }, short(r.nodeId)), h('td', { class: 'mono' }, r.address), h('td', {}, r.roles.join(', ')),
    h('td', { class: r.status }, r.status), h('td', { class: 'mono' }, short(models[r.nodeId] || (r.nodeId === s.nodeId && s.model ? s.model.id : ''))),
    h('td', {}, inRing.has(r.nodeId) ? 'yes' : 'no'))))
}

function renderShares (ring, stats) {
  const units = ring && ring.units ? ring.units : {}
  const resident = ring && ring.residentMiB ? ring.residentMiB : {}
  const last = stats.jobs[stats.jobs.length - 1]
  const byNode = new Map(last ? last.members.map((m) => [m.node_id, m]) : [])
  const rows = (ring ? ring.topology.members : []).map((m) => {
    const u = units[m.nodeId] || {}
    const j = byNode.get(m.nodeId)
    const total = j ? Math.max(1, j.compute_ms + j.network_ms) : 1
    const chart = j ? h('div', { class: 'bar', title: 'compute ' + fmt(j.compute_ms, 0) + ' ms, network ' + fmt(j.network_ms, 0) + ' ms' },
      h('div', { class: 'compute', style: 'width:' + (100 * j.compute_ms / total) + '%' }), h('div', { class: 'network', style: 'width:' + (100 * j.network_ms / total) + '%' })) : h('div', { class: 'bar' })
    return h('tr', { 'data-node': m.nodeId }, h('td', {}, m.name), h('td', { class: 'mono' }, '[' + m.start + ', ' + m.end + ')'), h('td', {}, u.queryHeads !== undefined ? u.queryHeads + ' (' + u.kvHeads + ' kv)' : '–'),
      h('td', {}, u.hidden !== undefined ? u.hidden : '–'), h('td', { class: 'memory' }, resident[m.nodeId] != null ? Math.round(resident[m.nodeId]) + ' MiB' : '–'),
      h('td', { class: 'bars', style: 'width:40%' }, chart))
  })
  $('shares').replaceChildren(...rows)
}

/** every member's compute and network time in a job, one bar: how much of the job was waiting on the ring */
function timeBar (members) {
  const compute = members.reduce((a, m) => a + m.compute_ms, 0)
  const network = members.reduce((a, m) => a + m.network_ms, 0)
  const total = Math.max(1, compute + network)
  return h('div', { class: 'bar', title: 'compute ' + fmt(compute, 0) + ' ms, network ' + fmt(network, 0) + ' ms over ' + members.length + ' members' },
    h('div', { class: 'compute', style: 'width:' + (100 * compute / total) + '%' }), h('div', { class: 'network', style: 'width:' + (100 * network / total) + '%' }))
}

function renderJobs (stats) {
  const t = stats.totals
  $('job-totals').textContent = t.jobs + ' jobs · ' + t.generated_tokens + ' tokens · ' + t.failovers + ' failovers · ' + t.failed + ' failed · ' + t.cancelled + ' cancelled'
  const running = stats.active.leading.map((j) => h('tr', { class: 'running' }, h('td', {}, 'running'), h('td', { class: 'mono' }, j.job_id), h('td', {}, j.tokens), h('td', {}, '–'), h('td', {}, '–'), h('td', {}, '–'), h('td', {})))
  const recent = stats.jobs.slice().reverse().map((j) => h('tr', {}, h('td', {}, j.kind), h('td', { class: 'mono' }, j.job_id), h('td', {}, j.generated_tokens),
    h('td', {}, fmt(j.tokens_per_second)), h('td', {}, fmt(j.time_to_first_token_ms, 0)), h('td', {}, j.failovers), h('td', { class: 'bars', style: 'width:25%' }, timeBar(j.members))))
  $('jobs').replaceChildren(...running, ...recent)
}

function renderCounters (s) {
  const drops = (o) => Object.entries(o).filter(([, n]) => n > 0).map(([k, n]) => k + ' ' + n).join(', ') || 'none'
  const b = s.beacon
  const row = (k, v) => h('tr', {}, h('td', {}, k), h('td', { class: 'mono' }, v))
  $('counters').replaceChildren(
    row('beacons sent / received / accepted', b.sent + ' / ' + b.received + ' / ' + b.accepted),
    row('beacon drops', drops(b.drops)),
    row('peers refused', drops(s.net.drops)),
    row('tensor links', Object.entries(s.net.tensorLinks).map(([id, how]) => short(id) + ' ' + how).join(', ') || 'none'),
    row('listening', s.net.addresses.join(' ')))
}

// chat: streamed through the API like any client; the stop button aborts the request, which cancels the job
const history = []
let controller = null
async function loadModel () {
  const res = await fetch('/v1/models', { headers: authHeaders() })
  if (!res.ok) return
  const list = await res.json()
  model = list.data[0] || null
  $('chat-model').textContent = model ? model.id + (model.meta.format === 'llama2c' ? ' (no chat template: continues your text)' : '') : 'no model'
}

function addMessage (role, text) {
  const el = h('div', { class: 'msg ' + role }, h('span', { class: 'text' }, text), h('div', { class: 'meta' }))
  $('chat-log').append(el)
  $('chat-log').scrollTop = $('chat-log').scrollHeight
  return el
}

async function send () {
  const text = $('chat-input').value.trim()
  if (text === '' || controller !== null) return
  if (model === null) await loadModel()
  if (model === null) return
  $('chat-input').value = ''
  addMessage('user', text)
  const chat = model.meta.format !== 'llama2c'
  if (chat) history.push({ role: 'user', content: text })
  const reply = addMessage('assistant', '')
  reply.classList.add('reply')
  const out = reply.querySelector('.text')
  const meta = reply.querySelector('.meta')
  controller = new AbortController()
  $('chat-send').disabled = true
  $('chat-stop').disabled = false
  const t0 = performance.now()
  let first = 0; let tokens = 0; let finish = ''; let answer = ''; let timings = null
  try {
    const res = await fetch(chat ? '/v1/chat/completions' : '/v1/completions', {
      method: 'POST', signal: controller.signal, headers: { 'content-type': 'application/json', ...authHeaders() },
      body: JSON.stringify({ model: model.id, stream: true, max_tokens: 256, ...(chat ? { messages: history } : { prompt: text }) })
    })
    if (!res.ok) { const e = await res.json(); throw new Error(e.error ? e.error.message : 'HTTP ' + res.status) }
    const reader = res.body.getReader()
    const dec = new TextDecoder()
    let buf = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      buf += dec.decode(value, { stream: true })
      let at
      while ((at = buf.indexOf('\\n\\n')) >= 0) {
        const ev = buf.slice(0, at); buf = buf.slice(at + 2)
        if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue
        const data = JSON.parse(ev.slice(6))
        if (data.error) throw new Error(data.error.message)
        const c = data.choices[0]
        if (!c) continue
        const delta = chat ? c.delta.content : c.text
        if (delta) { if (first === 0) first = performance.now(); tokens++; answer += delta; out.textContent = answer; $('chat-log').scrollTop = $('chat-log').scrollHeight }
        if (c.finish_reason) { finish = c.finish_reason; timings = data.timings || null }
      }
    }
    const rate = timings ? timings.predicted_per_second : (tokens > 1 ? (tokens - 1) / ((performance.now() - first) / 1000) : 0)
    meta.textContent = fmt(rate) + ' tok/s · first token ' + fmt((first || performance.now()) - t0, 0) + ' ms · ' + finish
    if (chat) history.push({ role: 'assistant', content: answer })
  } catch (err) {
    if (err.name === 'AbortError') { meta.textContent = 'stopped after ' + tokens + ' chunks'; reply.dataset.stopped = 'true'; if (chat) history.push({ role: 'assistant', content: answer }) }
    else { meta.textContent = String(err.message || err); meta.classList.add('error') }
  } finally {
    controller = null
    reply.dataset.done = 'true'
    $('chat-send').disabled = false
    $('chat-stop').disabled = true
  }
}
$('chat-send').addEventListener('click', () => { void send() })
$('chat-stop').addEventListener('click', () => { if (controller) controller.abort() })
$('chat-input').addEventListener('keydown', (ev) => { if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); void send() } })

poll()
setInterval(poll, 1000)
void loadModel()
`

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mesh</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header><h1>mesh</h1><span id="node"></span><span id="model" class="dim"></span><span id="api" class="dim"></span><span id="conn" class="dim">connecting…</span></header>
<form id="key-form"><p id="key-why"></p><input id="key-input" type="password" placeholder="mesh-…" autocomplete="off"> <button type="submit">Use key</button></form>
<main>
<div>
<section><h2>Ring</h2><div id="ring-info"></div><div id="ring-bar"></div></section>
<section><h2>Members</h2><table><thead><tr><th>name</th><th>node</th><th>address</th><th>role</th><th>status</th><th>model</th><th>in ring</th></tr></thead><tbody id="members"></tbody></table></section>
<section><h2>Shares and the last job</h2><div id="memory" class="dim"></div><div class="legend"><span><i class="compute" style="background:var(--accent)"></i>compute</span><span><i style="background:var(--warn)"></i>network</span></div>
<table><thead><tr><th>member</th><th>columns</th><th>heads</th><th>FFN units</th><th>resident</th><th>compute / network</th></tr></thead><tbody id="shares"></tbody></table></section>
<section><h2>Jobs</h2><div id="job-totals" class="dim"></div><table><thead><tr><th>kind</th><th>job</th><th>tokens</th><th>tok/s</th><th>TTFT ms</th><th>failovers</th><th>compute / network</th></tr></thead><tbody id="jobs"></tbody></table></section>
<section><h2>Beacons and connections</h2><table class="counters"><tbody id="counters"></tbody></table></section>
</div>
<div>
<section><h2>Chat</h2><div id="chat-model" class="dim"></div><div id="chat-log"></div>
<textarea id="chat-input" placeholder="Say something (Enter sends)"></textarea>
<p><button id="chat-send" type="button">Send</button> <button id="chat-stop" class="stop" type="button" disabled>Stop</button></p></section>
</div>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`

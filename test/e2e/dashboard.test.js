'use strict'
// End to end: Debian's real Chromium, headless, driven by playwright-core (which uses the system
// browser and downloads none), opens express-background-task/dashboard on an app under web and
// background traffic. What a person would check: the figures change every second, background work
// stays out of the web panels, the figures shown are the server's aggregates and metrics()'s, the
// stream comes back after it is cut, the page works from the keyboard, fits 1280×800 and a phone,
// fetches nothing from elsewhere, and production answers 404 without authorize. Screenshots go to
// .tmp/dashboard-e2e/ (UPDATE_SCREENSHOT=1 also refreshes the README's docs/dashboard.png).
// Needs `apt-get install -y --no-install-recommends chromium`: under CI=true a missing browser fails
// the run; elsewhere the test is skipped with that message.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const http = require('node:http')
const { setTimeout: sleep } = require('node:timers/promises')
const express = require('express')
const { chromium } = require('playwright-core')
const { ebt, listen, request, delay, findExecutable } = require('../helpers')
const { dashboard } = require('express-background-task/dashboard')

const TIMEOUT_MS = 120_000
const INSTALL = 'apt-get install -y --no-install-recommends chromium'
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const OUT_DIR = path.join(__dirname, '..', '..', '.tmp', 'dashboard-e2e')
const README_IMAGE = path.join(__dirname, '..', '..', 'docs', 'dashboard.png')
const MOUNT = '/_background'
const APDEX_T = 0.1

const CHROMIUM = findExecutable('chromium', ['/usr/bin']) // Debian's, also where PATH lacks /usr/bin
const MISSING = CHROMIUM === undefined ? `no chromium on PATH: ${INSTALL}` : undefined
if (MISSING !== undefined && process.env.CI !== 'true') console.log(`# skipping the dashboard browser test: ${MISSING}`)

// The page's formatting, restated: what a figure must read for a value.
function ms(v) {
  if (v === null) return '–'
  if (v < 10) return v.toFixed(2) + ' ms'
  if (v < 100) return v.toFixed(1) + ' ms'
  if (v < 1000) return v.toFixed(0) + ' ms'
  if (v < 10000) return (v / 1000).toFixed(2) + ' s'
  return (v / 1000).toFixed(1) + ' s'
}
const apdex = (v) => (v === null ? '–' : v.toFixed(2))
const rpm = (v) => (v < 10 ? v.toFixed(1) : v.toFixed(0))
const percent = (v) => (v === null ? '–' : v === 0 ? '0%' : (v * 100 < 10 ? (v * 100).toFixed(1) : (v * 100).toFixed(0)) + '%')
const count = (v) => v.toLocaleString('en-US')

/** The app: a quick API and a tolerated search that stay web, a failing route, a stream and exports marked background. */
function createApp(agent, dash, streamSockets) {
  const app = express()
  app.use((req, res, next) => {
    if (req.url.startsWith(`${MOUNT}/events`)) streamSockets.add(req.socket)
    next()
  })
  app.use(agent.middleware())
  app.use(MOUNT, dash)
  app.get('/api/users/:id', async (req, res) => {
    await sleep(2 + (Number(req.params.id) % 7))
    res.json({ id: Number(req.params.id) })
  })
  app.get('/api/search', async (req, res) => {
    await sleep(150) // between T and 4T: tolerated
    res.json([])
  })
  app.get('/api/orders', (req, res) => res.status(503).json({ error: 'down' }))
  app.get('/events', (req, res) => {
    ebt.setBackgroundTask()
    res.writeHead(200, { 'Content-Type': 'text/event-stream' })
    res.write('data: hi\n\n')
    const timer = setInterval(() => res.write('data: tick\n\n'), 500)
    res.on('close', () => clearInterval(timer))
  })
  app.get('/exports/:report', async (req, res) => {
    req.newrelic.setBackgroundTask = true
    await sleep(700)
    res.type('text/csv').send('id\n1\n')
  })
  return app
}

/** Steady traffic until stopped: users every 100 ms, a search every 600 ms, a 503 every 1.5 s, an export every 900 ms. */
function startTraffic(base) {
  const client = new http.Agent({ keepAlive: true, maxSockets: 6 })
  const timers = []
  let i = 0
  const pending = new Set()
  const send = (p) => {
    const done = request(base + p, { agent: client }).catch(() => {})
    pending.add(done)
    done.finally(() => pending.delete(done))
  }
  timers.push(setInterval(() => send(`/api/users/${++i}`), 100))
  timers.push(setInterval(() => send('/api/search'), 600))
  timers.push(setInterval(() => send('/api/orders'), 1500))
  timers.push(setInterval(() => send(`/exports/${i % 2 ? 'orders' : 'invoices'}`), 900))
  return async function stop() {
    for (const timer of timers) clearInterval(timer)
    await Promise.all(pending)
    client.destroy()
  }
}

/** Everything the page shows, read in one go (one render cannot fall between two reads). */
function readPage(page) {
  return page.evaluate(() => {
    const figures = {}
    for (const node of document.querySelectorAll('[data-figure]')) figures[node.getAttribute('data-figure')] = node.textContent
    const table = (which) => [...document.querySelectorAll(`[data-table="${which}"] tbody tr[data-name]`)].map((tr) => ({
      name: tr.getAttribute('data-name'),
      cells: [...tr.children].map((td) => td.textContent)
    }))
    const main = document.getElementById('main')
    return {
      at: Number(main.getAttribute('data-at')),
      window: Number(main.getAttribute('data-window')),
      status: document.getElementById('status').getAttribute('data-state'),
      figures,
      web: table('web'),
      background: table('background'),
      open: table('open'),
      paths: document.querySelectorAll('svg path.line').length
    }
  })
}

async function waitUntil(check, what, timeoutMs = 15_000) {
  const started = Date.now()
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await delay(100)
  }
}

/** The figures shown must read as the server's view of the same second formats them. */
function assertShows(shown, view) {
  const f = shown.figures
  assert.equal(f['web-count'], count(view.web.count), 'web count')
  assert.equal(f['web-rpm'], rpm(view.web.rpm), 'web rpm')
  assert.equal(f['background-count'], count(view.background.count), 'background count')
  assert.equal(f['background-rpm'], rpm(view.background.rpm), 'background rpm')
  assert.equal(f['web-p50'], ms(view.web.p50Ms), 'web p50')
  assert.equal(f['web-p95'], ms(view.web.p95Ms), 'web p95')
  assert.equal(f['web-p99'], ms(view.web.p99Ms), 'web p99')
  assert.equal(f['web-apdex'], apdex(view.web.apdex), 'web Apdex')
  assert.equal(f['asweb-p95'], ms(view.asWeb.p95Ms), 'p95 had they stayed web')
  assert.equal(f['asweb-apdex'], apdex(view.asWeb.apdex), 'Apdex had they stayed web')
  assert.equal(f['asweb-mean'], ms(view.asWeb.meanMs), 'mean had they stayed web')
  assert.equal(f['web-error-rate'], percent(view.web.errorRate), 'web error rate')
  assert.equal(f['web-zones'], `${view.web.satisfying} satisfied · ${view.web.tolerating} tolerating · ${view.web.frustrating} frustrated`)
  assert.equal(f['apdex-t'], `${APDEX_T} s`)
  assert.deepEqual(shown.web.map((r) => [r.name, r.cells[1], r.cells[3], r.cells[5]]), view.names.web.map((r) => [r.name, count(r.count), ms(r.p95Ms), apdex(r.apdex)]))
  assert.deepEqual(shown.background.map((r) => [r.name, r.cells[1], r.cells[2]]), view.names.background.map((r) => [r.name, count(r.count), ms(r.meanMs)]))
}

describe('dashboard in a real headless Chromium', { timeout: TIMEOUT_MS, skip: process.env.CI === 'true' ? false : MISSING }, () => {
  let context
  let userDataDir
  let server
  let dash
  let agent
  let stopTraffic
  const records = []
  const streamSockets = new Set()

  before(async () => {
    assert.ok(CHROMIUM !== undefined, MISSING)
    fs.mkdirSync(OUT_DIR, { recursive: true })
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebt-chromium-'))
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1280, height: 800 },
      locale: 'en-GB',
      colorScheme: 'light'
    })
    agent = ebt.createAgent({ apdexT: APDEX_T })
    agent.onTransactionEnd((record) => records.push(record))
    dash = dashboard({ agent })
    server = await listen(createApp(agent, dash, streamSockets))
  })

  after(async () => {
    await stopTraffic?.()
    await context?.close()
    dash?.close()
    await server?.close()
    if (userDataDir !== undefined) fs.rmSync(userDataDir, { recursive: true, force: true })
  })

  it('shows live figures that are the server aggregates, keeps background out of the web panels, reconnects, and works from the keyboard', async () => {
    const page = await context.newPage()
    const requested = []
    const problems = []
    page.on('request', (req) => requested.push(req.url()))
    page.on('console', (message) => {
      if (message.type() === 'error' && !/ERR_EMPTY_RESPONSE|ERR_CONNECTION|net::/.test(message.text())) problems.push(message.text())
    })
    page.on('pageerror', (err) => problems.push(err.message))

    // an app's stream held open the whole time: it must show as in flight, background
    const appStream = await new Promise((resolve, reject) => {
      http.get(server.url('/events'), { agent: false }, (res) => res.once('data', () => resolve(res))).on('error', reject)
    })
    stopTraffic = startTraffic(server.url(''))
    const response = await page.goto(server.url(MOUNT))
    assert.equal(response.status(), 200)
    await waitUntil(async () => (await readPage(page)).status === 'live', 'the stream to go live')

    // live: a view a second, with more traffic each time
    const first = await waitUntil(async () => {
      const shown = await readPage(page)
      return shown.at > 0 && Number(shown.figures['web-count'].replace(/,/g, '')) > 0 && shown
    }, 'the first web transactions')
    const later = await waitUntil(async () => {
      const shown = await readPage(page)
      return shown.at >= first.at + 3000 && shown
    }, 'three more updates')
    assert.ok(Number(later.figures['web-count'].replace(/,/g, '')) > Number(first.figures['web-count'].replace(/,/g, '')), 'the web count grows')
    assert.ok(later.paths >= 4, `lines drawn: ${later.paths}`)

    // the figures are the server's for the same second
    assertShows(later, dash.view(5, later.at))
    // background stays out of the web panels; it is in its own, and open streams are in flight
    assert.ok(later.web.every((r) => r.name.startsWith('WebTransaction/')), 'web table: web names only')
    assert.ok(!later.web.some((r) => /exports|events/.test(r.name)))
    assert.ok(later.background.some((r) => r.name === 'OtherTransaction/Expressjs/GET//exports/:report'))
    assert.ok(later.open.some((r) => r.name === 'OtherTransaction/Expressjs/GET//events' && r.cells[1] === 'background'), 'the app stream is in flight')
    assert.ok(later.open.some((r) => r.name === `OtherTransaction/Expressjs/GET/${MOUNT}`), 'and so is the page own stream, background')
    assert.ok(Number(later.figures['inflight-background']) >= 2)

    // cut the stream: the page says so, comes back by itself, and goes on updating
    const before = (await readPage(page)).at
    for (const socket of streamSockets) socket.destroy()
    streamSockets.clear()
    await waitUntil(async () => (await readPage(page)).status === 'reconnecting', 'the page to notice the cut')
    const back = await waitUntil(async () => {
      const shown = await readPage(page)
      return shown.status === 'live' && shown.at > before + 1000 && shown
    }, 'the page to reconnect')
    assert.equal(streamSockets.size, 1, 'a new stream')
    assertShows(back, dash.view(5, back.at))

    // keyboard: Tab to the window buttons, Enter on "1 min"
    await page.keyboard.press('Tab') // the skip link
    let focused = ''
    for (let tabs = 0; tabs < 6 && focused !== '1'; tabs += 1) {
      await page.keyboard.press('Tab')
      focused = await page.evaluate(() => document.activeElement?.getAttribute('data-window') ?? '')
    }
    assert.equal(focused, '1', 'the window buttons are reachable with Tab')
    await page.keyboard.press('Enter')
    const oneMinute = await waitUntil(async () => {
      const shown = await readPage(page)
      return shown.window === 1 && shown.status === 'live' && shown
    }, 'the 1-minute window')
    assert.equal(await page.getAttribute('[data-window="1"]', 'aria-pressed'), 'true')
    assertShows(oneMinute, dash.view(1, oneMinute.at))
    // the picture of a page under traffic, at 1280×800 and whole (without the keyboard focus ring)
    await page.evaluate(() => document.activeElement?.blur())
    await page.screenshot({ path: path.join(OUT_DIR, 'dashboard-1280.png') })
    await page.screenshot({ path: path.join(OUT_DIR, 'dashboard-1280-full.png'), fullPage: true })
    if (process.env.UPDATE_SCREENSHOT === '1') {
      fs.mkdirSync(path.dirname(README_IMAGE), { recursive: true })
      await page.screenshot({ path: README_IMAGE, fullPage: true })
    }

    // the payoff, once the traffic stops: web figures are metrics()'s, "had they stayed web" the records'
    await page.click('[data-window="5"]')
    appStream.destroy()
    await stopTraffic()
    stopTraffic = undefined
    await delay(100)
    const lastEnd = Math.max(...records.map((r) => r.startTime + r.duration))
    const settled = await waitUntil(async () => {
      const shown = await readPage(page)
      return shown.window === 5 && shown.at >= Math.floor(lastEnd / 1000) * 1000 + 1000 && shown
    }, 'a view past the last transaction')
    const snapshot = agent.metrics()
    const ended = records.filter((r) => !r.name.endsWith(MOUNT))
    const web = ended.filter((r) => r.type === 'web')
    assert.equal(settled.figures['web-count'], count(snapshot.timeslices.WebTransaction.callCount))
    assert.equal(settled.figures['web-apdex'], apdex(snapshot.apdex.Apdex.score))
    // background: the app's, and the page's own streams that ended (the cut one, the window changes)
    assert.equal(settled.figures['background-count'], count(records.filter((r) => r.type === 'background').length))
    const asWeb = ended.filter((r) => r.method !== undefined)
    const zones = { s: 0, t: 0, f: 0 }
    for (const r of asWeb) {
      const failed = r.statusCode === undefined ? r.aborted === true : r.statusCode >= 500
      const seconds = r.duration / 1000
      zones[failed ? 'f' : seconds <= APDEX_T ? 's' : seconds <= 4 * APDEX_T ? 't' : 'f'] += 1
    }
    assert.equal(settled.figures['asweb-apdex'], apdex((zones.s + zones.t / 2) / asWeb.length), 'Apdex had they stayed web')
    assert.ok(asWeb.length > web.length)
    assert.match(settled.figures['payoff-lead'], new RegExp(`^${asWeb.length - web.length} requests marked background in the last 5 minutes`))
    assertShows(settled, dash.view(5, settled.at))

    await page.screenshot({ path: path.join(OUT_DIR, 'dashboard-settled.png'), fullPage: true })
    // fits 1280 wide; nothing fetched from elsewhere; no script error or CSP violation
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true)
    const origin = server.url('')
    assert.deepEqual(requested.filter((url) => !url.startsWith(origin)), [])
    assert.deepEqual(problems, [])
    await page.close()
  })

  it('reads on a phone-width screen', async () => {
    const page = await context.newPage()
    await page.setViewportSize({ width: 390, height: 844 })
    await page.goto(server.url(`${MOUNT}#window=15`))
    await waitUntil(async () => {
      const shown = await readPage(page)
      return shown.status === 'live' && shown.window === 15
    }, 'the page on a phone')
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'no sideways scrolling')
    await page.screenshot({ path: path.join(OUT_DIR, 'dashboard-phone.png'), fullPage: true })
    await page.close()
  })

  it('answers 404 under NODE_ENV=production without authorize, and serves whom authorize lets in', async () => {
    const saved = process.env.NODE_ENV
    process.env.NODE_ENV = 'production'
    const hidden = dashboard({ agent })
    const guarded = dashboard({ agent, authorize: (req) => req.headers['x-team'] === 'ops' })
    const app = express()
    app.use('/hidden', hidden)
    app.use('/guarded', guarded)
    const other = await listen(app)
    const page = await context.newPage()
    try {
      const refused = await page.goto(other.url('/hidden'))
      assert.equal(refused.status(), 404)
      assert.equal((await page.textContent('body')).trim(), 'Not Found')
      assert.equal((await page.goto(other.url('/guarded'))).status(), 404)
      await page.setExtraHTTPHeaders({ 'X-Team': 'ops' })
      assert.equal((await page.goto(other.url('/guarded'))).status(), 200)
      await waitUntil(async () => (await readPage(page)).status === 'live', 'the authorized page to go live')
    } finally {
      if (saved === undefined) delete process.env.NODE_ENV
      else process.env.NODE_ENV = saved
      await page.close()
      hidden.close()
      guarded.close()
      await other.close()
    }
  })
})

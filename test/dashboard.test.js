'use strict'
// express-background-task/dashboard on real Express 5, Express 4 and Connect apps on 127.0.0.1, read
// over a real server-sent events connection: its figures against a model of the records, its own
// stream background and its files ignored, production 404 and authorize, names and aggregates only,
// no subscriber left after close(), and a real cluster (examples/cluster-dashboard.js).
const { describe, it, after } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { channel } = require('node:diagnostics_channel')
const { setTimeout: sleep } = require('node:timers/promises')
const { ebt, FRAMEWORKS, recordingAgent, listen, request, delay } = require('./helpers')
const { dashboard, reportToPrimary, DASHBOARD_WINDOWS, DASHBOARD_POINTS } = require('express-background-task/dashboard')

const { ChannelName, ErrorCode } = ebt
const MOUNT = '/_background'

/** A real SSE client over node:http: `next()` resolves the next view event, `close()` hangs up. */
function openEvents(url) {
  return new Promise((resolve, reject) => {
    const views = []
    const waiters = []
    let buffer = ''
    let raw = ''
    const req = http.get(url, { agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume()
        return reject(new Error(`events answered ${res.statusCode}`))
      }
      res.setEncoding('utf8')
      res.on('data', (chunk) => {
        raw += chunk
        buffer += chunk
        let end
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const event = /^event: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (event !== 'view' || data === undefined) continue
          const view = JSON.parse(data)
          views.push(view)
          for (const waiter of waiters.splice(0)) waiter(view)
        }
      })
      res.on('error', () => {})
      resolve({
        res,
        views,
        raw: () => raw,
        next: (timeoutMs = 3000) =>
          new Promise((resolveView, rejectView) => {
            const timer = setTimeout(() => rejectView(new Error('no view within ' + timeoutMs + ' ms')), timeoutMs)
            waiters.push((view) => {
              clearTimeout(timer)
              resolveView(view)
            })
          }),
        close: () => req.destroy()
      })
    })
    req.on('error', reject)
  })
}

/** Nearest-rank quantile of durations (ms). */
function quantile(values, p) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(1, Math.ceil(p * sorted.length)) - 1]
}

/** The dashboard's percentile is the upper edge of a 5% bucket, kept within min and max. */
function assertPercentile(actual, values, p, label) {
  const expected = quantile(values, p)
  assert.ok(actual >= expected - 0.001 && actual <= expected * 1.05 + 0.001, `${label}: ${actual} for ${expected}`)
}

function zoneOf(record, apdexT) {
  const failed = record.error !== undefined || (record.statusCode === undefined ? record.aborted === true : record.statusCode >= 500)
  if (failed) return 'frustrating'
  const seconds = record.duration / 1000
  return seconds <= apdexT ? 'satisfying' : seconds <= 4 * apdexT ? 'tolerating' : 'frustrating'
}

/** The figures a set of records must give, computed here from the records alone. */
function model(records, apdexT) {
  const durations = records.map((r) => r.duration)
  const zones = { satisfying: 0, tolerating: 0, frustrating: 0 }
  for (const r of records) if (!r.suppressApdexMetric) zones[zoneOf(r, apdexT)] += 1
  const inApdex = zones.satisfying + zones.tolerating + zones.frustrating
  return {
    count: records.length,
    durations,
    mean: durations.reduce((s, d) => s + d, 0) / records.length,
    max: Math.max(...durations),
    errors: records.filter((r) => r.error !== undefined || r.statusCode >= 500).length,
    zones,
    apdex: inApdex === 0 ? null : (zones.satisfying + zones.tolerating / 2) / inApdex
  }
}

function assertFigures(figures, expected, label, { apdex = true } = {}) {
  assert.equal(figures.count, expected.count, `${label} count`)
  assert.equal(figures.rpm, expected.count, `${label} rpm over 1 minute`)
  // unrounded: the page rounds once, to what it shows (0.8049 rounded to 0.805 first would read 0.81)
  assert.ok(Math.abs(figures.meanMs - expected.mean) < 1e-9, `${label} mean ${figures.meanMs} for ${expected.mean}`)
  assert.equal(figures.maxMs, expected.max, `${label} max`)
  assertPercentile(figures.p50Ms, expected.durations, 0.5, `${label} p50`)
  assertPercentile(figures.p95Ms, expected.durations, 0.95, `${label} p95`)
  assertPercentile(figures.p99Ms, expected.durations, 0.99, `${label} p99`)
  assert.equal(figures.errorRate, expected.errors / expected.count, `${label} error rate`)
  if (!apdex) return
  assert.deepEqual([figures.satisfying, figures.tolerating, figures.frustrating], [expected.zones.satisfying, expected.zones.tolerating, expected.zones.frustrating], `${label} zones`)
  assert.equal(figures.apdex, expected.apdex, `${label} Apdex`)
}

/** An app of `framework` with the agent's middleware, the dashboard under MOUNT, and routes of known speed. */
function createApp(framework, agent, dash) {
  const app = FRAMEWORKS[framework]()()
  app.use(agent.middleware())
  app.use(MOUNT, dash)
  const routes = {
    '/fast': (req, res) => res.end('ok'),
    '/tolerating': (req, res) => setTimeout(() => res.end('ok'), 90), // T = 0.05 s: between T and 4T
    '/slow': (req, res) => setTimeout(() => res.end('ok'), 260), // above 4T
    '/broken': (req, res) => {
      res.statusCode = 500
      res.end('no')
    },
    '/export': (req, res) => {
      req.newrelic.setBackgroundTask = true // a request marked background: would have been web
      setTimeout(() => res.end('csv'), 300)
    },
    '/stream': (req, res) => {
      ebt.setBackgroundTask()
      res.writeHead(200, { 'Content-Type': 'text/event-stream' })
      res.write('data: hi\n\n')
    },
    '/job': (req, res) => {
      // a background task started in code was never web: it stays out of "had they stayed web"
      agent.backgroundTask('rebuild-index', () => sleep(20)).then(() => res.end('done'))
    },
    '/health': (req, res) => {
      req.newrelic.ignoreTransaction = true
      res.end('ok')
    }
  }
  for (const [route, handle] of Object.entries(routes)) {
    if (framework === 'connect') app.use(route, handle)
    else app.get(route, handle)
  }
  return app
}

const TRAFFIC = [
  ...Array.from({ length: 24 }, () => '/fast'),
  '/tolerating', '/tolerating', '/tolerating',
  '/slow', '/slow',
  '/broken', '/broken',
  '/export', '/export',
  '/job',
  '/health', '/health'
]

describe('dashboard() options', () => {
  it('rejects bad options at construction with coded TypeErrors', () => {
    assert.throws(() => dashboard({ authorise: () => true }), { name: 'TypeError', code: ErrorCode.UNKNOWN_OPTION, message: /authorise.*allowed: authorize, agent, cluster/ })
    assert.throws(() => dashboard({ authorize: true }), { name: 'TypeError', code: ErrorCode.OPTIONS_TYPE, message: /authorize must be a function/ })
    assert.throws(() => dashboard({ agent: {} }), { code: ErrorCode.OPTIONS_TYPE, message: /agent must be an agent from createAgent/ })
    // the agent check every integration shares: a hostile object gets the coded error, not its own throw
    const revoked = Proxy.revocable({}, {})
    revoked.revoke()
    assert.throws(() => dashboard({ agent: revoked.proxy }), { code: ErrorCode.OPTIONS_TYPE, message: /agent must be an agent from createAgent/ })
    const throwing = new Proxy({}, { get() { throw new Error('boom') } })
    assert.throws(() => dashboard({ agent: throwing }), { code: ErrorCode.OPTIONS_TYPE, message: /agent must be an agent from createAgent/ })
    assert.throws(() => dashboard({ cluster: 'yes' }), { code: ErrorCode.OPTIONS_TYPE })
    assert.throws(() => dashboard('/_background'), { code: ErrorCode.OPTIONS_TYPE, message: /options must be an object/ })
    assert.throws(() => reportToPrimary({ agnet: ebt.createAgent() }), { code: ErrorCode.UNKNOWN_OPTION })
    const dash = dashboard({ authorize: undefined, agent: undefined })
    assert.throws(() => dash.view(10), { code: ErrorCode.OPTIONS_TYPE, message: /1, 5, 15/ })
    dash.close()
    assert.deepEqual(DASHBOARD_WINDOWS, [1, 5, 15])
  })

  it('catches app.use(dashboard) written without calling it: ERR_EBT_MIDDLEWARE_NOT_CALLED', async () => {
    const app = FRAMEWORKS['express 5']()()
    let caught
    app.use(MOUNT, dashboard)
    app.use((err, req, res, next) => {
      caught = err
      res.status(500).end()
    })
    const server = await listen(app)
    try {
      assert.equal((await request(server.url(MOUNT))).status, 500)
      assert.equal(caught?.code, ErrorCode.MIDDLEWARE_NOT_CALLED)
      assert.match(caught.message, /app\.use\(dashboard\(\)\)/)
    } finally {
      await server.close()
    }
  })

  it('reportToPrimary() outside a cluster worker reports nothing and says so', () => {
    const report = reportToPrimary()
    assert.equal(report.active, false)
    report.close()
  })
})

for (const framework of Object.keys(FRAMEWORKS)) {
  describe(`dashboard on ${framework}`, () => {
    it('shows web and background figures, percentiles, Apdex and the payoff as the records give them, and as metrics() counts', async () => {
      const apdexT = 0.05
      const { agent, records, waitFor } = recordingAgent({ apdexT })
      const dash = dashboard({ agent })
      const server = await listen(createApp(framework, agent, dash))
      const events = await openEvents(server.url(`${MOUNT}/events?window=1`))
      try {
        const first = await events.next()
        assert.equal(first.windowMinutes, 1)
        assert.equal(first.series.webRpm.length, DASHBOARD_POINTS)
        // an open stream of the app (not the dashboard's): in flight, background
        const stream = await new Promise((resolve, reject) => {
          http.get(server.url('/stream'), { agent: false }, (res) => res.once('data', () => resolve(res))).on('error', reject)
        })
        const inFlight = dash.view(1).inFlight
        assert.equal(inFlight.background, 2, 'the app stream and the dashboard stream')
        assert.deepEqual(inFlight.open.map((g) => [g.type, g.name]).sort(), [
          ['background', `OtherTransaction/${framework === 'connect' ? 'Connect' : 'Expressjs'}/GET/${MOUNT}`],
          ['background', `OtherTransaction/${framework === 'connect' ? 'Connect' : 'Expressjs'}/GET//stream`]
        ])
        stream.destroy()

        // four at a time, each on a new connection
        const queue = [...TRAFFIC]
        await Promise.all(Array.from({ length: 4 }, async () => {
          while (queue.length > 0) await request(server.url(queue.shift()), { agent: false })
        }))
        // 1 stream + every request but the 2 ignored, + the task inside /job
        await waitFor(1 + TRAFFIC.length - 2 + 1)
        const ended = records.filter((r) => !r.name.endsWith(MOUNT))
        const view = dash.view(1, Date.now() + 1000) // up to and with the current second
        const web = ended.filter((r) => r.type === 'web')
        const background = ended.filter((r) => r.type === 'background')
        const asWeb = ended.filter((r) => r.type === 'web' || r.method !== undefined)
        assert.equal(web.length, 24 + 3 + 2 + 2 + 1, 'the /job request itself is web')
        assert.equal(asWeb.length, web.length + 2 + 1, 'the exports and the stream were requests; the task was not')
        assertFigures(view.web, model(web, apdexT), 'web')
        assertFigures(view.background, model(background, apdexT), 'background', { apdex: false })
        assert.equal(view.background.apdex, null)
        assertFigures(view.asWeb, model(asWeb, apdexT), 'as web')
        assert.ok(view.asWeb.p99Ms > view.web.p99Ms && view.asWeb.apdex < view.web.apdex, 'the payoff shows')
        assert.deepEqual(view.apdexT, [apdexT])

        // the web figures are metrics()'s
        const snapshot = agent.metrics()
        assert.equal(view.web.count, snapshot.timeslices.WebTransaction.callCount)
        assert.equal(view.background.count, snapshot.timeslices['OtherTransaction/all'].callCount - 0)
        const { satisfying, tolerating, frustrating } = snapshot.apdex.Apdex
        assert.deepEqual([view.web.satisfying, view.web.tolerating, view.web.frustrating], [satisfying, tolerating, frustrating])
        assert.ok(Math.abs(view.web.apdex - snapshot.apdex.Apdex.score) < 0.001)

        // the names, each against its records
        for (const row of [...view.names.web, ...view.names.background]) {
          const mine = ended.filter((r) => r.name === row.name)
          const expected = model(mine, apdexT)
          assert.equal(row.count, expected.count, row.name)
          assert.ok(Math.abs(row.meanMs - expected.mean) < 1e-9, row.name)
          assert.equal(row.maxMs, expected.max, row.name)
          assertPercentile(row.p95Ms, expected.durations, 0.95, row.name)
          if (row.name.startsWith('WebTransaction/')) assert.equal(row.apdex, expected.apdex, row.name)
          else assert.equal(row.apdex, null)
        }
        assert.equal(view.names.web.length, 5)
        assert.deepEqual(view.names.background.map((r) => r.name).sort(), [
          ...new Set(background.map((r) => r.name))
        ].sort())
        // sorted by total time: the slow route first
        assert.match(view.names.web[0].name, /\/slow$/)

        // series: every transaction in exactly one point, per minute
        const sum = (values) => values.reduce((s, v) => s + (v ?? 0), 0)
        assert.equal(sum(view.series.webRpm), web.length * 60)
        assert.equal(sum(view.series.backgroundRpm), background.length * 60)
        assert.equal(view.series.stepSeconds, 1)

        // the live stream sends a view a second, each a second on
        const a = await events.next()
        const b = await events.next()
        assert.equal(b.at - a.at, 1000)
      } finally {
        events.close()
        dash.close()
        await server.close()
      }
    })

    it("keeps its own page and files out of the figures, and records its stream as one background transaction", async () => {
      const { agent, records, waitFor } = recordingAgent()
      const dash = dashboard({ agent })
      const server = await listen(createApp(framework, agent, dash))
      try {
        const page = await request(server.url(MOUNT))
        assert.equal(page.status, 200)
        assert.match(page.headers['content-type'], /^text\/html/)
        assert.match(page.headers['content-security-policy'], /default-src 'none'/)
        assert.match(page.body, new RegExp(`<script src="${MOUNT}/dashboard.js" defer></script>`))
        assert.match(page.body, new RegExp(`<link rel="stylesheet" href="${MOUNT}/dashboard.css">`))
        assert.doesNotMatch(page.body, /https?:\/\//, 'nothing fetched from elsewhere')
        assert.equal((await request(server.url(`${MOUNT}/`))).status, 200)
        const script = await request(server.url(`${MOUNT}/dashboard.js`))
        assert.equal(script.status, 200)
        assert.match(script.headers['content-type'], /^text\/javascript/)
        assert.match(script.body, /new EventSource\(/)
        assert.equal((await request(server.url(`${MOUNT}/dashboard.js`), { headers: { 'If-None-Match': script.headers.etag } })).status, 304)
        const style = await request(server.url(`${MOUNT}/dashboard.css`))
        assert.match(style.headers['content-type'], /^text\/css/)
        assert.equal((await request(server.url(`${MOUNT}/dashboard.css`), { method: 'POST' })).status, 405)
        // a path under the mount that is not the dashboard's goes on to the app
        assert.equal((await request(server.url(`${MOUNT}/nope`))).status, 404)

        const events = await openEvents(server.url(`${MOUNT}/events`))
        const view = await events.next()
        assert.equal(view.windowMinutes, 5, 'the default window')
        // only /_background/nope, which the app answered: the page and its files are no transactions
        assert.equal(view.web.count, 1)
        assert.equal(view.names.web.length, 1)
        assert.equal(view.inFlight.web, 0)
        assert.equal(view.inFlight.background, 1, 'the open stream is, and it is background')
        events.close()
        await waitFor(2)
        await delay(50)
        const group = framework === 'connect' ? 'Connect' : 'Expressjs'
        assert.deepEqual(records.map((r) => [r.type, r.name]), [
          ['web', `WebTransaction/${group}/GET/(not found)`], // /_background/nope, answered by the app
          ['background', `OtherTransaction/${group}/GET/${MOUNT}`]
        ])
        assert.equal(records[1].aborted, true)
      } finally {
        dash.close()
        await server.close()
      }
    })
  })
}

describe('dashboard under NODE_ENV=production', () => {
  const saved = process.env.NODE_ENV
  after(() => {
    if (saved === undefined) delete process.env.NODE_ENV
    else process.env.NODE_ENV = saved
  })

  async function statuses(dash, headers = {}) {
    const server = await listen(createApp('express 5', ebt.createAgent(), dash))
    try {
      const out = {}
      for (const p of ['', '/', '/dashboard.js', '/dashboard.css', '/events']) out[p || '(mount)'] = (await request(server.url(MOUNT + p), { headers })).status
      out.POST = (await request(server.url(MOUNT), { method: 'POST', headers })).status
      return out
    } finally {
      dash.close()
      await server.close()
    }
  }

  it('answers 404 to everything without authorize, and serves only when authorize(req) returns true (evaluated per request)', async () => {
    process.env.NODE_ENV = 'production'
    const hidden = { '(mount)': 404, '/': 404, '/dashboard.js': 404, '/dashboard.css': 404, '/events': 404, POST: 404 }
    assert.deepEqual(await statuses(dashboard()), hidden)
    const seen = []
    const byHeader = dashboard({
      authorize(req) {
        seen.push(req.url)
        return req.headers['x-admin'] === 'yes'
      }
    })
    const server = await listen(createApp('express 5', ebt.createAgent(), byHeader))
    try {
      assert.equal((await request(server.url(MOUNT))).status, 404)
      assert.equal((await request(server.url(MOUNT), { headers: { 'X-Admin': 'yes' } })).status, 200)
      assert.equal((await request(server.url(MOUNT), { headers: { 'X-Admin': 'no' } })).status, 404)
      assert.equal((await request(server.url(`${MOUNT}/dashboard.js`), { headers: { 'X-Admin': 'yes' } })).status, 200)
      assert.equal(seen.length, 4, 'asked for every request')
    } finally {
      byHeader.close()
      await server.close()
    }
    assert.deepEqual(await statuses(dashboard({ authorize: () => 1 })), hidden, 'only true authorizes')
    assert.deepEqual(await statuses(dashboard({ authorize: () => { throw new Error('session store down') } })), hidden)
    assert.deepEqual(await statuses(dashboard({ authorize: () => Promise.reject(new Error('down')) })), hidden)
    const open = { '(mount)': 200, '/': 200, '/dashboard.js': 200, '/dashboard.css': 200, '/events': 200, POST: 405 }
    // /events is read with a plain request: it stays open, so HEAD-like checks go through a stream below
    const asyncYes = dashboard({ authorize: async () => true })
    const server2 = await listen(createApp('express 5', ebt.createAgent(), asyncYes))
    try {
      const events = await openEvents(server2.url(`${MOUNT}/events?window=15`))
      assert.equal((await events.next()).windowMinutes, 15)
      events.close()
      for (const p of ['', '/dashboard.js']) assert.equal((await request(server2.url(MOUNT + p))).status, open[p || '(mount)'])
      assert.equal((await request(server2.url(MOUNT), { method: 'DELETE' })).status, 405, 'no write endpoints')
    } finally {
      asyncYes.close()
      await server2.close()
    }
  })

  it('is open outside production without authorize', async () => {
    process.env.NODE_ENV = 'development'
    const dash = dashboard()
    const server = await listen(createApp('express 4', ebt.createAgent(), dash))
    try {
      assert.equal((await request(server.url(MOUNT))).status, 200)
    } finally {
      dash.close()
      await server.close()
    }
  })
})

describe('what the dashboard sends', () => {
  it('holds names and aggregates only: no raw URL values, no query strings, no headers', async () => {
    const { agent, waitFor } = recordingAgent()
    const dash = dashboard({ agent })
    const app = FRAMEWORKS['express 5']()()
    app.use(agent.middleware())
    app.use(MOUNT, dash)
    app.get('/users/:id', (req, res) => res.json({ id: req.params.id }))
    const server = await listen(app)
    const events = await openEvents(server.url(`${MOUNT}/events?window=1`))
    try {
      const secrets = ['8675309', 'hunter2-token', 'bob@example.org', 'x-very-secret-header-value', '4242']
      await request(server.url('/users/8675309?token=hunter2-token&email=bob@example.org'), { headers: { 'X-Secret': 'x-very-secret-header-value', Cookie: 'sid=4242' } })
      await request(server.url('/no/such/page/4242?token=hunter2-token'))
      await waitFor(2)
      await events.next(2500)
      await events.next(2500)
      const texts = [events.raw(), JSON.stringify(dash.view(1, Date.now() + 1000)), JSON.stringify(dash.view(15, Date.now() + 1000))]
      for (const text of texts) for (const secret of secrets) assert.ok(!text.includes(secret), `${secret} leaked`)
      // every string in a view is a transaction name or a type
      const strings = []
      JSON.stringify(dash.view(1, Date.now() + 1000), (key, value) => {
        if (typeof value === 'string') strings.push(value)
        return value
      })
      for (const s of strings) assert.match(s, /^((Web|Other)Transaction\/[^?#\s]+( \S+)?|web|background)$/)
      assert.ok(strings.includes('WebTransaction/Expressjs/GET//users/:id'))
      assert.ok(strings.includes('WebTransaction/Expressjs/GET/(not found)'))
    } finally {
      events.close()
      dash.close()
      await server.close()
    }
  })

  it('caps the names it holds as metrics() does, folding the rest into the overflow names', async () => {
    const agent = ebt.createAgent()
    const dash = dashboard({ agent })
    try {
      for (let i = 0; i < ebt.MAX_TRANSACTION_NAMES; i += 1) agent.backgroundTask(`job-${i}`, () => undefined)
      // the names past the cap take 2 ms each, so their overflow name leads the table by total time
      for (let i = 0; i < 50; i += 1) agent.backgroundTask(`late-job-${i}`, () => { for (const until = performance.now() + 2; performance.now() < until;); })
      const view = dash.view(1, Date.now() + 1000)
      assert.equal(view.background.count, ebt.MAX_TRANSACTION_NAMES + 50, 'rollups stay exact')
      const named = view.names.background
      assert.equal(named.length, 10)
      assert.equal(named[0].name, ebt.OVERFLOW_NAME.background)
      assert.equal(named[0].count, 50)
    } finally {
      dash.close()
    }
  })

  it('leaves no subscriber on the channels once every dashboard is closed', () => {
    assert.equal(channel(ChannelName.START).hasSubscribers, false)
    assert.equal(channel(ChannelName.END).hasSubscribers, false)
    const dash = dashboard()
    assert.equal(channel(ChannelName.END).hasSubscribers, true)
    dash.close()
    dash.close()
    assert.equal(channel(ChannelName.END).hasSubscribers, false)
  })

  it('ends its open streams on close(), and answers 404 afterwards', async () => {
    const dash = dashboard()
    const server = await listen((req, res) => dash(req, res))
    try {
      const events = await openEvents(server.url('/events'))
      await events.next()
      const ended = new Promise((resolve) => events.res.on('end', resolve))
      dash.close()
      await ended
      assert.equal((await request(server.url('/'))).status, 404)
      assert.equal((await request(server.url('/elsewhere'))).status, 404, 'served alone, it answers what is not its own')
    } finally {
      await server.close()
    }
  })
})

describe('examples/cluster-dashboard.js: a primary and 2 workers, one page', { timeout: 60_000 }, () => {
  it("shows every worker's transactions summed in the primary, and the streams open on workers", async () => {
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'cluster-dashboard.js')], {
      env: { ...process.env, PORT: '0', DASHBOARD_PORT: '0', WORKERS: '2' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk) => { stderr += chunk })
    const exited = new Promise((resolve) => child.on('exit', resolve))
    async function waitFor(pattern, what, timeoutMs = 15_000) {
      for (const started = Date.now(); Date.now() - started < timeoutMs; await delay(50)) {
        const match = stdout.match(pattern)
        if (match) return match
      }
      throw new Error(`no ${what}:\n${stdout}\n${stderr}`)
    }
    let events
    try {
      const [, appPort] = await waitFor(/^listening on http:\/\/127\.0\.0\.1:(\d+)$/m, 'app')
      const [, pagePort] = await waitFor(/^dashboard on http:\/\/127\.0\.0\.1:(\d+)\/$/m, 'dashboard')
      const app = (p) => `http://127.0.0.1:${appPort}${p}`
      const page = await request(`http://127.0.0.1:${pagePort}/`)
      assert.equal(page.status, 200)
      assert.match(page.body, /<script src="\/dashboard\.js" defer><\/script>/)
      events = await openEvents(`http://127.0.0.1:${pagePort}/events?window=1`)
      const streams = [await openStreamOn(app('/events')), await openStreamOn(app('/events'))]
      let view
      for (const started = Date.now(); Date.now() - started < 10_000;) {
        view = await events.next(3000)
        if (view.workers === 2 && view.inFlight.background === 2) break
      }
      assert.equal(view.workers, 2, 'both workers report')
      assert.equal(view.inFlight.background, 2, 'the open streams, from the workers')
      assert.deepEqual(view.inFlight.open.map((g) => [g.type, g.name, g.count]), [['background', 'OtherTransaction/Expressjs/GET//events', 2]])
      for (const stream of streams) stream.destroy()

      const paths = [...Array.from({ length: 12 }, (_, i) => `/api/users/${i}`), '/exports/orders', '/exports/invoices']
      await Promise.all(paths.map((p) => request(app(p), { agent: false })))
      const logged = () => [...stdout.matchAll(/^worker (\d+): (web|background) +(\S+) (\S+) ms$/gm)].map(([, pid, type, name, ms]) => ({ pid, type, name, ms: Number(ms) }))
      await waitFor(/(?:^worker \d+: .*\n){16}/m, '16 logged transactions')
      const all = logged()
      assert.equal(all.length, 16)
      assert.equal(new Set(all.map((t) => t.pid)).size, 2, 'both workers served some')
      for (const started = Date.now(); Date.now() - started < 8000;) {
        view = await events.next(3000)
        if (view.web.count + view.background.count === 16) break
      }
      const web = all.filter((t) => t.type === 'web')
      assert.equal(view.web.count, 12)
      assert.equal(view.background.count, 4)
      assert.equal(view.asWeb.count, 16, 'every one of them was a request')
      assert.ok(Math.abs(view.web.meanMs - web.reduce((s, t) => s + t.ms, 0) / 12) < 0.002)
      assert.equal(view.web.satisfying, 12)
      assert.equal(view.inFlight.background, 0)
      assert.equal(view.names.background.find((r) => r.name === 'OtherTransaction/Expressjs/GET//exports/:report')?.count, 2)
    } finally {
      events?.close()
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
  })
})

/** Open a streaming GET of the app; resolves once its first chunk arrived, with the request to destroy. */
function openStreamOn(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.once('data', () => resolve(req))
      res.on('error', () => {})
    })
    req.on('error', reject)
  })
}

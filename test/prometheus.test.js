'use strict'
// express-background-task/prometheus (SPEC "Integrations"): real Express 5/4 and Connect apps, real prom-client registries, no mocks.
const { describe, it, afterEach } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const diagnosticsChannel = require('node:diagnostics_channel')
const promClient = require('prom-client')
const { ebt, FRAMEWORKS, recordingAgent, listen, request, delay } = require('./helpers')
const { captureDebug } = require('./fixtures/capture-debug')
const prometheus = require('express-background-task/prometheus')

const { createPrometheusExporter, PrometheusMetricName, DEFAULT_WEB_BUCKETS, DEFAULT_BACKGROUND_BUCKETS } = prometheus
const WEB = 'http_server_request_duration_seconds'
const BACKGROUND = 'background_transaction_duration_seconds'
const APDEX = 'apdex_transactions_total'
const IN_FLIGHT = 'transactions_in_flight'
const TEST_TIMEOUT_MS = 20_000

/** Every exporter a test made is closed after it, so none leaks subscribers into the next test. */
const opened = []
function exporterFor(options) {
  const exporter = createPrometheusExporter(options)
  opened.push(exporter)
  return exporter
}
afterEach(() => {
  for (const exporter of opened.splice(0)) exporter.close()
})

/** A fresh registry, agent and exporter keeping to that agent. */
function setup({ agentOptions, exporterOptions } = {}) {
  const registry = new promClient.Registry()
  const recording = recordingAgent(agentOptions)
  const exporter = exporterFor({ registry, agent: recording.agent, ...exporterOptions })
  return { registry, exporter, ...recording }
}

/** The samples of one exposed series family (`<metric>_count`, `<metric>_bucket`, or a counter/gauge), from prom-client's own JSON. */
async function samples(registry, metricName) {
  const metrics = await registry.getMetricsAsJSON()
  const family = metricName.replace(/_(count|sum|bucket)$/, '')
  const metric = metrics.find((m) => m.name === family)
  if (metric === undefined) return []
  // prom-client gives `le` as a number (and '+Inf'); Prometheus sees the text
  const text = (labels) => Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)]))
  return metric.values.filter((v) => (v.metricName ?? metric.name) === metricName).map((v) => ({ labels: text(v.labels), value: v.value }))
}

/** The value of the one sample whose labels include `labels`, or 0 when there is none. */
async function valueOf(registry, metricName, labels) {
  const found = (await samples(registry, metricName)).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  assert.ok(found.length <= 1, `several ${metricName} samples match ${JSON.stringify(labels)}`)
  return found[0]?.value ?? 0
}

/** Apdex counts per full name from the exporter's counter, in metrics()'s shape: { 'Apdex/<group>/<name>': {s, t, f} }. */
async function apdexFromCounter(registry) {
  const byName = {}
  for (const { labels, value } of await samples(registry, APDEX)) {
    const key = `Apdex/${labels.name.replace(/^WebTransaction\//, '')}`
    byName[key] ??= { satisfying: 0, tolerating: 0, frustrating: 0 }
    byName[key][labels.zone] += value
  }
  return byName
}

/** The same counts from agent.metrics(), names only (no rollup: `sum()` is the rollup in Prometheus). */
function apdexFromMetrics(agent) {
  const byName = {}
  for (const [key, { satisfying, tolerating, frustrating }] of Object.entries(agent.metrics().apdex)) {
    if (key !== 'Apdex') byName[key] = { satisfying, tolerating, frustrating }
  }
  return byName
}

/**
 * One app per framework: a quick route, a stream marked background in the route, a 5xx, a noticed
 * error answered 200, a suppressed and an ignored request. Express gets route templates; Connect
 * gets mount paths (it has no routes).
 */
function buildApp(framework, agent, { streamIntervalMs = 10 } = {}) {
  const app = FRAMEWORKS[framework]()()
  const express = framework !== 'connect'
  app.use((req, res, next) => {
    if (req.url === '/health') req.newrelic = { ignoreTransaction: 'on' } // before the middleware: set upstream
    next()
  })
  app.use(agent.middleware())
  const routes = {
    '/users': (req, res) => setImmediate(() => res.end('user')),
    '/events': (req, res) => {
      req.newrelic.setBackgroundTask = true
      res.writeHead(200, { 'Content-Type': 'text/event-stream' })
      let n = 0
      const timer = setInterval(() => res.write(`data: ${n++}\n\n`), streamIntervalMs)
      res.on('close', () => clearInterval(timer))
    },
    '/fail': (req, res) => {
      res.statusCode = 503
      res.end('down')
    },
    '/noticed': (req, res) => {
      ebt.getTransaction(req).noticeError(new Error('upstream timed out'))
      res.end('ok anyway')
    },
    '/quiet': (req, res) => {
      req.newrelic.suppressApdexMetric = true
      res.end('quiet')
    },
    '/health': (req, res) => res.end('ok'),
    '/slow': (req, res) => setTimeout(() => res.end('slow'), Number(new URL(req.url, 'http://x').searchParams.get('ms') ?? 0))
  }
  for (const [path, handle] of Object.entries(routes)) {
    if (express) app.get(path === '/users' ? '/users/:id' : path, handle)
    else app.use(path, handle)
  }
  return app
}

/** Open a streaming GET; resolves after the first chunk with `close()` to hang up as a browser tab does. */
function openStream(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.once('data', () => resolve({ close: () => req.destroy() }))
      res.on('error', () => {}) // our own hang-up
    })
    req.on('error', reject)
  })
}

/** Poll until `check()` resolves truthy. */
async function eventually(check, what, timeoutMs = 5000) {
  for (let waited = 0; ; waited += 10) {
    if (await check()) return
    if (waited >= timeoutMs) assert.fail(`timed out waiting for ${what}`)
    await delay(10)
  }
}

describe('createPrometheusExporter', { timeout: TEST_TIMEOUT_MS }, () => {
  for (const framework of Object.keys(FRAMEWORKS)) {
    it(`${framework}: web requests in the request histogram, the stream marked background only in the background one, Apdex as metrics() counts it`, async () => {
      const { registry, agent, records, waitFor } = setup()
      const server = await listen(buildApp(framework, agent))
      try {
        for (const path of ['/users/7', '/users/8', '/fail', '/noticed', '/quiet', '/health']) await request(server.url(path))
        const stream = await openStream(server.url('/events'))
        stream.close()
        await waitFor(6)
      } finally {
        await server.close()
      }
      const express = framework !== 'connect'
      const prefix = express ? 'Expressjs' : 'Connect'
      const users = express ? '/users/:id' : '/users'
      assert.deepEqual(records.map((r) => r.type).sort(), ['background', 'web', 'web', 'web', 'web', 'web'])

      // web: method, route template (never the raw URL), status code; nothing of the stream or the ignored request
      const counts = (await samples(registry, `${WEB}_count`)).map(({ labels, value }) => [labels.method, labels.route, labels.status_code, value])
      assert.deepEqual(counts.sort(), [
        ['GET', '/fail', '503', 1],
        ['GET', '/noticed', '200', 1],
        ['GET', '/quiet', '200', 1],
        ['GET', users, '200', 2]
      ].sort())
      for (const { labels } of await samples(registry, `${WEB}_bucket`)) assert.notEqual(labels.route, '/events')

      // background: the full name as metrics() keys it
      const background = await samples(registry, `${BACKGROUND}_count`)
      assert.deepEqual(background, [{ labels: { name: `OtherTransaction/${prefix}/GET//events` }, value: 1 }])
      const streamRecord = records.find((r) => r.type === 'background')
      assert.equal(await valueOf(registry, `${BACKGROUND}_sum`, { name: streamRecord.name }), streamRecord.duration / 1000)

      // Apdex: errors and 5xx frustrate, the suppressed one is absent, and the counts equal metrics()'s
      assert.equal(await valueOf(registry, APDEX, { name: `WebTransaction/${prefix}/GET/${users}`, zone: 'satisfying' }), 2)
      assert.equal(await valueOf(registry, APDEX, { name: `WebTransaction/${prefix}/GET//fail`, zone: 'frustrating' }), 1)
      assert.equal(await valueOf(registry, APDEX, { name: `WebTransaction/${prefix}/GET//noticed`, zone: 'frustrating' }), 1)
      assert.equal((await samples(registry, APDEX)).some((s) => s.labels.name.endsWith('/quiet')), false)
      assert.deepEqual(await apdexFromCounter(registry), apdexFromMetrics(agent))

      // in flight: everything ended
      assert.deepEqual((await samples(registry, IN_FLIGHT)).map((s) => [s.labels.type, s.value]), [['web', 0], ['background', 0]])
    })
  }

  it('puts each web duration in the buckets that hold it, with le=T and le=4T, and the Apdex zones by T', async () => {
    const apdexT = 0.1
    const { registry, agent, records, waitFor } = setup({ agentOptions: { apdexT } })
    const server = await listen(buildApp('express 5', agent))
    try {
      // satisfying (well under T), tolerating (between T and 4T), frustrating (above 4T)
      for (const ms of [0, 0, 200, 600]) await request(server.url(`/slow?ms=${ms}`))
      await waitFor(4)
    } finally {
      await server.close()
    }
    const zones = await apdexFromCounter(registry)
    assert.deepEqual(zones['Apdex/Expressjs/GET//slow'], { satisfying: 2, tolerating: 1, frustrating: 1 })
    assert.deepEqual(zones, apdexFromMetrics(agent))
    const buckets = await samples(registry, `${WEB}_bucket`)
    const les = buckets.map((b) => b.labels.le)
    assert.deepEqual(les, [...new Set([...DEFAULT_WEB_BUCKETS, apdexT, 4 * apdexT])].sort((a, b) => a - b).map(String).concat('+Inf'))
    for (const { labels, value } of buckets) {
      const le = labels.le === '+Inf' ? Infinity : Number(labels.le)
      assert.equal(value, records.filter((r) => r.duration / 1000 <= le).length, `le=${labels.le}`)
    }
    // the classic bucket formula agrees here, where no request failed: (le=T + le=4T) / 2 / count
    const at = (le) => buckets.find((b) => b.labels.le === String(le)).value
    assert.equal((at(apdexT) + at(4 * apdexT)) / 2 / 4, agent.metrics().apdex.Apdex.score)
  })

  it('counts a background task turned web as web, with its name as the route and no method or status', async () => {
    const { registry, agent, waitFor } = setup()
    agent.backgroundTask('render-preview', () => agent.setBackgroundTask(false))
    await agent.backgroundTask('send-digest', () => delay(1))
    await waitFor(2)
    assert.deepEqual(await samples(registry, `${WEB}_count`), [
      { labels: { method: '', route: 'WebTransaction/Nodejs/render-preview', status_code: '' }, value: 1 }
    ])
    assert.equal(await valueOf(registry, APDEX, { name: 'WebTransaction/Nodejs/render-preview', zone: 'satisfying' }), 1)
    assert.deepEqual(await samples(registry, `${BACKGROUND}_count`), [{ labels: { name: 'OtherTransaction/Nodejs/send-digest' }, value: 1 }])
  })

  for (const framework of Object.keys(FRAMEWORKS)) {
    it(`${framework}: in flight follows a request reclassified while it runs, a stream while it is open, then reads 0`, async () => {
      const { registry, agent, waitFor } = setup()
      const server = await listen(buildApp(framework, agent))
      const inFlight = async () => Object.fromEntries((await samples(registry, IN_FLIGHT)).map((s) => [s.labels.type, s.value]))
      try {
        const slow = request(server.url('/slow?ms=300'))
        await eventually(async () => (await inFlight()).web === 1, 'the slow request in flight')
        const stream = await openStream(server.url('/events'))
        assert.deepEqual(await inFlight(), { web: 1, background: 1 })
        const second = await openStream(server.url('/events'))
        assert.deepEqual(await inFlight(), { web: 1, background: 2 })
        await slow
        await eventually(async () => (await inFlight()).web === 0, 'the slow request ended')
        stream.close()
        second.close()
        await waitFor(3)
        assert.deepEqual(await inFlight(), { web: 0, background: 0 })
      } finally {
        await server.close()
      }
    })
  }

  it('counts a client gone before any response as frustrating, as metrics() does (issue 8.6)', async () => {
    const { registry, agent, waitFor } = setup()
    const express = require('express')
    const app = express()
    app.use(agent.middleware())
    const entered = new Promise((resolve) => app.get('/hang', () => resolve()))
    const server = await listen(app)
    try {
      const req = http.get(server.url('/hang'))
      req.on('error', () => {})
      await entered
      req.destroy()
      const [record] = await waitFor(1)
      assert.equal(record.aborted, true)
      assert.equal('statusCode' in record, false)
      assert.equal(await valueOf(registry, APDEX, { name: 'WebTransaction/Expressjs/GET//hang', zone: 'frustrating' }), 1)
      assert.deepEqual(await apdexFromCounter(registry), apdexFromMetrics(agent))
    } finally {
      await server.close()
    }
  })

  it('balances in flight for ignored transactions, and ignores ones that started before it', async () => {
    const { agent, waitFor } = recordingAgent()
    const registry = new promClient.Registry()
    let release
    const before = agent.backgroundTask('before', () => new Promise((resolve) => { release = resolve }))
    exporterFor({ registry, agent })
    agent.backgroundTask('ignored', () => agent.getTransaction().ignore())
    await agent.backgroundTask('ignored-later', async () => {
      await delay(1)
      agent.getTransaction().ignore()
    })
    release()
    await before
    await waitFor(1)
    assert.deepEqual((await samples(registry, IN_FLIGHT)).map((s) => s.value), [0, 0])
    // the one that started before the exporter: neither in flight nor below zero, but its end is recorded
    assert.deepEqual(await samples(registry, `${BACKGROUND}_count`), [{ labels: { name: 'OtherTransaction/Nodejs/before' }, value: 1 }])
  })

  it('keeps to the agent it is given; without one, it sees every agent and zones each by its own T', async () => {
    const strict = recordingAgent({ apdexT: 0.001 })
    const lenient = recordingAgent({ apdexT: 10 })
    const mineOnly = new promClient.Registry()
    const everyone = new promClient.Registry()
    exporterFor({ registry: mineOnly, agent: lenient.agent })
    exporterFor({ registry: everyone })
    for (const { agent } of [strict, lenient]) {
      await agent.backgroundTask('render', async () => {
        agent.setBackgroundTask(false)
        await delay(20)
      })
    }
    await strict.waitFor(1)
    await lenient.waitFor(1)
    // every zone of a name exists from its first count, so rate() sees a zone's first transaction
    assert.deepEqual((await samples(mineOnly, APDEX)).map((s) => [s.labels.name, s.labels.zone, s.value]), [
      ['WebTransaction/Nodejs/render', 'satisfying', 1],
      ['WebTransaction/Nodejs/render', 'tolerating', 0],
      ['WebTransaction/Nodejs/render', 'frustrating', 0]
    ])
    const zones = (await samples(everyone, APDEX)).map((s) => [s.labels.zone, s.value])
    assert.deepEqual(zones, [['satisfying', 1], ['tolerating', 0], ['frustrating', 1]])
    // with no agent, the web buckets hold the default agent's T and 4T
    const les = new Set((await samples(everyone, `${WEB}_bucket`)).map((s) => s.labels.le))
    assert.ok(les.has('0.5') && les.has('2'))
    const lenientLes = new Set((await samples(mineOnly, `${WEB}_bucket`)).map((s) => s.labels.le))
    assert.ok(lenientLes.has('10') && lenientLes.has('40'))
  })

  it('folds names past the cap into the overflow label values, and keeps every count', async () => {
    const { registry, agent, waitFor } = setup()
    const extra = 5
    for (let i = 0; i < ebt.MAX_TRANSACTION_NAMES + extra; i++) agent.backgroundTask(`job-${i}`, () => undefined)
    agent.backgroundTask('late-web', () => agent.setBackgroundTask(false))
    agent.backgroundTask('job-0', () => undefined) // a name admitted before the cap keeps its own series
    agent.backgroundTask('*', () => undefined, { group: 'Overflow' }) // spells the overflow name: counted there
    await waitFor(ebt.MAX_TRANSACTION_NAMES + extra + 3)
    const background = await samples(registry, `${BACKGROUND}_count`)
    assert.equal(background.length, ebt.MAX_TRANSACTION_NAMES + 1)
    assert.equal(background.reduce((sum, s) => sum + s.value, 0), ebt.MAX_TRANSACTION_NAMES + extra + 2)
    assert.equal(await valueOf(registry, `${BACKGROUND}_count`, { name: ebt.OVERFLOW_NAME.background }), extra + 1)
    assert.equal(await valueOf(registry, `${BACKGROUND}_count`, { name: 'OtherTransaction/Nodejs/job-0' }), 2)
    assert.deepEqual((await samples(registry, APDEX)).map((s) => [s.labels.name, s.labels.zone, s.value]), [
      [ebt.OVERFLOW_NAME.web, 'satisfying', 1],
      [ebt.OVERFLOW_NAME.web, 'tolerating', 0],
      [ebt.OVERFLOW_NAME.web, 'frustrating', 0]
    ])
    assert.deepEqual(await samples(registry, `${WEB}_count`), [{ labels: { method: '', route: ebt.OVERFLOW_NAME.web, status_code: '' }, value: 1 }])
  })

  it('refuses a second exporter on one registry with ERR_EBT_ALREADY_REGISTERED; the first keeps working', async () => {
    const { registry, agent, waitFor } = setup()
    const before = registry.getMetricsAsArray()
    assert.throws(() => createPrometheusExporter({ registry, agent }), { name: 'TypeError', code: 'ERR_EBT_ALREADY_REGISTERED', message: /http_server_request_duration_seconds/ })
    assert.deepEqual(registry.getMetricsAsArray(), before)
    agent.backgroundTask('still-counted', () => undefined)
    await waitFor(1)
    assert.equal(await valueOf(registry, `${BACKGROUND}_count`, { name: 'OtherTransaction/Nodejs/still-counted' }), 1)
    // the refused one subscribed to nothing: one count, not two
    assert.equal((await samples(registry, `${BACKGROUND}_count`)).length, 1)
    // a prefix makes room for a second one on the same registry
    exporterFor({ registry, agent, prefix: 'second_' })
    assert.ok(registry.getSingleMetric('second_transactions_in_flight'))
  })

  it('registers nothing when another metric already holds one of its names', () => {
    const registry = new promClient.Registry()
    const theirs = new promClient.Gauge({ name: IN_FLIGHT, help: 'an app metric', registers: [registry] })
    assert.throws(() => createPrometheusExporter({ registry }), { code: 'ERR_EBT_ALREADY_REGISTERED', message: /transactions_in_flight/ })
    assert.deepEqual(registry.getMetricsAsArray(), [theirs])
  })

  it('close() unsubscribes and unregisters exactly what it registered; twice is harmless; the registry takes a new one', async () => {
    const registry = new promClient.Registry()
    const theirs = new promClient.Counter({ name: 'app_orders_total', help: 'an app metric', registers: [registry] })
    const { agent, waitFor } = recordingAgent()
    const exporter = createPrometheusExporter({ registry, agent })
    const ours = registry.getSingleMetric(`${BACKGROUND}`)
    assert.equal(diagnosticsChannel.channel(ebt.ChannelName.END).hasSubscribers, true)
    exporter.close()
    exporter.close()
    assert.deepEqual(registry.getMetricsAsArray(), [theirs])
    assert.equal(diagnosticsChannel.channel(ebt.ChannelName.START).hasSubscribers, false)
    assert.equal(diagnosticsChannel.channel(ebt.ChannelName.CLASSIFY).hasSubscribers, false)
    assert.equal(diagnosticsChannel.channel(ebt.ChannelName.END).hasSubscribers, false)
    agent.backgroundTask('after-close', () => undefined)
    await waitFor(1)
    assert.deepEqual((await ours.get()).values, [])
    // a new exporter registers again; closing the old one again does not remove the new one's metrics
    exporterFor({ registry, agent })
    exporter.close()
    assert.equal(registry.getMetricsAsArray().length, 5)
  })

  it('prefixes every metric name; uses prom-client\'s default registry when given none', async () => {
    const { registry } = setup({ exporterOptions: { prefix: 'myapp_' } })
    assert.deepEqual(registry.getMetricsAsArray().map((m) => m.name).sort(), Object.values(PrometheusMetricName).map((name) => `myapp_${name}`).sort())
    const exporter = exporterFor({ prefix: 'default_registry_' })
    assert.ok(promClient.register.getSingleMetric('default_registry_apdex_transactions_total'))
    exporter.close()
    assert.equal(promClient.register.getSingleMetric('default_registry_apdex_transactions_total'), undefined)
  })

  it('adds T and 4T to custom web buckets, sorted and without duplicates; background buckets are used as given', async () => {
    const { registry, agent, waitFor } = setup({
      agentOptions: { apdexT: 0.25 },
      exporterOptions: { webBuckets: [1, 0.1, 0.1], backgroundBuckets: [60, 1] }
    })
    agent.backgroundTask('web', () => agent.setBackgroundTask(false))
    agent.backgroundTask('background', () => undefined)
    await waitFor(2)
    assert.deepEqual((await samples(registry, `${WEB}_bucket`)).map((s) => s.labels.le), ['0.1', '0.25', '1', '+Inf'])
    assert.deepEqual((await samples(registry, `${BACKGROUND}_bucket`)).map((s) => s.labels.le), ['1', '60', '+Inf'])
    assert.equal(DEFAULT_BACKGROUND_BUCKETS.at(-1), 3600)
    assert.deepEqual([...DEFAULT_WEB_BUCKETS], [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10])
  })

  it('rejects bad options at construction with coded TypeErrors, registering nothing', () => {
    const registry = new promClient.Registry()
    const cases = [
      ['not an object', 'ERR_EBT_OPTIONS_TYPE', 'options must be an object'],
      [[], 'ERR_EBT_OPTIONS_TYPE'],
      [{ prefx: 'a_' }, 'ERR_EBT_UNKNOWN_OPTION', /prefx.*allowed: registry, agent, prefix, webBuckets, backgroundBuckets/],
      [{ prefix: 'my-app_' }, 'ERR_EBT_OPTIONS_TYPE', /prefix.*'my-app_'/],
      [{ prefix: '1app_' }, 'ERR_EBT_OPTIONS_TYPE'],
      [{ prefix: 'app:' }, 'ERR_EBT_OPTIONS_TYPE'],
      [{ prefix: 42 }, 'ERR_EBT_OPTIONS_TYPE'],
      [{ webBuckets: 0.5 }, 'ERR_EBT_OPTIONS_TYPE', /webBuckets.*0\.5/],
      [{ webBuckets: [] }, 'ERR_EBT_OPTIONS_TYPE'],
      [{ webBuckets: [0.1, NaN] }, 'ERR_EBT_OPTIONS_TYPE'],
      [{ webBuckets: [0] }, 'ERR_EBT_OPTIONS_TYPE'],
      [{ webBuckets: ['1'] }, 'ERR_EBT_OPTIONS_TYPE'],
      [{ backgroundBuckets: { 1: 1 } }, 'ERR_EBT_OPTIONS_TYPE', /backgroundBuckets/],
      [{ backgroundBuckets: [Infinity] }, 'ERR_EBT_OPTIONS_TYPE'],
      [{ registry: {} }, 'ERR_EBT_OPTIONS_TYPE', /registry must be a prom-client Registry/],
      [{ registry: promClient.Registry }, 'ERR_EBT_OPTIONS_TYPE'],
      [{ registry: 'default' }, 'ERR_EBT_OPTIONS_TYPE'],
      [{ agent: {} }, 'ERR_EBT_OPTIONS_TYPE', /agent must be an agent from createAgent/],
      [{ agent: ebt }, 'ERR_EBT_OPTIONS_TYPE']
    ]
    for (const [options, code, message] of cases) {
      const withRegistry = typeof options === 'object' && options !== null && !Array.isArray(options) && !('registry' in options) ? { registry, ...options } : options
      assert.throws(() => createPrometheusExporter(withRegistry), (err) => {
        assert.equal(err.name, 'TypeError')
        assert.equal(err.code, code, `${JSON.stringify(options)}: ${err.message}`)
        if (message !== undefined) assert.match(err.message, typeof message === 'string' ? new RegExp(message) : message)
        return true
      })
    }
    assert.deepEqual(registry.getMetricsAsArray(), [])
    // undefined counts as absent
    exporterFor({ registry, agent: undefined, prefix: undefined, webBuckets: undefined, backgroundBuckets: undefined, other: undefined })
    assert.equal(registry.getMetricsAsArray().length, 4)
  })

  it('handler() serves the registry with its content type, and answers 500 when a collect fails', async () => {
    const registry = new promClient.Registry()
    const open = new promClient.Registry(promClient.Registry.OPENMETRICS_CONTENT_TYPE)
    const { agent, waitFor } = recordingAgent()
    const exporter = exporterFor({ registry, agent })
    const openExporter = exporterFor({ registry: open, agent, prefix: 'om_' })
    const app = require('express')()
    app.use(agent.middleware())
    app.get('/users/:id', (req, res) => res.end('user'))
    app.get('/metrics', exporter.handler())
    app.get('/openmetrics', openExporter.handler())
    app.get('/uncalled', exporter.handler)
    const broken = new promClient.Registry()
    new promClient.Gauge({ name: 'broken', help: 'fails to collect', registers: [broken], collect() { throw new Error('collect failed') } }) // eslint-disable-line no-new
    app.get('/broken', exporterFor({ registry: broken, agent }).handler())
    const errors = []
    app.use((err, req, res, next) => {
      errors.push(err)
      res.status(500).end()
    })
    const server = await listen(app)
    try {
      await request(server.url('/users/1'))
      await waitFor(1)
      const res = await request(server.url('/metrics'))
      assert.equal(res.status, 200)
      assert.equal(res.headers['content-type'], promClient.register.contentType)
      assert.match(res.body, /^http_server_request_duration_seconds_count\{method="GET",route="\/users\/:id",status_code="200"\} 1$/m)
      assert.match(res.body, /^# TYPE apdex_transactions_total counter$/m)
      const om = await request(server.url('/openmetrics'))
      assert.equal(om.headers['content-type'], promClient.openMetricsContentType)
      assert.match(om.body, /^# EOF$/m)
      assert.equal((await request(server.url('/uncalled'))).status, 500)
      assert.equal(errors[0].code, 'ERR_EBT_MIDDLEWARE_NOT_CALLED')
      const debug = captureDebug('express-background-task:prometheus')
      try {
        assert.equal((await request(server.url('/broken'))).status, 500)
      } finally {
        debug.stop()
      }
      assert.match(debug.lines.join('\n'), /fail to collect the registry.*collect failed/s)
      // and the app goes on
      assert.equal((await request(server.url('/metrics'))).status, 200)
    } finally {
      await server.close()
    }
  })

  it('never throws into the publisher: odd messages and odd records are skipped and reported through debug', async () => {
    const registry = new promClient.Registry()
    exporterFor({ registry })
    const debug = captureDebug('express-background-task:prometheus')
    const fakeAgent = ebt.createAgent()
    const odd = [
      undefined,
      null,
      42,
      {},
      { transaction: null },
      { transaction: { agent: null, type: 'web' } },
      { transaction: { agent: fakeAgent, type: 'web' }, record: { type: 'web', name: 'WebTransaction/x', duration: NaN, suppressApdexMetric: false } },
      { transaction: { agent: fakeAgent, type: 'web' }, record: { type: 'web', name: 'WebTransaction/x', duration: -1, suppressApdexMetric: false } },
      { transaction: { agent: fakeAgent, type: 'web' }, record: { type: 'web', name: 'WebTransaction/x', duration: Infinity, suppressApdexMetric: false } },
      { transaction: { agent: fakeAgent, type: 'web' }, record: { type: 'background', name: Symbol('x'), duration: 1 } },
      { transaction: { get agent() { throw new Error('hostile getter') } } }
    ]
    try {
      for (const name of Object.values(ebt.ChannelName)) {
        for (const message of odd) assert.doesNotThrow(() => diagnosticsChannel.channel(name).publish(message), `${name} ${String(message)}`)
      }
    } finally {
      debug.stop()
    }
    assert.ok(debug.lines.some((line) => /fail to record an end/.test(line)))
    assert.ok(debug.lines.some((line) => /skip WebTransaction\/x: duration NaN/.test(line)))
    assert.deepEqual((await samples(registry, IN_FLIGHT)).map((s) => s.value), [0, 0])
    assert.deepEqual(await samples(registry, `${WEB}_count`), [])

    // real transactions with odd names and attributes: label values are escaped, the exposition still parses
    const { agent, waitFor } = recordingAgent()
    const app = require('express')()
    app.use(agent.middleware())
    app.get('/odd', (req, res) => {
      ebt.getTransaction(req).setName('quote " backslash \\ newline \n unicode é 🚀')
      res.status(599).end()
    })
    const server = await listen(app)
    try {
      await request(server.url('/odd?x="1"'))
      await waitFor(1)
    } finally {
      await server.close()
    }
    const text = await registry.metrics()
    assert.match(text, /^apdex_transactions_total\{name="WebTransaction\/Custom\/quote \\" backslash \\\\ newline \\n unicode é 🚀",zone="frustrating"\} 1$/m)
    for (const line of text.split('\n')) assert.match(line, /^(#.*|[a-z_]+(\{.*\})? -?[\d.e+-]+|)$/, line)
  })
})

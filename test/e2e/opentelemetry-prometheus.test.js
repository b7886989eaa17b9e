'use strict'
// End to end: express-background-task/opentelemetry records on a real MeterProvider whose reader is
// the OpenTelemetry SDK's own Prometheus exporter, scraped by Debian's real `prometheus` binary. The
// requests marked background must be absent from http.server.request.duration there, and counted on
// the background histogram. Needs the binary (see test/fixtures/prometheus-server.js).
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const express = require('express')
const { MeterProvider } = require('@opentelemetry/sdk-metrics')
const { PrometheusExporter } = require('@opentelemetry/exporter-prometheus')
const { ebt, listen, request, delay } = require('../helpers')
const { eventually } = require('../fixtures/cluster-example')
const { SKIP, startPrometheus } = require('../fixtures/prometheus-server')
const { instrumentOpenTelemetry } = require('express-background-task/opentelemetry')

const TIMEOUT_MS = 90_000
const WEB = ['/users/1', '/users/2', '/users/3', '/search', '/search']
const BACKGROUND = ['/exports/orders', '/exports/invoices', '/events']

describe('the OpenTelemetry SDK\'s Prometheus exporter, scraped by a real Prometheus', { timeout: TIMEOUT_MS, skip: SKIP }, () => {
  let prometheus
  let app
  let metricsServer
  let instrumentation
  let meterProvider

  before(async () => {
    const agent = ebt.createAgent()
    const exporter = new PrometheusExporter({ preventServerStart: true })
    meterProvider = new MeterProvider({ readers: [exporter] })
    instrumentation = instrumentOpenTelemetry({ meterProvider, agent })
    const server = express()
    server.use(agent.middleware())
    server.get('/users/:id', (req, res) => res.json({ id: req.params.id }))
    server.get('/search', async (req, res) => {
      await delay(5)
      res.json([])
    })
    server.get('/exports/:kind', async (req, res) => {
      req.newrelic.setBackgroundTask = true
      await delay(20)
      res.end('csv')
    })
    server.get('/events', async (req, res) => {
      ebt.setBackgroundTask()
      res.write('data: 1\n\n')
      await delay(50)
      res.end('data: 2\n\n')
    })
    app = await listen(server)
    metricsServer = await listen((req, res) => exporter.getMetricsRequestHandler(req, res))
    prometheus = await startPrometheus({ otel: new URL(metricsServer.url('/metrics')).host })
  })

  after(async () => {
    await prometheus?.stop()
    instrumentation?.stop()
    await app?.close()
    await metricsServer?.close()
    await meterProvider?.shutdown()
  })

  it('keeps the background requests out of http_server_request_duration (the exporter adds no unit suffix), and counts them apart', async () => {
    for (const path of [...WEB, ...BACKGROUND]) assert.equal((await request(app.url(path))).status, 200, path)
    await eventually(async () => {
      const [web, background] = await Promise.all([
        prometheus.query('sum(http_server_request_duration_count)'),
        prometheus.query('sum(background_transaction_duration_count)')
      ])
      return web[0]?.value === WEB.length && background[0]?.value === BACKGROUND.length
    }, 'every request scraped, web and background apart', 30_000)
    const routes = await prometheus.query('sum by (http_route) (http_server_request_duration_count)')
    assert.deepEqual(Object.fromEntries(routes.map((r) => [r.labels.http_route, r.value])), { '/users/:id': 3, '/search': 2 })
    const names = await prometheus.query('sum by (express_background_task_name) (background_transaction_duration_count)')
    assert.deepEqual(Object.fromEntries(names.map((r) => [r.labels.express_background_task_name, r.value])), {
      'OtherTransaction/Expressjs/GET//exports/:kind': 2,
      'OtherTransaction/Expressjs/GET//events': 1
    })
    // a p95 over the web histogram sees no stream: every web request here took well under 0.5 s
    const [p95] = await prometheus.query('histogram_quantile(0.95, sum by (le) (http_server_request_duration_bucket))')
    assert.ok(p95.value < 0.1, `web p95 ${p95.value}`)
  })
})

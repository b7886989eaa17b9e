'use strict'
// With OpenTelemetry: web requests on http.server.request.duration, background ones on
// background_transaction.duration (never both), and the classification on instrumentation-http's
// server span (express_background_task.type, plus an event when it changes), so a p95 panel and a
// trace search both leave the event streams and exports out.
//
//   node examples/opentelemetry.js
//   curl http://127.0.0.1:3000/users/7      -> web:        http.server.request.duration{http.route="/users/:id"}
//   curl http://127.0.0.1:3000/reports/7    -> background: background_transaction.duration{express_background_task.name=...}
//   curl -N http://127.0.0.1:3000/events    -> background, for as long as the stream is open (Ctrl-C hangs up)
//   curl http://127.0.0.1:3000/otel         -> what the MeterProvider holds: each histogram's counts
//
// Each ended server span is printed as `span <name> express_background_task.type=<type>`. A real app
// exports instead (OTLP, or @opentelemetry/exporter-prometheus, which is a MetricReader like the
// one here); the setup is the same with NodeSDK (see the README).
const { setTimeout: sleep } = require('node:timers/promises')

/**
 * Providers, instrumentations and this package's integration. Runs before express is loaded:
 * instrumentation-http and instrumentation-express patch modules as they are required.
 * @returns {{ collect: () => Promise<object[]> }} reads the MeterProvider: one row per data point.
 */
function setupOpenTelemetry() {
  const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node')
  const { MeterProvider, MetricReader } = require('@opentelemetry/sdk-metrics')
  const { registerInstrumentations } = require('@opentelemetry/instrumentation')
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http')
  const { ExpressInstrumentation } = require('@opentelemetry/instrumentation-express')
  const { instrumentOpenTelemetry, dropInstrumentationHttpDurationViews, AttributeName } = require('express-background-task/opentelemetry')

  /** Prints each server span as it ends; stands for an exporter. */
  const printServerSpans = {
    onStart() {},
    onEnd(span) {
      if (span.kind === 1) console.log(`span ${span.name} ${AttributeName.TYPE}=${span.attributes[AttributeName.TYPE]}`)
    },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve()
  }
  new NodeTracerProvider({ spanProcessors: [printServerSpans] }).register()

  /** A pull reader: /otel collects on demand. */
  class OnDemandReader extends MetricReader {
    async onForceFlush() {}
    async onShutdown() {}
  }
  const reader = new OnDemandReader()
  // The View drops instrumentation-http's own http.server.request.duration, which would count the
  // streams as web: this package's, on a meter of its own, is the single one.
  const meterProvider = new MeterProvider({ readers: [reader], views: dropInstrumentationHttpDurationViews() })
  registerInstrumentations({ meterProvider, instrumentations: [new HttpInstrumentation(), new ExpressInstrumentation()] })
  instrumentOpenTelemetry({ meterProvider })

  async function collect() {
    const { resourceMetrics } = await reader.collect()
    return resourceMetrics.scopeMetrics.flatMap(({ scope, metrics }) =>
      metrics.flatMap(({ descriptor, dataPoints }) =>
        dataPoints.map((point) => ({ scope: scope.name, name: descriptor.name, attributes: point.attributes, count: point.value.count }))
      )
    )
  }
  return { collect }
}

/**
 * Build the app.
 * @param {object} [options]
 * @param {object} [options.agent] - the package itself (its default agent), or one made by `createAgent()`.
 * @param {() => Promise<object[]>} [options.collect] - reads the metrics for /otel.
 */
function createApp({ agent = require('express-background-task'), collect = async () => [] } = {}) {
  const express = require('express') // here, so that it loads after setupOpenTelemetry()
  const ebt = require('express-background-task')
  const app = express()
  app.use(agent.middleware())

  app.get('/users/:id', async (req, res) => {
    await sleep(5) // a database call
    res.json({ id: req.params.id })
  })

  // A slow export, marked with the flag: it leaves http.server.request.duration alone.
  app.get('/reports/:id', async (req, res) => {
    req.newrelic.setBackgroundTask = true
    await sleep(50)
    res.type('text/csv').send('id,total\n1,10\n')
  })

  // Server-sent events, marked as background with the helper.
  app.get('/events', (req, res) => {
    ebt.setBackgroundTask()
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' })
    const timer = setInterval(() => res.write(`data: ${Date.now()}\n\n`), 1000)
    res.on('close', () => clearInterval(timer))
  })

  app.get('/otel', async (req, res) => {
    req.newrelic.ignoreTransaction = true // the metrics page is not part of the app's traffic
    res.json(await collect())
  })
  return app
}

module.exports = { createApp, setupOpenTelemetry }

if (require.main === module) {
  const { collect } = setupOpenTelemetry()
  const server = createApp({ collect }).listen(Number(process.env.PORT || 3000), '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`)
  })
}

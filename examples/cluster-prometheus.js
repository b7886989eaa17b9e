'use strict'
// Prometheus across a Node cluster: every worker records its transactions with
// createPrometheusExporter(), and the primary serves all workers' metrics summed by prom-client's
// AggregatorRegistry. Requests marked background (a server-sent events stream, a long export) stay
// out of http_server_request_duration_seconds, so a p95 panel over it shows only page loads.
//
//   node examples/cluster-prometheus.js              (PORT=3000 METRICS_PORT=9464 WORKERS=2)
//   curl http://127.0.0.1:3000/api/users/1       -> web         (a few ms: satisfying)
//   curl http://127.0.0.1:3000/api/search        -> web         (slow: tolerating)
//   curl http://127.0.0.1:3000/api/orders        -> web, 503    (frustrating)
//   curl -N http://127.0.0.1:3000/events         -> background  (in transactions_in_flight{type="background"} while open)
//   curl http://127.0.0.1:3000/exports/orders    -> background  (long)
//   curl http://127.0.0.1:9464/metrics           -> every worker's metrics, summed
const cluster = require('node:cluster')
const http = require('node:http')
const { setTimeout: sleep } = require('node:timers/promises')
const { AggregatorRegistry } = require('prom-client')
const express = require('express')
const ebt = require('express-background-task')
const { createPrometheusExporter } = require('express-background-task/prometheus')

// In every process, primary and workers alike, as prom-client's cluster example does: in a worker,
// constructing it is what makes the worker answer the primary with its registries' metrics
// (prom-client's default registry, where createPrometheusExporter() registers by default; a worker
// exporting to its own registry also calls AggregatorRegistry.setRegistries(registry)).
const aggregatorRegistry = new AggregatorRegistry()

/**
 * The workers' app.
 * @param {object} [options]
 * @param {object} [options.agent] - the package itself (its default agent), or one made by `createAgent()`.
 * @param {number} [options.slowMs] - how long /api/search takes (between T and 4T of the default Apdex T, 0.5 s).
 * @param {number} [options.exportMs] - how long an export takes.
 * @param {number} [options.eventIntervalMs] - time between two events of a stream.
 */
function createApp({ agent = ebt, slowMs = 800, exportMs = 1500, eventIntervalMs = 250 } = {}) {
  const app = express()
  app.use((req, res, next) => {
    // health checks of the load balancer: recorded nowhere
    if (req.path === '/healthz') req.newrelic = { ignoreTransaction: true }
    next()
  })
  app.use(agent.middleware())
  app.get('/healthz', (req, res) => res.send('ok'))
  app.get('/api/users/:id', async (req, res) => {
    await sleep(2)
    res.json({ id: Number(req.params.id) })
  })
  app.get('/api/search', async (req, res) => {
    await sleep(slowMs)
    res.json({ results: [] })
  })
  app.get('/api/orders', (req, res) => {
    res.status(503).json({ error: 'orders database unavailable' })
  })
  // Long-lived: marked background, so they never reach the web histogram or Apdex.
  app.get('/events', (req, res) => {
    ebt.setBackgroundTask()
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' })
    const timer = setInterval(() => res.write(`data: ${JSON.stringify({ at: Date.now() })}\n\n`), eventIntervalMs)
    res.on('close', () => clearInterval(timer))
  })
  app.get('/exports/:report', async (req, res) => {
    req.newrelic.setBackgroundTask = true
    await sleep(exportMs)
    res.type('text/csv').send('id,total\n1,19.99\n')
  })
  app.use(agent.errorHandler())
  return app
}

/** The primary: fork the workers, replace any that dies, and serve their metrics summed. */
function runPrimary({ workers, port, metricsPort }) {
  let listening = 0
  let stopping = false
  function fork() {
    const worker = cluster.fork({ PORT: String(port) })
    // a worker whose IPC channel breaks must not take the primary down
    worker.on('error', (err) => console.error(`worker ${worker.process.pid}: ${err.message}`))
    console.log(`worker ${worker.process.pid} started`)
  }
  cluster.on('listening', (worker, address) => {
    if (++listening === workers) console.log(`listening on http://127.0.0.1:${address.port}`)
  })
  cluster.on('exit', (worker, code, signal) => {
    console.log(`worker ${worker.process.pid} exited (${signal ?? code})`)
    if (!stopping) fork()
  })
  for (let i = 0; i < workers; i++) fork()

  const metricsServer = http.createServer(async (req, res) => {
    if (req.url !== '/metrics') {
      res.statusCode = 404
      return res.end()
    }
    try {
      // The one call of the primary: every live worker's metrics, summed per series.
      const text = await aggregatorRegistry.clusterMetrics()
      res.setHeader('Content-Type', aggregatorRegistry.contentType)
      res.end(text)
    } catch (err) {
      // a worker that died or hangs mid-scrape: this scrape fails (prom-client gives up after 5 s), the next one works
      res.statusCode = 503
      res.setHeader('Content-Type', 'text/plain; charset=utf-8')
      res.end(`metrics unavailable: ${err.message}\n`)
    }
  })
  metricsServer.listen(metricsPort, '127.0.0.1', () => {
    console.log(`metrics on http://127.0.0.1:${metricsServer.address().port}/metrics`)
  })
  function stop() {
    stopping = true
    metricsServer.close()
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM')
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

/** A worker: record every transaction into prom-client's default registry, and serve the app. */
function runWorker({ port }) {
  // The one call of a worker (the AggregatorRegistry above makes it answer the primary).
  createPrometheusExporter()
  ebt.onTransactionEnd((tx) => {
    // full precision, so a test can check every bucket the primary sums
    console.log(`worker ${process.pid}: ${tx.type.padEnd(10)} ${tx.name} ${tx.statusCode} ${tx.duration} ms`)
  })
  const server = http.createServer(createApp())
  server.listen(port, '127.0.0.1')
  process.on('SIGTERM', () => {
    server.closeAllConnections()
    server.close(() => process.exit(0))
  })
}

module.exports = { createApp }

if (require.main === module) {
  const port = Number(process.env.PORT ?? 3000)
  if (cluster.isPrimary) {
    runPrimary({ workers: Number(process.env.WORKERS ?? 2), port, metricsPort: Number(process.env.METRICS_PORT ?? 9464) })
  } else {
    runWorker({ port })
  }
}

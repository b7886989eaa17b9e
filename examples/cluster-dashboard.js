'use strict'
// One dashboard page for a whole Node cluster: each worker sends its per-second figures to the
// primary over cluster IPC with reportToPrimary(), and the primary serves the page with
// dashboard({ cluster: true }) on a port of its own, so every refresh shows every worker.
//
//   node examples/cluster-dashboard.js            (PORT=3000 DASHBOARD_PORT=9465 WORKERS=2)
//   open http://127.0.0.1:9465/                   -> the page, the whole cluster
//   curl http://127.0.0.1:3000/api/users/1        -> web
//   curl -N http://127.0.0.1:3000/events          -> background (open streams in flight while they run)
//   curl http://127.0.0.1:3000/exports/orders     -> background (slow)
const cluster = require('node:cluster')
const http = require('node:http')
const { setTimeout: sleep } = require('node:timers/promises')
const express = require('express')
const ebt = require('express-background-task')
const { dashboard, reportToPrimary } = require('express-background-task/dashboard')

/** The workers' app: a quick API that stays web, a stream and an export marked background. */
function createApp({ exportMs = 600, eventIntervalMs = 250 } = {}) {
  const app = express()
  app.use(ebt.middleware())
  app.get('/api/users/:id', async (req, res) => {
    await sleep(2)
    res.json({ id: Number(req.params.id) })
  })
  app.get('/events', (req, res) => {
    ebt.setBackgroundTask()
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' })
    const timer = setInterval(() => res.write(`data: ${Date.now()}\n\n`), eventIntervalMs)
    res.on('close', () => clearInterval(timer))
  })
  app.get('/exports/:report', async (req, res) => {
    req.newrelic.setBackgroundTask = true
    await sleep(exportMs)
    res.type('text/csv').send('id,total\n1,19.99\n')
  })
  return app
}

/** The primary: fork the workers and serve the cluster's page (the one call of the primary). */
function runPrimary({ workers, port, dashboardPort }) {
  // The dashboard is for the team, not the internet: under NODE_ENV=production it answers 404
  // unless authorize(req) says yes; here it listens on loopback only.
  const page = http.createServer(dashboard({ cluster: true }))
  page.listen(dashboardPort, '127.0.0.1', () => console.log(`dashboard on http://127.0.0.1:${page.address().port}/`))
  let listening = 0
  let stopping = false
  function fork() {
    const worker = cluster.fork({ PORT: String(port) })
    worker.on('error', (err) => console.error(`worker ${worker.process.pid}: ${err.message}`))
    console.log(`worker ${worker.process.pid} started`)
  }
  cluster.on('listening', (worker, address) => {
    if (++listening === workers) console.log(`listening on http://127.0.0.1:${address.port}`)
  })
  cluster.on('exit', () => {
    if (!stopping) fork()
  })
  for (let i = 0; i < workers; i++) fork()
  function stop() {
    stopping = true
    page.closeAllConnections()
    page.close()
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM')
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

/** A worker: report to the primary (the one call of a worker), and serve the app. */
function runWorker({ port }) {
  reportToPrimary()
  ebt.onTransactionEnd((tx) => console.log(`worker ${process.pid}: ${tx.type.padEnd(10)} ${tx.name} ${tx.duration} ms`))
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
    runPrimary({ workers: Number(process.env.WORKERS ?? 2), port, dashboardPort: Number(process.env.DASHBOARD_PORT ?? 9465) })
  } else {
    runWorker({ port })
  }
}

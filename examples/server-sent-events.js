'use strict'
// Long-lived endpoints marked as background tasks, so they stay out of web response times and Apdex:
// a server-sent events stream (setBackgroundTask() at its start) and a slow CSV export (the
// req.newrelic.setBackgroundTask flag), next to an ordinary JSON API that stays web.
//
//   node examples/server-sent-events.js
//   curl http://127.0.0.1:3000/api/users/1     -> web        WebTransaction/Expressjs/GET//api/users/:id
//   curl -N http://127.0.0.1:3000/events       -> background OtherTransaction/Expressjs/GET//events (when you hang up)
//   curl http://127.0.0.1:3000/exports/orders  -> background OtherTransaction/Expressjs/GET//exports/:report
const express = require('express')
const { setTimeout: sleep } = require('node:timers/promises')
const ebt = require('express-background-task')

const USERS = new Map([
  [1, { id: 1, name: 'Ada Lovelace' }],
  [2, { id: 2, name: 'Grace Hopper' }],
  [3, { id: 3, name: 'Barbara Liskov' }]
])
const REPORTS = new Set(['orders', 'invoices'])

/** A database call that takes a few milliseconds. */
const query = () => sleep(2 + Math.random() * 8)

/**
 * Build the app.
 * @param {object} [options]
 * @param {object} [options.agent] - the package itself (its default agent), or one made by `createAgent()`.
 * @param {number} [options.eventIntervalMs] - time between two events of a stream.
 * @param {number} [options.exportPageMs] - time the export takes per page of rows.
 * @param {boolean} [options.markBackground] - `false` leaves the long endpoints as web, as they are
 *   without the package's flags (`npm start` runs both ways to show the difference).
 */
function createApp({ agent = ebt, eventIntervalMs = 1000, exportPageMs = 100, markBackground = true } = {}) {
  const app = express()
  app.use(agent.middleware()) // first: from here on every request is a web transaction

  // An ordinary JSON API: these stay web transactions, named by their route templates.
  const api = express.Router()
  api.get('/users', async (req, res) => {
    await query()
    res.json([...USERS.values()])
  })
  api.get('/users/:id', async (req, res) => {
    await query()
    const user = USERS.get(Number(req.params.id))
    if (user === undefined) return res.status(404).json({ error: 'no such user' })
    res.json(user)
  })
  api.post('/orders', express.json(), async (req, res) => {
    await query()
    res.status(201).json({ id: Math.floor(Math.random() * 1e6), items: req.body.items ?? [] })
  })
  app.use('/api', api)

  // Server-sent events: the response stays open for as long as the browser tab does. Counted as
  // web, every stream would be one "request" of minutes or hours and wreck the web averages.
  app.get('/events', (req, res) => {
    if (markBackground) ebt.setBackgroundTask() // at the start: the whole stream is recorded as OtherTransaction/...
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' })
    res.write('retry: 5000\n\n')
    let id = 0
    const timer = setInterval(() => {
      id += 1
      res.write(`id: ${id}\nevent: tick\ndata: ${JSON.stringify({ at: Date.now() })}\n\n`)
    }, eventIntervalMs)
    // The client hanging up ends the stream, and the transaction (its record says aborted: true).
    res.on('close', () => clearInterval(timer))
  })

  // A slow export streamed page by page, marked with the flag (the WSGI environ key's counterpart).
  app.get('/exports/:report', async (req, res) => {
    req.newrelic.setBackgroundTask = markBackground // true: the same effect as setBackgroundTask()
    if (!REPORTS.has(req.params.report)) return res.status(404).json({ error: 'no such report' })
    res.attachment(`${req.params.report}.csv`).type('text/csv')
    res.write('id,total\n')
    for (let page = 0; page < 10; page += 1) {
      await sleep(exportPageMs) // one page of a slow query
      if (res.destroyed) return // the client gave up; the transaction already ended as aborted
      res.write(`${page},${(page * 19.99).toFixed(2)}\n`)
    }
    res.end()
  })

  app.use(agent.errorHandler()) // after the routes: an error that reaches Express is noticed
  return app
}

module.exports = { createApp }

if (require.main === module) {
  ebt.onTransactionEnd((tx) => {
    const aborted = tx.aborted ? ' (client went away)' : ''
    console.log(`${tx.type.padEnd(10)} ${tx.name} ${tx.statusCode} ${tx.duration.toFixed(1)} ms${aborted}`)
  })
  const server = createApp().listen(Number(process.env.PORT || 3000), '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`)
  })
}

'use strict'
// The same on plain Connect. Connect has no routes, so a transaction is named by the mount path
// that answered, spelled as it was registered (whatever the URL's casing), never with raw ids:
// GET /api/users/7 is WebTransaction/Connect/GET//Api/users.
//
//   node examples/connect.js
//   curl http://127.0.0.1:3000/api/users/7   -> web        WebTransaction/Connect/GET//Api/users
//   curl -N http://127.0.0.1:3000/events     -> background OtherTransaction/Connect/GET//events
//   curl http://127.0.0.1:3000/export        -> background OtherTransaction/Connect/GET//export
const connect = require('connect')
const { setTimeout: sleep } = require('node:timers/promises')
const ebt = require('express-background-task')

function sendJson(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' })
  res.end(JSON.stringify(body))
}

/**
 * Build the app.
 * @param {object} [options]
 * @param {object} [options.agent] - the package itself (its default agent), or one made by `createAgent()`.
 * @param {number} [options.eventIntervalMs] - time between two events of a stream.
 */
function createApp({ agent = ebt, eventIntervalMs = 1000 } = {}) {
  const app = connect()
  app.use(agent.middleware()) // first

  app.use('/healthz', (req, res) => {
    req.newrelic.ignoreTransaction = true // not recorded at all
    res.end('ok')
  })

  app.use('/Api/users', async (req, res) => {
    await sleep(5) // a database call; req.url is now '/7?...', the part below the mount
    sendJson(res, 200, { id: req.url.split('?')[0].slice(1) })
  })

  // Server-sent events, marked as a background task at the start.
  app.use('/events', (req, res) => {
    ebt.setBackgroundTask()
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' })
    res.write('retry: 5000\n\n')
    const timer = setInterval(() => res.write(`data: ${Date.now()}\n\n`), eventIntervalMs)
    res.on('close', () => clearInterval(timer))
  })

  // A slow export, marked with the flag.
  app.use('/export', async (req, res) => {
    req.newrelic.setBackgroundTask = 'on' // parsed like the Python agent's environ values
    res.writeHead(200, { 'Content-Type': 'text/csv' })
    for (let page = 0; page < 5; page += 1) {
      await sleep(20)
      res.write(`${page},row\n`)
    }
    res.end()
  })
  return app
}

module.exports = { createApp }

if (require.main === module) {
  ebt.onTransactionEnd((tx) => console.log(`${tx.type.padEnd(10)} ${tx.name} ${tx.duration.toFixed(1)} ms`))
  const server = createApp().listen(Number(process.env.PORT || 3000), '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`)
  })
}

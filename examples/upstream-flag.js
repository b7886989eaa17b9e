'use strict'
// An upstream, proxy-facing layer decides what is a background task. The proxy tags requests with a
// header, e.g. in nginx:
//
//   location /reports/ { proxy_set_header X-Background-Task on; proxy_pass http://app; }
//
// and a middleware mounted *before* ours copies it to req.newrelic.setBackgroundTask, the
// counterpart of the WSGI environ key `newrelic.set_background_task`. Flags set before our
// middleware wait on req.newrelic and are applied when the transaction starts. Health checks set
// req.newrelic.ignoreTransaction and are not recorded at all.
//
//   node examples/upstream-flag.js
//   curl -H 'X-Background-Task: on' http://127.0.0.1:3000/reports/7  -> OtherTransaction/Expressjs/GET//reports/:id
//   curl http://127.0.0.1:3000/reports/7                             -> WebTransaction/Expressjs/GET//reports/:id
//   curl http://127.0.0.1:3000/healthz                               -> nothing recorded
const express = require('express')
const { setTimeout: sleep } = require('node:timers/promises')
const ebt = require('express-background-task')

const HEALTH_CHECKS = new Set(['/healthz', '/readyz'])

/**
 * Copy the proxy's decisions onto the request's flags. Values are parsed as New Relic's Python agent
 * parses environ values: 'on' 'true' '1' and 'off' 'false' '0', in any casing. Anything else
 * ('yes', '') changes nothing (and says so under DEBUG=express-background-task:*); it never throws.
 * Trust this header only from your own proxy: strip it at the edge so clients cannot set it.
 */
function proxyFlags(req, res, next) {
  const background = req.get('X-Background-Task')
  if (background !== undefined) req.newrelic.setBackgroundTask = background
  if (HEALTH_CHECKS.has(req.path)) req.newrelic.ignoreTransaction = true
  next()
}

/**
 * Build the app.
 * @param {object} [options]
 * @param {object} [options.agent] - the package itself (its default agent), or one made by `createAgent()`.
 */
function createApp({ agent = ebt } = {}) {
  const app = express()
  app.use(proxyFlags) // before ours, as a proxy-facing layer would be
  app.use(agent.middleware())

  app.get('/healthz', (req, res) => res.send('ok'))
  app.get('/readyz', (req, res) => res.send('ok'))
  app.get('/reports/:id', async (req, res) => {
    await sleep(20) // build the report
    res.json({ id: req.params.id, rows: 3 })
  })
  app.get('/api/items/:id', (req, res) => res.json({ id: req.params.id }))

  app.use(agent.errorHandler())
  return app
}

module.exports = { createApp, proxyFlags }

if (require.main === module) {
  ebt.onTransactionEnd((tx) => console.log(`${tx.type.padEnd(10)} ${tx.name} ${tx.duration.toFixed(1)} ms`))
  const server = createApp().listen(Number(process.env.PORT || 3000), '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`)
  })
}

'use strict'
// An app that already keeps a request id in its own cls-hooked namespace hands that namespace to the
// package: createAgent({ context: ns }). The transaction is then stored in the same namespace under
// the key 'transaction', so the app's existing code reads it with ns.get('transaction') — here its
// logger, which now tags every line with the request id *and* the transaction's name.
//
//   node examples/cls-hooked-interop.js
//   curl -H 'X-Request-Id: abc' http://127.0.0.1:3000/orders/42
//   curl -X POST http://127.0.0.1:3000/orders
//   curl http://127.0.0.1:3000/orders/42/invoice
const { randomUUID } = require('node:crypto')
const { setTimeout: sleep } = require('node:timers/promises')
const cls = require('cls-hooked')
const express = require('express')
const { createAgent } = require('express-background-task')

/** The app's own namespace, created long before it used this package. */
const ns = cls.createNamespace('my-app')

/** The app's logger, as it was, plus the transaction it now finds in the same namespace. */
function createLogger(write = console.log) {
  return function log(message) {
    write(`[${ns.get('requestId') ?? '-'}] ${ns.get('transaction')?.name ?? '-'}: ${message}`)
  }
}

/** The app's request-id middleware, as it was: one namespace context per request. */
function requestId(req, res, next) {
  ns.run(() => {
    ns.bindEmitter(req)
    ns.bindEmitter(res)
    ns.set('requestId', req.get('X-Request-Id') ?? randomUUID())
    next()
  })
}

/**
 * Build the app.
 * @param {object} [options]
 * @param {object} [options.agent] - an agent over the app's namespace; defaults to `createAgent({ context: ns })`.
 * @param {(line: string) => void} [options.write] - where the app's log lines go.
 */
function createApp({ agent = createAgent({ context: ns }), write = console.log } = {}) {
  const log = createLogger(write)
  const app = express()
  app.use(requestId)
  app.use(agent.middleware()) // its context inherits from the app's, so requestId stays visible

  app.get('/orders/:id', async (req, res) => {
    await sleep(5) // a database call: both values survive it
    log(`load order ${req.params.id}`)
    const tx = ns.get('transaction')
    res.json({ id: req.params.id, requestId: ns.get('requestId'), transaction: { id: tx.id, name: tx.name } })
  })

  // The handle from the namespace has the whole API: this slow render is reclassified through it.
  app.get('/orders/:id/invoice', async (req, res) => {
    ns.get('transaction').setBackgroundTask() // -> OtherTransaction/Expressjs/GET//orders/:id/invoice
    await sleep(50) // render the PDF
    log(`render invoice ${req.params.id}`)
    res.type('application/pdf').send(Buffer.from('%PDF-1.7\n'))
  })

  // A job started from a request is a transaction of its own, still tagged with the request id.
  app.post('/orders', (req, res) => {
    const id = String(Math.floor(Math.random() * 1e6))
    agent.backgroundTask('index-order', async () => {
      await sleep(5)
      log(`index order ${id}`) // [<request id>] OtherTransaction/Nodejs/index-order: index order ...
    })
    res.status(201).json({ id })
  })

  app.use(agent.errorHandler())
  return app
}

module.exports = { createApp, ns }

if (require.main === module) {
  const agent = createAgent({ context: ns })
  agent.onTransactionEnd((tx) => console.log(`${tx.type.padEnd(10)} ${tx.name} ${tx.duration.toFixed(1)} ms`))
  const server = createApp({ agent }).listen(Number(process.env.PORT || 3000), '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`)
  })
}

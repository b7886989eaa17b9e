'use strict'
// New Relic's own UI follows the classification: require the agent first, then bridge it. A request
// marked background (here a server-sent event stream) is recorded by the New Relic agent as
// OtherTransaction/Expressjs/GET//events, out of WebTransaction, HttpDispatcher and Apdex; a
// background task turned web is recorded as WebTransaction/Nodejs/render-preview, with Apdex.
//
//   NEW_RELIC_LICENSE_KEY=<your key> NEW_RELIC_APP_NAME=my-app node examples/newrelic-bridge.js
//   curl http://127.0.0.1:3000/api/items/7           -> WebTransaction/Expressjs/GET//api/items/:id
//   curl -N http://127.0.0.1:3000/events             -> OtherTransaction/Expressjs/GET//events
//   curl -X POST http://127.0.0.1:3000/previews/7    -> WebTransaction/Nodejs/render-preview (and the request, web)
//
// Without a licence key (or with the agent disabled) the bridge says why it is inactive and the app
// runs as before. It prints this package's records and, when the agent runs, the names the agent
// gives its own transactions (what New Relic will show).
const newrelic = require('newrelic') // first, before express, as New Relic requires
const { bridgeNewRelic } = require('express-background-task/newrelic')
const express = require('express')
const ebt = require('express-background-task')

const bridge = bridgeNewRelic()
console.log(bridge.active ? 'new relic bridge: active' : `new relic bridge: inactive (${bridge.reason})`)

const app = express()
app.use(ebt.middleware())

app.get('/api/items/:id', (req, res) => res.json({ id: req.params.id }))

// A stream stays open as long as the client does: keep it out of web response time and Apdex.
app.get('/events', (req, res) => {
  ebt.setBackgroundTask()
  res.set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' }).flushHeaders()
  let sent = 0
  const timer = setInterval(() => {
    res.write(`data: ${++sent}\n\n`)
    if (sent === 3) {
      clearInterval(timer)
      res.end()
    }
  }, 10)
  req.on('close', () => clearInterval(timer))
})

// A job a user waits for: run as a background task, then counted as web (with Apdex).
app.post('/previews/:id', async (req, res) => {
  const preview = await ebt.backgroundTask('render-preview', async () => {
    ebt.setBackgroundTask(false) // someone is waiting for this one
    await new Promise((resolve) => setTimeout(resolve, 5))
    return { id: req.params.id, pages: 2 }
  })
  res.status(201).json(preview)
})

ebt.onTransactionEnd((tx) => console.log(`${tx.type.padEnd(10)} ${tx.name}`))
// the agent's own names, as it will report them (newrelic.agent exists only when the agent runs)
newrelic.agent?.on('transactionFinished', (tx) => console.log(`new relic  ${tx.name}`))

const server = app.listen(Number(process.env.PORT || 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`)
})

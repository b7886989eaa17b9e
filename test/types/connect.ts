// Type test: a Connect app and a plain node:http server, where req is http.IncomingMessage.
import connect from 'connect'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import { createAgent, getTransaction, middleware, setBackgroundTask, type Middleware } from 'express-background-task'

const app = connect()
app.use(middleware())
app.use(createAgent({ context: 'cls-hooked' }).middleware())
app.use('/api', (req: IncomingMessage, res: ServerResponse, next: connect.NextFunction) => {
  // The `http` module augmentation: req.newrelic exists on every IncomingMessage.
  req.newrelic = { setBackgroundTask: 'on', suppressApdexMetric: false }
  if (req.newrelic.ignoreTransaction === undefined) req.newrelic.ignoreTransaction = '0'
  getTransaction(req)?.addAttribute('url', req.url)
  next()
})
app.use((req: IncomingMessage, res: ServerResponse) => {
  setBackgroundTask(false)
  res.end(getTransaction(req)?.type ?? 'none')
})

// No framework at all: the middleware is a plain (req, res, next) function.
const handle: Middleware = middleware()
http.createServer((req, res) => {
  req.newrelic = { ignoreTransaction: true }
  handle(req, res, (err?: unknown) => {
    res.statusCode = err === undefined ? 200 : 500
    res.end()
  })
})
export { app }

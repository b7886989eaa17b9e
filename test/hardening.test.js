'use strict'
// Issue 8 / PITFALLS 16–23: requests that end strangely, objects the app owns, hostile values, other copies.
// Real servers on 127.0.0.1 (HTTP/1, HTTP/2, TLS with allowHTTP1), real express-ws and multer.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const http = require('node:http')
const http2 = require('node:http2')
const { once } = require('node:events')
const { inspect } = require('node:util')
const { ebt, ENGINES, recordingAgent, listen, request, delay } = require('./helpers')
const { copyBuiltPackage } = require('./fixtures/package-copy')

const TLS = {
  key: fs.readFileSync(path.join(__dirname, 'fixtures', 'tls', 'key.pem')),
  cert: fs.readFileSync(path.join(__dirname, 'fixtures', 'tls', 'cert.pem'))
}

/** Listen with any server on 127.0.0.1; returns { port, close() }. */
async function listenOn(server) {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const sessions = new Set()
  server.on('session', (session) => {
    sessions.add(session)
    session.on('close', () => sessions.delete(session))
  })
  return {
    port: server.address().port,
    close: () => new Promise((resolve) => {
      for (const session of sessions) session.destroy()
      server.closeAllConnections?.()
      server.close(() => resolve())
    })
  }
}

/** One HTTP/2 request; resolves { status, body } or, with `reset`, resets the stream once `reset` resolves. */
function http2Get(origin, urlPath, { reset, connectOptions } = {}) {
  return new Promise((resolve, reject) => {
    const client = http2.connect(origin, connectOptions)
    client.on('error', () => {})
    const stream = client.request({ ':path': urlPath })
    let status
    let body = ''
    stream.setEncoding('utf8')
    stream.on('response', (headers) => { status = headers[':status'] })
    stream.on('data', (chunk) => { body += chunk })
    stream.on('error', () => {})
    stream.on('close', () => {
      client.close()
      resolve({ status, body })
    })
    if (reset !== undefined) reset.then(() => stream.close(http2.constants.NGHTTP2_CANCEL), reject)
  })
}

function deferred() {
  let resolve
  const promise = new Promise((r) => { resolve = r })
  return { promise, resolve }
}

for (const engine of ENGINES) {
  describe(`flags written before the middleware: the last valid write wins (${engine.name})`, () => {
    const express = require('express')
    const FLAGS = {
      setBackgroundTask: (record) => record.type === 'background',
      ignoreTransaction: (record) => record === undefined,
      suppressApdexMetric: (record) => record.suppressApdexMetric === true
    }
    const LATER = {
      "'yes'": (req, flag) => { req.newrelic[flag] = 'yes' },
      null: (req, flag) => { req.newrelic[flag] = null },
      'req.newrelic = {}': (req) => { req.newrelic = {} },
      'an object saying junk': (req, flag) => { req.newrelic = { [flag]: 'maybe' } }
    }
    for (const [flag, isOn] of Object.entries(FLAGS)) {
      for (const [label, later] of Object.entries(LATER)) {
        it(`${flag} = true, then ${label}, before the middleware: still on`, async () => {
          const { agent, records } = recordingAgent(engine.options())
          const app = express()
          app.use((req, res, next) => {
            req.newrelic[flag] = true
            later(req, flag)
            next()
          })
          app.use(agent.middleware())
          app.get('/t', (req, res) => res.end('ok'))
          app.get('/marker', (req, res) => res.end('marker'))
          const server = await listen(app)
          try {
            await request(server.url('/t'))
            await request(server.url('/marker'))
            await delay(5)
            const record = records.find((r) => r.path === '/t')
            assert.ok(isOn(record), inspect(record))
          } finally {
            await server.close()
          }
        })
      }
    }
  })

  describe(`HTTP/2 compatibility API (${engine.name})`, () => {
    const connect = require('connect')

    function connectApp(agent) {
      const app = connect()
      app.use(agent.middleware())
      app.use('/items', async (req, res) => {
        req.newrelic.suppressApdexMetric = 'on'
        await delay(2)
        res.end(`item ${ebt.getTransaction()?.id !== undefined}`)
      })
      app.use('/events', async (req, res) => {
        await delay(2)
        assert.equal(ebt.setBackgroundTask(), true)
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.write('data: one\n\n')
        setTimeout(() => res.end('data: two\n\n'), 5)
      })
      return app
    }

    it('Connect on http2.createServer: a transaction per stream, ended once, with flags, helper and names', async () => {
      const { agent, records, waitFor } = recordingAgent(engine.options())
      const server = await listenOn(http2.createServer(connectApp(agent)))
      try {
        const origin = `http://127.0.0.1:${server.port}`
        assert.deepEqual(await http2Get(origin, '/items/7'), { status: 200, body: 'item true' })
        const events = await http2Get(origin, '/events')
        assert.equal(events.body, 'data: one\n\ndata: two\n\n')
        await waitFor(2)
        await delay(10)
        assert.deepEqual(records.map((r) => [r.name, r.statusCode, r.aborted, r.suppressApdexMetric]), [
          ['WebTransaction/Connect/GET//items', 200, false, true],
          ['OtherTransaction/Connect/GET//events', 200, false, false]
        ])
      } finally {
        await server.close()
      }
    })

    it('a reset stream ends its transaction once, aborted, with no status', async () => {
      const { agent, records, waitFor } = recordingAgent(engine.options())
      const entered = deferred()
      const app = connect()
      app.use(agent.middleware())
      app.use('/hang', (req, res) => {
        // HTTP/2 emits finish then close for a reset stream; finish listeners still see the transaction
        res.on('finish', () => { entered.closed = ebt.getTransaction() !== undefined })
        entered.resolve() // never answers
      })
      const server = await listenOn(http2.createServer(app))
      try {
        await http2Get(`http://127.0.0.1:${server.port}`, '/hang', { reset: entered.promise })
        await waitFor(1)
        await delay(20)
        assert.equal(records.length, 1)
        assert.equal(records[0].aborted, true)
        assert.equal('statusCode' in records[0], false)
        assert.equal(records[0].name, 'WebTransaction/Connect/GET//hang')
        assert.equal(entered.closed, true, "the response's finish listener ran inside the transaction")
        assert.equal(agent.metrics().apdex.Apdex.frustrating, 1, 'a client gone before any response frustrates')
      } finally {
        await server.close()
      }
    })

    it('a plain handler, and allowHTTP1 serving both protocols from one TLS server', async () => {
      const { agent, records, waitFor } = recordingAgent(engine.options())
      const mw = agent.middleware()
      const handler = (req, res) => mw(req, res, () => {
        req.newrelic.setBackgroundTask = req.headers['x-background'] ?? 'off'
        res.end(`v${req.httpVersion}`)
      })
      const server = await listenOn(http2.createSecureServer({ ...TLS, allowHTTP1: true }, handler))
      try {
        const origin = `https://127.0.0.1:${server.port}`
        const h2 = await http2Get(origin, '/a', { connectOptions: { ca: TLS.cert } })
        assert.deepEqual(h2, { status: 200, body: 'v2.0' })
        const h1 = await new Promise((resolve, reject) => {
          const https = require('node:https')
          https.get(`${origin}/b`, { ca: TLS.cert, headers: { 'x-background': 'true' } }, (res) => {
            let body = ''
            res.on('data', (chunk) => { body += chunk })
            res.on('end', () => resolve(body))
          }).on('error', reject)
        })
        assert.equal(h1, 'v1.1')
        await waitFor(2)
        assert.deepEqual(records.map((r) => [r.type, r.statusCode, r.aborted]).sort(), [['background', 200, false], ['web', 200, false]])
      } finally {
        await server.close()
      }
    })
  })

  describe(`upgrade requests (express-ws) (${engine.name})`, () => {
    const express = require('express')
    const expressWs = require('express-ws')
    const WebSocket = require('ws')

    it('a websocket session is one background transaction, ended once when the socket closes; the app can make it web', async () => {
      const { agent, records, waitFor } = recordingAgent(engine.options())
      const app = express()
      const server = http.createServer(app)
      expressWs(app, server)
      app.use(agent.middleware())
      app.ws('/rooms/:room', (ws, req) => {
        const active = ebt.getTransaction() !== undefined
        ws.on('message', (message) => ws.send(`${req.params.room}: ${message} ${active}`))
      })
      app.ws('/page/:id', (ws, req) => {
        req.newrelic.setBackgroundTask = false // this app counts it as a page view
        ws.send('hello')
      })
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      const base = `ws://127.0.0.1:${server.address().port}`
      try {
        const ws = new WebSocket(`${base}/rooms/blue`)
        await once(ws, 'open')
        ws.send('hi')
        const [reply] = await once(ws, 'message')
        assert.equal(String(reply), 'blue: hi true')
        await delay(20)
        assert.equal(records.length, 0, 'the session is still open')
        ws.close()
        await once(ws, 'close')
        await waitFor(1)
        const page = new WebSocket(`${base}/page/3`)
        await once(page, 'message')
        page.terminate()
        await waitFor(2)
        await delay(20)
        assert.deepEqual(records.map((r) => [r.name, r.aborted]), [
          ['OtherTransaction/Expressjs/GET//rooms/:room/.websocket', false],
          ['WebTransaction/Expressjs/GET//page/:id/.websocket', false]
        ])
        assert.equal(records.length, 2, 'each session ended exactly once')
      } finally {
        server.closeAllConnections?.()
        await new Promise((resolve) => server.close(resolve))
      }
    })
  })

  describe(`a client gone mid-upload (multer) (${engine.name})`, () => {
    const express = require('express')
    const multer = require('multer')

    it('is aborted, though multer answered the dead socket', async () => {
      const { agent, records, waitFor } = recordingAgent(engine.options())
      const app = express()
      app.use(agent.middleware())
      const received = deferred()
      const answered = deferred()
      app.post('/upload', (req, res, next) => {
        req.once('data', () => received.resolve())
        next()
      }, multer({ storage: multer.memoryStorage() }).single('file'), (req, res) => res.end('stored'))
      app.use((err, req, res, next) => {
        res.statusCode = 400
        res.end(String(err.message))
        answered.resolve()
      })
      const server = await listen(app)
      try {
        const socket = net.connect(server.port, '127.0.0.1')
        await once(socket, 'connect')
        socket.on('error', () => {})
        const boundary = 'xxBOUNDARYxx'
        socket.write(
          'POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
          `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 100000\r\n\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n` +
          'Content-Type: application/octet-stream\r\n\r\n' + 'x'.repeat(1000)
        )
        await received.promise
        socket.destroy()
        await waitFor(1)
        await delay(20)
        assert.equal(records.length, 1)
        assert.equal(records[0].aborted, true)
        assert.equal(records[0].name, 'WebTransaction/Expressjs/POST//upload')
      } finally {
        await server.close()
      }
    })
  })
}

describe('prototype wrappers taken away', () => {
  const express = require('express')
  const { ServerResponse, IncomingMessage } = http

  async function oneRequest(agent) {
    const app = express()
    app.use(agent.middleware())
    app.get('/w', (req, res) => res.end('ok'))
    const server = await listen(app)
    try {
      await request(server.url('/w'))
      await delay(10)
    } finally {
      await server.close()
    }
  }

  it('a restored emit (a spy installed before the package, then restored) is put back by the next middleware()', async () => {
    const { agent, records } = recordingAgent()
    agent.middleware()
    const ours = Object.getOwnPropertyDescriptor(ServerResponse.prototype, 'emit')
    assert.ok(ours, 'the package wraps ServerResponse.prototype.emit')
    // what a spy's restore does when the spy came first: the plain inherited emit, our wrapper gone
    ServerResponse.prototype.emit = Object.getPrototypeOf(ServerResponse.prototype).emit
    try {
      await oneRequest(agent) // middleware() is called again here: it notices and wraps again
      assert.equal(records.length, 1)
      assert.equal(records[0].name, 'WebTransaction/Expressjs/GET//w')
    } finally {
      agent.middleware()
    }
  })

  it('a shimmer-style wrapper over ours is kept, and ours is not added twice', async () => {
    const { agent, records } = recordingAgent()
    agent.middleware()
    const ours = ServerResponse.prototype.emit
    let calls = 0
    function shimmed() {
      calls += 1
      return ours.apply(this, arguments)
    }
    Object.defineProperty(shimmed, '__original', { value: ours })
    ServerResponse.prototype.emit = shimmed
    try {
      await oneRequest(agent)
      assert.equal(ServerResponse.prototype.emit, shimmed, 'not wrapped again')
      assert.ok(calls > 0)
      assert.equal(records.length, 1)
    } finally {
      ServerResponse.prototype.emit = ours
    }
  })

  it('uninstall() takes every hook away, and the next middleware() puts them back', async () => {
    const { agent, records } = recordingAgent()
    const mw = agent.middleware()
    assert.equal(ebt.uninstall(), true)
    const inherited = (proto, key) => Object.getPrototypeOf(proto)[key]
    assert.equal(ServerResponse.prototype.emit, inherited(ServerResponse.prototype, 'emit'))
    assert.equal(IncomingMessage.prototype.emit, inherited(IncomingMessage.prototype, 'emit'))
    assert.equal(Object.hasOwn(IncomingMessage.prototype, 'newrelic'), false)
    assert.equal(ServerResponse.prototype.end, Object.getPrototypeOf(ServerResponse.prototype).end)
    // an app built on a middleware made before uninstall() still answers; it is simply not tracked
    const app = express()
    app.use((req, res, next) => mw(req, res, next))
    app.get('/w', (req, res) => res.end('ok'))
    const server = await listen(app)
    try {
      assert.equal((await request(server.url('/w'))).body, 'ok')
    } finally {
      await server.close()
    }
    await oneRequest(agent) // a new middleware(): hooked again
    assert.equal(records.filter((r) => r.path === '/w').length, 1)
    assert.equal(typeof Object.getOwnPropertyDescriptor(IncomingMessage.prototype, 'newrelic').get, 'function')
  })
})

describe('two versions of the package in one process (PITFALLS 23)', () => {
  const express = require('express')
  let copyDir
  let other

  before(() => {
    // A copy that speaks another protocol and whose internals differ (its transactions have no finish()).
    copyDir = copyBuiltPackage('ebt-version-')
    const carrier = path.join(copyDir, 'dist', 'carrier.js')
    const patched = fs.readFileSync(carrier, 'utf8').replace(/PROTOCOL = \d+/, 'PROTOCOL = 999')
    assert.match(patched, /PROTOCOL = 999/)
    fs.writeFileSync(carrier, patched)
    for (const file of fs.readdirSync(path.join(copyDir, 'dist')).filter((f) => f.endsWith('.js'))) {
      const full = path.join(copyDir, 'dist', file)
      fs.writeFileSync(full, fs.readFileSync(full, 'utf8').replace(/\bfinish\(/g, 'complete('))
    }
    other = require(copyDir)
  })
  after(() => fs.rmSync(copyDir, { recursive: true, force: true }))

  it('never crashes: each copy handles its own transactions', async () => {
    assert.notEqual(other, ebt)
    const ours = recordingAgent()
    const theirs = other.createAgent()
    const theirRecords = []
    theirs.onTransactionEnd((record) => theirRecords.push(record))
    const app = express()
    app.use(theirs.middleware())
    app.use(ours.agent.middleware())
    app.get('/both/:id', async (req, res) => {
      await delay(2)
      res.end(`${ebt.getTransaction() !== undefined} ${other.getTransaction() !== undefined}`)
    })
    const uncaught = []
    const onUncaught = (err) => uncaught.push(err)
    process.on('uncaughtException', onUncaught)
    const server = await listen(app)
    try {
      const bodies = await Promise.all([1, 2, 3].map((n) => request(server.url(`/both/${n}`))))
      assert.deepEqual(bodies.map((b) => b.body), ['true true', 'true true', 'true true'])
      await ours.waitFor(3)
      await delay(20)
      assert.equal(ours.records.length, 3)
      assert.equal(theirRecords.length, 3)
      assert.deepEqual(uncaught, [])
    } finally {
      process.off('uncaughtException', onUncaught)
      await server.close()
    }
  })
})

describe('hostile values (issue 8.9)', () => {
  const express = require('express')

  function revoked() {
    const { proxy, revoke } = Proxy.revocable({}, {})
    revoke()
    return proxy
  }

  it('a backgroundTask rejecting with a revoked proxy: the same value back, ended, no unhandled rejection', async () => {
    const { agent, records } = recordingAgent()
    const unhandled = []
    const onUnhandled = (reason) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      const value = revoked()
      let caught
      try {
        await agent.backgroundTask('hostile', async () => { throw value })
      } catch (err) {
        caught = err
      }
      assert.ok(caught === value, 'the very value')
      let thrown
      try {
        agent.backgroundTask('hostile-sync', () => { throw value })
      } catch (err) {
        thrown = err
      }
      assert.ok(thrown === value, 'the very value, thrown')
      await delay(10)
      assert.deepEqual(records.map((r) => [r.name, r.error instanceof Error]), [
        ['OtherTransaction/Nodejs/hostile', true],
        ['OtherTransaction/Nodejs/hostile-sync', true]
      ])
      assert.deepEqual(unhandled, [])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  it('errorHandler() passes a hostile error on unchanged', async () => {
    const { agent, records, waitFor } = recordingAgent()
    const value = revoked()
    const app = express()
    app.use(agent.middleware())
    app.get('/boom', () => { throw value })
    app.use(agent.errorHandler())
    app.use((err, req, res, next) => {
      res.statusCode = 500
      res.end(String(err === value))
    })
    const server = await listen(app)
    try {
      const response = await request(server.url('/boom'))
      assert.deepEqual([response.status, response.body], [500, 'true'])
      await waitFor(1)
      assert.ok(records[0].error instanceof Error)
    } finally {
      await server.close()
    }
  })

  it('option errors keep their code when the value cannot be inspected', () => {
    const uninspectable = { [inspect.custom]() { throw new Error('no') } }
    const cases = [
      [() => ebt.createAgent({ apdexT: uninspectable }), 'ERR_EBT_APDEX_T'],
      [() => ebt.createAgent({ context: uninspectable }), 'ERR_EBT_CONTEXT'],
      [() => ebt.createAgent(revoked()), 'ERR_EBT_OPTIONS_TYPE'],
      [() => ebt.createAgent({ context: revoked() }), 'ERR_EBT_CONTEXT'],
      [() => ebt.backgroundTask(uninspectable, () => {}), 'ERR_EBT_TASK_NAME'],
      [() => ebt.backgroundTask('x', uninspectable), 'ERR_EBT_TASK_FUNCTION'],
      [() => ebt.backgroundTask('x', () => {}, revoked()), 'ERR_EBT_OPTIONS_TYPE'],
      [() => ebt.onTransactionEnd(uninspectable), 'ERR_EBT_LISTENER'],
      [() => ebt.metrics({ reset: uninspectable }), 'ERR_EBT_OPTIONS_TYPE']
    ]
    for (const [call, code] of cases) {
      assert.throws(call, (err) => err instanceof TypeError && err.code === code, code)
    }
  })
})

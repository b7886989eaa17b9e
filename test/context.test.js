'use strict'
// Context propagation (SPEC "Everything the request chain does afterwards ... runs with that transaction
// active", PITFALLS 1-4, 6, 7): concurrency, pooled clients, body parsing and streams, EventEmitter
// semantics, duplicate installed copies, and the cls-hooked engine's own traps.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { EventEmitter } = require('node:events')
const { Transform, pipeline } = require('node:stream')
const { execFile } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const net = require('node:net')
const path = require('node:path')
const v8 = require('node:v8')
const vm = require('node:vm')
const fc = require('fast-check')
const { ebt, FRAMEWORKS, ENGINES, recordingAgent, listen, request, delay } = require('./helpers')

const FRAMEWORK_NAMES = Object.keys(FRAMEWORKS)
const PACKAGE_ROOT = path.join(__dirname, '..')
const { copyBuiltPackage } = require('./fixtures/package-copy')

/** A framework-neutral app: `route(path, ...fns)` is `app.METHOD` on Express and `app.use` per fn on Connect. */
function makeApp(frameworkName) {
  const framework = FRAMEWORKS[frameworkName]()
  const app = framework()
  const connect = frameworkName === 'connect'
  if (!connect) app.set('env', 'test')
  function route(method, routePath, ...fns) {
    if (!connect) return app[method](routePath, ...fns)
    for (const fn of fns) app.use(routePath, fn)
  }
  return { app, framework, group: connect ? 'Connect' : 'Expressjs', get: (...a) => route('get', ...a), post: (...a) => route('post', ...a) }
}

function deferred() {
  let resolve
  const promise = new Promise((r) => { resolve = r })
  return { promise, resolve }
}

/** Run `fn` over `items` with at most `limit` in flight. */
async function runBounded(items, limit, fn) {
  let next = 0
  async function worker() {
    while (next < items.length) {
      const i = next++
      await fn(items[i], i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

/** Send a POST over a raw socket: the headers and first part, a pause, then the rest (a later TCP packet). */
function postInTwoWrites(port, urlPath, parts, { pauseMs = 30, contentType = 'application/json' } = {}) {
  return new Promise((resolve, reject) => {
    const body = parts.join('')
    const socket = net.connect(port, '127.0.0.1')
    let raw = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk) => { raw += chunk })
    socket.on('error', reject)
    socket.on('end', () => {
      const split = raw.indexOf('\r\n\r\n')
      const head = raw.slice(0, split)
      let body = raw.slice(split + 4)
      if (/^transfer-encoding: chunked$/im.test(head)) body = decodeChunked(body)
      resolve({ status: Number(head.split(' ')[1]), body })
    })
    socket.write(
      `POST ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${contentType}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${parts[0]}`
    )
    setTimeout(() => socket.write(parts[1]), pauseMs)
  })
}

function decodeChunked(text) {
  let body = ''
  for (let at = 0; ;) {
    const lineEnd = text.indexOf('\r\n', at)
    const size = parseInt(text.slice(at, lineEnd), 16)
    if (!(size > 0)) return body
    body += text.slice(lineEnd + 2, lineEnd + 2 + size)
    at = lineEnd + 2 + size + 2
  }
}

/**
 * Calls made from the root async context, as a library with its own timer would make them: a request
 * that schedules work here gets it back with no request context at all.
 */
function outsideScheduler() {
  const queue = []
  const timer = setInterval(() => { for (const fn of queue.splice(0)) fn() }, 1)
  return { run: (fn) => queue.push(fn), stop: () => clearInterval(timer) }
}

// 1. Cross-talk under concurrency (PITFALLS 1) ------------------------------------------------------

const STEP = fc.oneof(
  fc.constant({ kind: 'await' }),
  fc.constant({ kind: 'nextTick' }),
  fc.constant({ kind: 'immediate' }),
  fc.record({ kind: fc.constant('timer'), ms: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ kind: fc.constant('emitter'), ms: fc.integer({ min: 0, max: 2 }) }),
  fc.constant({ kind: 'fs' })
)
const ACTION = fc.record({
  depth: fc.nat({ max: 6 }),
  flag: fc.boolean(),
  via: fc.constantFrom('helper', 'handle', 'flag', 'string')
})
// No action: stays web; one: background or explicitly web; two or three: back and forth.
const PLAN = fc.record({ steps: fc.array(STEP, { maxLength: 6 }), actions: fc.array(ACTION, { maxLength: 3 }) })

/** The type a plan ends with: its last action in execution order (by depth, then listed order). */
function expectedType(plan) {
  let last
  for (let depth = 0; depth <= plan.steps.length; depth++) {
    for (const action of plan.actions) if (Math.min(action.depth, plan.steps.length) === depth) last = action
  }
  return last?.flag ? 'background' : 'web'
}

/** Run one step of a plan; `then` runs inside the step's own callback (timer, tick, listener...). */
function runStep(step, then) {
  return new Promise((resolve) => {
    const done = () => { then(); resolve() }
    switch (step.kind) {
      case 'await': return Promise.resolve().then(done)
      case 'nextTick': return process.nextTick(done)
      case 'immediate': return setImmediate(done)
      case 'timer': return setTimeout(done, step.ms)
      case 'fs': return fs.stat(__filename, done)
      case 'emitter': {
        const emitter = new EventEmitter()
        emitter.once('ready', done)
        return setTimeout(() => emitter.emit('ready'), step.ms)
      }
    }
  })
}

/** Answers even when a broken context makes the plan throw, so no request is left hanging. */
function planHandler(req, res) {
  runPlan(req, res).catch((err) => {
    res.statusCode = 500
    res.end(String(err))
  })
}

async function runPlan(req, res) {
  const plan = JSON.parse(Buffer.from(req.headers['x-plan'], 'base64url').toString())
  const own = ebt.getTransaction(req)
  let mismatches = 0
  function act(depth) {
    const current = ebt.getTransaction()
    if (current !== own) mismatches += 1
    for (const action of plan.actions) {
      if (Math.min(action.depth, plan.steps.length) !== depth) continue
      const { flag, via } = action
      if (via === 'helper') mismatches += ebt.setBackgroundTask(flag) ? 0 : 1
      else if (via === 'string') mismatches += ebt.setBackgroundTask(flag ? 'On' : 'OFF') ? 0 : 1
      else if (via === 'handle') mismatches += current?.setBackgroundTask(flag) ? 0 : 1
      else req.newrelic.setBackgroundTask = flag
    }
  }
  act(0)
  for (const [i, step] of plan.steps.entries()) {
    await runStep(step, () => act(i + 1))
    if (ebt.getTransaction() !== own) mismatches += 1
  }
  // Through the context, not the request: a wrong transaction here puts the attributes on another record.
  ebt.getTransaction()?.addAttribute('rid', req.headers['x-rid'])
  ebt.getTransaction()?.addAttribute('expect', req.headers['x-expect'])
  res.end(String(mismatches))
}

for (const engine of ENGINES) {
  describe(`context (${engine.name})`, () => {
    for (const fw of FRAMEWORK_NAMES) {
      it(`${fw}: every record of hundreds of interleaved requests carries its own final classification`, async () => {
        const { agent, records, waitFor } = recordingAgent(engine.options())
        const { app, get } = makeApp(fw)
        app.use(agent.middleware())
        get('/plan', planHandler)
        const server = await listen(app)
        const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 50 })
        let rid = 0
        try {
          await fc.assert(
            fc.asyncProperty(fc.array(PLAN, { minLength: 100, maxLength: 200 }), async (plans) => {
              records.length = 0
              const sent = plans.map((plan) => ({ rid: String(++rid), expect: expectedType(plan), plan }))
              const responses = []
              await runBounded(sent, 50, async ({ rid, expect, plan }) => {
                const headers = { 'x-rid': rid, 'x-expect': expect, 'x-plan': Buffer.from(JSON.stringify(plan)).toString('base64url') }
                responses.push(await request(server.url('/plan'), { agent: keepAlive, headers }))
              })
              assert.ok(responses.every((r) => r.status === 200 && r.body === '0'), 'a handler saw another transaction')
              await waitFor(sent.length)
              assert.equal(records.length, sent.length)
              assert.equal(new Set(records.map((r) => r.attributes.rid)).size, sent.length)
              for (const record of records) {
                assert.equal(record.type, record.attributes.expect, `request ${record.attributes.rid}`)
              }
            }),
            // Shrinking hundreds of requests takes minutes; the failing run's plans are reported as they are.
            { numRuns: 3, endOnFailure: true }
          )
        } finally {
          keepAlive.destroy()
          await server.close()
        }
      })
    }

    // 2. Shared lazily-connected resources (PITFALLS 2) -----------------------------------------------

    describe('a pooled client that connects on first use', () => {
      /** A line-echo backend and a client that connects lazily and runs callbacks from its socket. */
      class FakePool extends EventEmitter {
        constructor(port) {
          super()
          this.port = port
          this.socket = undefined
          this.pending = []
          this.buffer = ''
        }
        query(text, callback) {
          this.pending.push(callback)
          if (this.socket === undefined) {
            // The socket, and every callback it runs later, belongs to whichever request came first.
            this.socket = net.connect(this.port, '127.0.0.1')
            this.socket.setEncoding('utf8')
            this.socket.on('data', (data) => this.onData(data))
          }
          this.socket.write(`${text}\n`)
        }
        onData(data) {
          this.buffer += data
          let newline
          while ((newline = this.buffer.indexOf('\n')) !== -1) {
            const line = this.buffer.slice(0, newline)
            this.buffer = this.buffer.slice(newline + 1)
            this.pending.shift()(null, line)
          }
        }
        end() {
          this.socket?.destroy()
        }
      }

      it('runs later callbacks in the first request context; getTransaction(req) and req.newrelic stay right', async () => {
        const backend = net.createServer((socket) => socket.pipe(socket))
        await new Promise((resolve) => backend.listen(0, '127.0.0.1', resolve))
        const pool = new FakePool(backend.address().port)
        const { agent, records, waitFor } = recordingAgent(engine.options())
        const { app, get } = makeApp('express 5')
        app.use(agent.middleware())
        const firstQueried = deferred()
        const secondDone = deferred()
        const seen = {}
        get('/first', (req, res) => {
          seen.first = ebt.getTransaction()
          seen.first.addAttribute('rid', 'first')
          pool.query('first', (err, row) => {
            seen.firstRow = row
            firstQueried.resolve()
            secondDone.promise.then(() => res.end('first'))
          })
        })
        get('/second', (req, res) => {
          seen.second = ebt.getTransaction()
          seen.second.addAttribute('rid', 'second')
          pool.query('second', (err, row) => {
            seen.secondRow = row
            seen.inSecondCallback = ebt.getTransaction() // the first request's: the wrong one
            seen.bySecondReq = ebt.getTransaction(req)
            req.newrelic.setBackgroundTask = true
            res.end('second')
            secondDone.resolve()
          })
        })
        get('/third', (req, res) => {
          seen.third = ebt.getTransaction()
          seen.third.addAttribute('rid', 'third')
          pool.query('third', (err, row) => {
            seen.inThirdCallback = ebt.getTransaction() // the first one has ended: none at all
            ebt.getTransaction(req).setBackgroundTask()
            res.end('third')
          })
        })
        const server = await listen(app)
        try {
          const first = request(server.url('/first'))
          await firstQueried.promise
          const second = await request(server.url('/second'))
          assert.equal((await first).body, 'first')
          assert.equal(second.body, 'second')
          assert.equal((await request(server.url('/third'))).body, 'third')
          await waitFor(3)
          assert.deepEqual([seen.firstRow, seen.secondRow], ['first', 'second'])
          assert.equal(seen.inSecondCallback, seen.first)
          assert.notEqual(seen.inSecondCallback, seen.second)
          assert.equal(seen.bySecondReq, seen.second)
          assert.equal(seen.inThirdCallback, undefined)
          const types = Object.fromEntries(records.map((r) => [r.attributes.rid, r.type]))
          assert.deepEqual(types, { first: 'web', second: 'background', third: 'background' })
        } finally {
          pool.end()
          backend.close()
          await server.close()
        }
      })
    })

    // 3. Body parsing and streams (PITFALLS 3) ---------------------------------------------------------

    for (const fw of FRAMEWORK_NAMES) {
      it(`${fw}: body parsing, data listeners, piped streams and finish listeners keep the transaction`, async () => {
        const { agent, records, waitFor } = recordingAgent(engine.options())
        const { app, post } = makeApp(fw)
        // A logging middleware mounted before this package; its finish listener is emitted with the
        // transaction active and still adds to it.
        app.use(function accessLog(req, res, next) {
          res.on('finish', () => ebt.getTransaction()?.addAttribute('loggedStatus', res.statusCode))
          next()
        })
        app.use(agent.middleware())
        // Express 5's JSON parser is a plain (req, res, next) middleware: Connect uses it too.
        const json = (fw === 'express 4' ? require('express4') : require('express')).json()
        post('/json', json, async (req, res) => {
          const tx = ebt.getTransaction()
          tx.addAttribute('rid', 'json')
          res.on('finish', () => ebt.getTransaction()?.addAttribute('finishSawIt', ebt.getTransaction() === tx))
          await delay(1)
          const same = tx !== undefined && tx === ebt.getTransaction(req) && ebt.getTransaction() === tx
          ebt.setBackgroundTask()
          res.setHeader('content-type', 'application/json')
          res.end(JSON.stringify({ same, body: req.body }))
        })
        post('/data', (req, res) => {
          const tx = ebt.getTransaction()
          tx.addAttribute('rid', 'data')
          const chunks = []
          req.on('data', (chunk) => chunks.push(ebt.getTransaction() === tx))
          req.on('end', () => res.end(JSON.stringify({ chunks, end: ebt.getTransaction() === tx })))
        })
        post('/pipe', (req, res) => {
          const tx = ebt.getTransaction()
          tx.addAttribute('rid', 'pipe')
          const sawIt = []
          const upper = new Transform({
            transform(chunk, encoding, callback) {
              sawIt.push(ebt.getTransaction() === tx)
              callback(null, chunk.toString().toUpperCase())
            },
            flush(callback) {
              callback(null, `|${sawIt.length >= 2 && sawIt.every(Boolean)}`)
            }
          })
          pipeline(req, upper, res, () => {})
        })
        const server = await listen(app)
        try {
          const parsed = await postInTwoWrites(server.port, '/json', ['{"hello":', '"world"}'])
          assert.equal(parsed.status, 200)
          assert.deepEqual(JSON.parse(parsed.body), { same: true, body: { hello: 'world' } })

          const data = await postInTwoWrites(server.port, '/data', ['first part,', 'second part'], { contentType: 'text/plain' })
          const { chunks, end } = JSON.parse(data.body)
          assert.ok(chunks.length >= 2, `the body came in ${chunks.length} chunk(s)`)
          assert.deepEqual([chunks.every(Boolean), end], [true, true])

          const piped = await postInTwoWrites(server.port, '/pipe', ['abc', 'def'], { contentType: 'text/plain' })
          assert.equal(piped.body, 'ABCDEF|true')

          await waitFor(3)
          const byRid = Object.fromEntries(records.map((r) => [r.attributes.rid, r]))
          assert.equal(records.length, 3)
          assert.equal(byRid.json.type, 'background')
          assert.equal(byRid.json.attributes.finishSawIt, true)
          for (const rid of ['json', 'data', 'pipe']) assert.equal(byRid[rid].attributes.loggedStatus, 200, rid)
        } finally {
          await server.close()
        }
      })
    }

    // 4. EventEmitter semantics on req and res (PITFALLS 4) --------------------------------------------

    /** A fixed sequence of EventEmitter operations; returns what an observer would see. */
    function exerciseEmitter(emitter) {
      const event = 'ebt-custom'
      const log = []
      function selfRemoving(arg) {
        log.push(`self:${arg}`)
        emitter.removeListener(event, selfRemoving)
      }
      function after(arg) { log.push(`after:${arg}`) }
      function onceOnly(arg) { log.push(`once:${arg}`) }
      const label = (fn) => (fn === selfRemoving ? 'self' : fn === after ? 'after' : fn === onceOnly ? 'once' : fn.listener === onceOnly ? 'wrapped once' : 'other')
      emitter.on(event, selfRemoving)
      emitter.on(event, after)
      emitter.once(event, onceOnly)
      log.push(['count', emitter.listenerCount(event)])
      log.push(['listeners', emitter.listeners(event).map(label)])
      log.push(['raw', emitter.rawListeners(event).map(label)])
      log.push(['emit 1', emitter.emit(event, 1)])
      log.push(['count', emitter.listenerCount(event)])
      log.push(['emit 2', emitter.emit(event, 2)])
      emitter.once(event, onceOnly)
      emitter.removeListener(event, onceOnly) // a once listener removed by its own function
      log.push(['emit 3', emitter.emit(event, 3)])
      emitter.prependListener(event, function first() { log.push('first') })
      emitter.prependOnceListener(event, onceOnly)
      log.push(['emit 4', emitter.emit(event, 4)])
      log.push(['emit 5', emitter.emit(event, 5)])
      log.push(['names', emitter.eventNames().includes(event)])
      emitter.removeAllListeners(event)
      log.push(['count', emitter.listenerCount(event)])
      log.push(['emit 6', emitter.emit(event, 6)])
      log.push(['names', emitter.eventNames().includes(event)])
      // Listeners of the stream events are the app's own functions, not wrappers.
      function onData() {}
      emitter.once('data', onData)
      log.push(['data raw', emitter.rawListeners('data').map((fn) => fn.listener === onData)])
      emitter.off('data', onData)
      log.push(['data count', emitter.listenerCount('data')])
      const failure = new Error('listener error')
      emitter.once('error', (err) => log.push(`error:${err === failure}`))
      log.push(['emit error', emitter.emit('error', failure)])
      // The package adds no listener of its own, not even to end the transaction.
      log.push(['lifecycle counts', ['finish', 'close', 'end', 'data'].map((name) => emitter.listenerCount(name))])
      return log
    }

    for (const fw of FRAMEWORK_NAMES) {
      it(`${fw}: req and res behave as EventEmitters exactly as without the middleware`, async () => {
        const { agent, records, waitFor } = recordingAgent(engine.options())
        const outside = outsideScheduler()
        const results = {}
        function handler(req, res) {
          const mode = req.headers['x-mode']
          results[mode] = { req: exerciseEmitter(req), res: exerciseEmitter(res) }
          const tx = ebt.getTransaction()
          // Emitted from the root context: the listener still runs in the request's transaction.
          req.on('ebt-outside', () => {
            results[mode].outside = tx === undefined ? 'no transaction' : ebt.getTransaction() === tx
            res.end('ok')
          })
          outside.run(() => req.emit('ebt-outside'))
        }
        const withIt = makeApp(fw)
        withIt.app.use(agent.middleware())
        withIt.get('/e', handler)
        const without = makeApp(fw)
        without.get('/e', handler)
        const serverWith = await listen(withIt.app)
        const serverWithout = await listen(without.app)
        try {
          await request(serverWith.url('/e'), { headers: { 'x-mode': 'with' } })
          await request(serverWithout.url('/e'), { headers: { 'x-mode': 'without' } })
          await waitFor(1)
          assert.equal(results.with.outside, true)
          assert.equal(results.without.outside, 'no transaction')
          assert.deepEqual(results.with.req, results.without.req)
          assert.deepEqual(results.with.res, results.without.res)
          // Spot checks, so the comparison above cannot pass by both sides being wrong.
          assert.deepEqual(results.with.req.slice(0, 5), [
            ['count', 3],
            ['listeners', ['self', 'after', 'once']],
            ['raw', ['self', 'after', 'wrapped once']],
            'self:1',
            'after:1'
          ])
          assert.equal(records.length, 1)
        } finally {
          outside.stop()
          await serverWith.close()
          await serverWithout.close()
        }
      })
    }

    // 6. Duplicate installed copies (PITFALLS 6) -------------------------------------------------------

    describe('two installed copies of the package', () => {
      let copyDir
      let copy
      before(() => {
        // A second copy of the built package, its dependencies resolved through a symlink, as a
        // dependency that bundles its own copy would have it.
        copyDir = copyBuiltPackage('ebt-copy-')
        copy = require(copyDir)
      })
      after(() => fs.rmSync(copyDir, { recursive: true, force: true }))

      it('is a separate module instance', () => {
        assert.notEqual(copy, ebt)
        assert.notEqual(copy.setBackgroundTask, ebt.setBackgroundTask)
      })

      for (const [started, other] of [['A', 'B'], ['B', 'A']]) {
        it(`sees and reclassifies a transaction started by copy ${started} with copy ${other}'s helpers`, async () => {
          const copies = { A: ebt, B: copy }
          const starter = copies[started]
          const helper = copies[other]
          const agent = starter.createAgent(engine.options())
          const records = []
          agent.onTransactionEnd((record) => records.push(record))
          const { app, get } = makeApp('express 5')
          app.use(agent.middleware())
          const seen = {}
          get('/copy', async (req, res) => {
            await delay(1)
            const tx = starter.getTransaction()
            seen.started = tx !== undefined
            seen.active = helper.getTransaction() === tx
            seen.byReq = helper.getTransaction(req) === tx
            seen.applied = helper.setBackgroundTask()
            // The other copy's background task is visible to the starter's helper, then the request is back.
            seen.inTask = await helper.backgroundTask('nested', async () => {
              await delay(1)
              const inner = starter.getTransaction()
              return inner !== undefined && inner !== tx && inner.type === 'background'
            })
            seen.after = starter.getTransaction() === tx
            res.end('ok')
          })
          const server = await listen(app)
          try {
            await request(server.url('/copy'))
            await delay(20)
            assert.deepEqual(seen, { started: true, active: true, byReq: true, applied: true, inTask: true, after: true })
            assert.equal(records.length, 1)
            assert.equal(records[0].type, 'background')
            assert.equal(records[0].name, 'OtherTransaction/Expressjs/GET//copy')
          } finally {
            await server.close()
          }
        })
      }

      it('counts a request once when both copies mount their middleware', async () => {
        const first = recordingAgent(engine.options())
        const second = copy.createAgent(engine.options())
        const secondRecords = []
        second.onTransactionEnd((record) => secondRecords.push(record))
        const { app, get } = makeApp('express 5')
        app.use(first.agent.middleware(), second.middleware())
        get('/both', (req, res) => {
          req.newrelic.setBackgroundTask = true
          res.end(String(copy.getTransaction() === ebt.getTransaction(req)))
        })
        const server = await listen(app)
        try {
          assert.equal((await request(server.url('/both'))).body, 'true')
          await first.waitFor(1)
          await delay(20)
          assert.deepEqual(first.records.map((r) => r.type), ['background'])
          assert.equal(secondRecords.length, 0)
        } finally {
          await server.close()
        }
      })
    })
  })
}

describe('event binding', () => {
  it('adds no own emit to requests and responses; an emit another library set on one still runs in the transaction', async () => {
    const { agent, waitFor } = recordingAgent()
    const express = FRAMEWORKS['express 5']()
    const app = express()
    const seen = {}
    app.use((req, res, next) => {
      // a library that wraps the response's emit itself, before the package runs
      const inherited = res.emit
      res.emit = function loggingEmit(event, ...args) {
        if (event === 'finish') seen.libraryFinish = ebt.getTransaction() !== undefined
        return inherited.call(this, event, ...args)
      }
      next()
    })
    app.use(agent.middleware())
    app.post('/upload', (req, res) => {
      seen.ownEmit = [Object.hasOwn(req, 'emit'), Object.hasOwn(res, 'emit')]
      let bytes = 0
      req.on('data', (chunk) => {
        bytes += chunk.length
        seen.data = ebt.getTransaction() !== undefined
      })
      req.on('end', () => res.end(String(bytes)))
    })
    const server = await listen(app)
    try {
      const response = await request(server.url('/upload'), { method: 'POST', body: 'x'.repeat(1000) })
      assert.equal(response.body, '1000')
      await waitFor(1)
    } finally {
      await server.close()
    }
    assert.deepEqual(seen, { ownEmit: [false, true], data: true, libraryFinish: true })
  })

  it('leaves objects without a transaction alone: a client response inside a request emits as before', async () => {
    const upstream = await listen((req, res) => res.end('upstream'))
    const { agent, records, waitFor } = recordingAgent()
    const express = FRAMEWORKS['express 5']()
    const app = express()
    app.use(agent.middleware())
    app.get('/proxy', (req, res) => {
      http.get(upstream.url('/'), (clientRes) => {
        let body = ''
        clientRes.on('data', (chunk) => { body += chunk })
        clientRes.on('end', () => {
          // the client response has no transaction of its own; the request's context still flows to it
          res.end(`${body} ${clientRes[Symbol.for('express-background-task.request-transaction')] === undefined}`)
        })
      })
    })
    const server = await listen(app)
    try {
      assert.equal((await request(server.url('/proxy'))).body, 'upstream true')
      await waitFor(1)
    } finally {
      await server.close()
      await upstream.close()
    }
    assert.equal(records[0].name, 'WebTransaction/Expressjs/GET//proxy')
  })
})

// 7. cls-hooked specifics (PITFALLS 7) ----------------------------------------------------------------

describe('cls-hooked engine', () => {
  const cls = require('cls-hooked')
  let namespaceCount = 0
  /** Both ways to use cls-hooked: the package's own namespace, and a namespace the app already uses. */
  function configs() {
    const appNamespace = cls.createNamespace(`ebt-test-app-${++namespaceCount}`)
    return [
      { name: "context: 'cls-hooked'", options: { context: 'cls-hooked' }, appNamespace, shared: false },
      { name: 'context: app namespace', options: { context: appNamespace }, appNamespace, shared: true }
    ]
  }

  for (const config of configs()) {
    describe(config.name, () => {
      const ns = config.appNamespace

      it("keeps the app's own keys in its namespace visible inside the request", async () => {
        const { agent, records, waitFor } = recordingAgent(config.options)
        const { app, get } = makeApp('express 5')
        app.use(function appContext(req, res, next) {
          ns.bindEmitter(req)
          ns.bindEmitter(res)
          ns.run(() => {
            ns.set('requestId', req.headers['x-request-id'])
            next()
          })
        })
        app.use(agent.middleware())
        get('/keys', async (req, res) => {
          const tx = ebt.getTransaction()
          ns.set('user', `user-of-${req.headers['x-request-id']}`)
          await delay(Number(req.headers['x-wait']))
          await new Promise((resolve) => setImmediate(resolve))
          tx.addAttribute('rid', req.headers['x-request-id'])
          res.end(JSON.stringify({
            requestId: ns.get('requestId'),
            user: ns.get('user'),
            transaction: config.shared ? ns.get('transaction') === tx : ns.get('transaction') === undefined,
            own: tx !== undefined && ebt.getTransaction() === tx && ebt.getTransaction(req) === tx
          }))
        })
        const server = await listen(app)
        try {
          const ids = Array.from({ length: 20 }, (_, i) => `r${i}`)
          const responses = await Promise.all(
            ids.map((id, i) => request(server.url('/keys'), { headers: { 'x-request-id': id, 'x-wait': String(i % 4) } }))
          )
          for (const [i, response] of responses.entries()) {
            assert.deepEqual(JSON.parse(response.body), { requestId: ids[i], user: `user-of-${ids[i]}`, transaction: true, own: true })
          }
          await waitFor(ids.length)
          assert.deepEqual(records.map((r) => r.attributes.rid).sort(), [...ids].sort())
        } finally {
          await server.close()
        }
      })

      it('returns what the function returns, not a context', () => {
        const { agent } = recordingAgent(config.options)
        const value = { answer: 42 }
        class CustomPromise extends Promise {}
        const custom = CustomPromise.resolve(1)
        assert.equal(agent.backgroundTask('value', () => value), value)
        assert.equal(agent.backgroundTask('custom', () => custom), custom)
        assert.equal(agent.backgroundTask('undefined', () => undefined), undefined)
        ns.run(() => assert.equal(agent.backgroundTask('inside', () => value), value))
      })

      it('passes thrown errors through untouched: no error@context key, strings stay strings', async () => {
        const { agent, records, waitFor } = recordingAgent(config.options)
        const failure = new Error('task failed')
        assert.throws(() => agent.backgroundTask('throws', () => { throw failure }), (err) => err === failure)
        assert.deepEqual(Object.keys(failure), [])
        assert.equal(Object.prototype.hasOwnProperty.call(failure, 'error@context'), false)
        assert.throws(() => agent.backgroundTask('string', () => { throw 'str' }), (err) => err === 'str')
        await assert.rejects(agent.backgroundTask('async string', async () => { throw 'async str' }), (err) => err === 'async str')
        // Nested in another task, the inner context is entered and left on the way out.
        assert.throws(
          () => agent.backgroundTask('outer', () => agent.backgroundTask('inner', () => { throw failure })),
          (err) => err === failure
        )
        assert.deepEqual(Object.keys(failure), [])
        const recorded = await waitFor(5)
        assert.equal(recorded.find((r) => r.name === 'OtherTransaction/Nodejs/throws').error, failure)
        assert.equal(records.length, 5)
      })

      it('passes a route error to the error handler untouched', async () => {
        const { agent, waitFor } = recordingAgent(config.options)
        const { app, get } = makeApp('express 5')
        app.use(agent.middleware())
        const failure = new Error('route failed')
        get('/boom', () => { throw failure })
        app.use(agent.errorHandler())
        let received
        app.use((err, req, res, next) => {
          received = err
          res.statusCode = 500
          res.end()
        })
        const server = await listen(app)
        try {
          assert.equal((await request(server.url('/boom'))).status, 500)
          const [record] = await waitFor(1)
          assert.equal(received, failure)
          assert.equal(record.error, failure)
          assert.deepEqual(Object.keys(failure), [])
        } finally {
          await server.close()
        }
      })

      it('leaves the outer context unchanged after a task that returns a promise (no runPromise leak)', async () => {
        const { agent } = recordingAgent(config.options)
        const outerContext = ns.active
        const pending = agent.backgroundTask('async', async () => {
          await delay(1)
          return ebt.getTransaction()?.type
        })
        assert.equal(ns.active, outerContext)
        assert.equal(ebt.getTransaction(), undefined)
        assert.equal(await pending, 'background')
        assert.equal(ns.active, outerContext)
        assert.equal(ebt.getTransaction(), undefined)
        await assert.rejects(agent.backgroundTask('rejects', async () => { throw new Error('no') }))
        assert.equal(ns.active, outerContext)
        assert.equal(ebt.getTransaction(), undefined)

        // Inside a request: the request's transaction is active again, synchronously and after await.
        const { app, get } = makeApp('express 5')
        app.use(agent.middleware())
        get('/nested', async (req, res) => {
          const own = ebt.getTransaction()
          const task = agent.backgroundTask('in request', async () => {
            await delay(1)
            return ebt.getTransaction() !== own
          })
          const sync = ebt.getTransaction() === own
          const separate = await task
          res.end(JSON.stringify([sync, separate, ebt.getTransaction() === own]))
        })
        const server = await listen(app)
        try {
          assert.deepEqual(JSON.parse((await request(server.url('/nested'))).body), [true, true, true])
        } finally {
          await server.close()
        }
      })
    })
  }

  it('keeps working when a second copy of cls-hooked is loaded later', async () => {
    const [own, shared] = configs()
    const ownAgent = recordingAgent(own.options)
    const sharedAgent = recordingAgent(shared.options)
    const clsDir = path.dirname(require.resolve('cls-hooked')) + path.sep
    const saved = Object.keys(require.cache).filter((key) => key.startsWith(clsDir))
    const savedModules = saved.map((key) => [key, require.cache[key]])
    for (const key of saved) delete require.cache[key]
    const namespacesBefore = process.namespaces
    try {
      const second = require('cls-hooked')
      assert.notEqual(second, cls) // a real second copy, which reset process.namespaces
      assert.notEqual(process.namespaces, namespacesBefore)
      for (const { agent, records, waitFor } of [ownAgent, sharedAgent]) {
        const { app, get } = makeApp('express 5')
        app.use(agent.middleware())
        get('/after-copy', async (req, res) => {
          await delay(1)
          res.end(String(ebt.getTransaction() !== undefined && ebt.getTransaction() === ebt.getTransaction(req) && ebt.setBackgroundTask()))
        })
        const server = await listen(app)
        try {
          assert.equal((await request(server.url('/after-copy'))).body, 'true')
          await waitFor(1)
          assert.equal(records[0].type, 'background')
          assert.equal(shared.appNamespace.get('transaction'), undefined) // nothing left active outside
        } finally {
          await server.close()
        }
      }
    } finally {
      for (const key of Object.keys(require.cache)) if (key.startsWith(clsDir)) delete require.cache[key]
      for (const [key, module] of savedModules) require.cache[key] = module
      process.namespaces = Object.assign(namespacesBefore, process.namespaces)
    }
  })

  it("does not hide the app's namespace when it loads its own copy of cls-hooked", async () => {
    const fixture = path.join(__dirname, 'fixtures', 'context-cls-copy.js')
    const stdout = await new Promise((resolve, reject) => {
      execFile(process.execPath, [fixture], { cwd: PACKAGE_ROOT, timeout: 10000 }, (err, out) => (err ? reject(err) : resolve(out)))
    })
    assert.deepEqual(JSON.parse(stdout), {
      secondCopyLoaded: true,
      appNamespaceFound: true,
      response: { requestId: 'r-1', transaction: true, background: true },
      records: [{ type: 'background', name: 'OtherTransaction/Expressjs/GET//work' }]
    })
  })

  it('frees request and task contexts: the heap does not grow with the number of transactions', async () => {
    v8.setFlagsFromString('--expose-gc')
    const gc = vm.runInNewContext('gc')
    const REQUESTS = 2000
    const TASKS = 5000
    for (const config of configs()) {
      const { agent } = recordingAgent(config.options)
      let ended = 0
      agent.onTransactionEnd(() => { ended += 1 })
      const { app, get } = makeApp('express 5')
      app.use(agent.middleware())
      get('/mem', async (req, res) => {
        // Something sizeable reachable from the request, so leaked requests would show in the heap.
        req.payload = new Array(2000).fill(ended)
        await new Promise((resolve) => setImmediate(resolve))
        const length = await agent.backgroundTask('per request', async () => {
          await null
          return req.payload.length
        })
        res.end(String(length))
      })
      const server = await listen(app)
      const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 50 })
      async function settleHeap() {
        for (let i = 0; i < 4; i++) {
          gc()
          await new Promise((resolve) => setTimeout(resolve, 5)) // promise destroy hooks run after GC
        }
        return process.memoryUsage().heapUsed
      }
      async function load(requests, tasks) {
        await runBounded(Array.from({ length: requests }), 50, () => request(server.url('/mem'), { agent: keepAlive }))
        for (let i = 0; i < tasks; i++) {
          await agent.backgroundTask('task', async () => {
            const payload = new Array(100).fill(i)
            await Promise.resolve()
            return payload.length
          })
        }
      }
      try {
        await load(200, 200) // warm up: JIT, sockets, caches
        const baseline = await settleHeap()
        const endedBefore = ended
        await load(REQUESTS, TASKS)
        const grown = (await settleHeap()) - baseline
        assert.equal(ended - endedBefore, REQUESTS * 2 + TASKS)
        assert.ok(grown < 20e6, `${config.name}: heap grew by ${(grown / 1e6).toFixed(1)} MB`)
        // cls-hooked's own map of live contexts (#66) is back to a handful, not one per transaction.
        if (config.shared) assert.ok(config.appNamespace._contexts.size < 1000, `${config.appNamespace._contexts.size} contexts kept`)
      } finally {
        keepAlive.destroy()
        await server.close()
      }
    }
  })
})

'use strict'
// Request lifecycle (SPEC "Web transactions", PITFALLS 5, 8, 9, 10): one transaction per request,
// ended exactly once on finish or close, across errors, keep-alive, double mounts and long responses.
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { performance } = require('node:perf_hooks')
const { Readable, pipeline } = require('node:stream')
const { ebt, FRAMEWORKS, ENGINES, recordingAgent, listen, request, delay } = require('./helpers')

const FRAMEWORK_NAMES = Object.keys(FRAMEWORKS)

/** A framework-neutral app: `route(path, fn)` is `app.get` on Express and `app.use` on Connect. */
function makeApp(frameworkName) {
  const framework = FRAMEWORKS[frameworkName]()
  const app = framework()
  const connect = frameworkName === 'connect'
  if (!connect) app.set('env', 'test')
  return {
    app,
    framework,
    group: connect ? 'Connect' : 'Expressjs',
    route: (path, fn) => (connect ? app.use(path, fn) : app.get(path, fn)),
    // The app's own last error handler, so nothing falls through to finalhandler's logging.
    finalErrorHandler: () =>
      app.use(function appErrors(err, req, res, next) {
        res.statusCode = 500
        res.end('error')
      })
  }
}

function deferred() {
  let resolve
  const promise = new Promise((r) => { resolve = r })
  return { promise, resolve }
}

/** Let pending `close` events and late emits happen before counting records. */
const settle = () => delay(20)

/** Count records per `rid` attribute. */
function countByRid(records) {
  const counts = {}
  for (const record of records) {
    const rid = record.attributes.rid
    counts[rid] = (counts[rid] ?? 0) + 1
  }
  return counts
}

/** GET that destroys its socket once `when` resolves (or after the first body chunk); resolves when gone. */
function abortingGet(url, when) {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      if (when === undefined) res.once('data', () => req.destroy())
    })
    req.on('error', () => {})
    req.on('close', resolve)
    if (when !== undefined) when.then(() => req.destroy())
  })
}

for (const engine of ENGINES) {
  describe(`lifecycle (${engine.name})`, () => {
    for (const fw of FRAMEWORK_NAMES) {
      describe(fw, () => {
        it('starts one transaction per request and ends it once on finish, with start, duration and status', async () => {
          const { agent, records, waitFor } = recordingAgent(engine.options())
          const { app, route, group } = makeApp(fw)
          app.use(agent.middleware())
          route('/status', async (req, res) => {
            ebt.getTransaction(req).addAttribute('rid', req.headers['x-rid'])
            await delay(2)
            res.statusCode = Number(req.headers['x-status'])
            res.end('ok')
          })
          const server = await listen(app)
          try {
            const statuses = [200, 201, 202, 204, 302, 404, 418, 500, 503, 200]
            const before = Date.now()
            const responses = await Promise.all(
              statuses.map((status, i) => request(server.url('/status?i=' + i), { headers: { 'x-rid': String(i), 'x-status': String(status) } }))
            )
            const after = Date.now()
            assert.deepEqual(responses.map((r) => r.status), statuses)
            await waitFor(statuses.length)
            await settle()
            assert.equal(records.length, statuses.length)
            assert.deepEqual(countByRid(records), Object.fromEntries(statuses.map((_, i) => [String(i), 1])))
            for (const record of records) {
              const i = Number(record.attributes.rid)
              assert.equal(record.statusCode, statuses[i])
              assert.equal(record.type, 'web')
              assert.equal(record.name, `WebTransaction/${group}/GET//status`)
              assert.equal(record.method, 'GET')
              assert.equal(record.aborted, false)
              assert.equal(record.error, undefined)
              assert.ok(record.duration > 0, `duration ${record.duration}`)
              // Epoch milliseconds on the wall clock, not a monotonic reading.
              assert.ok(record.startTime >= before - 100 && record.startTime <= after + 100, `startTime ${record.startTime} not in [${before}, ${after}]`)
              assert.ok(Object.isFrozen(record))
            }
            assert.equal(new Set(records.map((r) => r.id)).size, statuses.length)
          } finally {
            await server.close()
          }
        })

        it('ends an aborted response once on close, with aborted: true and the status sent, if any (finish never came)', async () => {
          const { agent, records, waitFor } = recordingAgent(engine.options())
          const { app, route, group } = makeApp(fw)
          app.use(agent.middleware())
          const finished = []
          const waiting = deferred()
          route('/partial', (req, res) => {
            ebt.getTransaction().addAttribute('rid', 'partial')
            res.on('finish', () => finished.push('partial'))
            res.statusCode = 202
            res.write('first chunk') // and never ends
          })
          route('/wait', (req, res) => {
            ebt.getTransaction().addAttribute('rid', 'wait')
            res.on('finish', () => finished.push('wait'))
            waiting.resolve() // never answers
          })
          const server = await listen(app)
          try {
            await abortingGet(server.url('/partial'))
            await abortingGet(server.url('/wait'), waiting.promise)
            await waitFor(2)
            await settle()
            assert.equal(records.length, 2)
            assert.deepEqual(countByRid(records), { partial: 1, wait: 1 })
            const partial = records.find((r) => r.attributes.rid === 'partial')
            const wait = records.find((r) => r.attributes.rid === 'wait')
            assert.equal(partial.aborted, true)
            assert.equal(partial.statusCode, 202)
            assert.equal(partial.name, `WebTransaction/${group}/GET//partial`)
            assert.equal(wait.aborted, true)
            assert.equal('statusCode' in wait, false) // nothing was sent (res.statusCode would read 200)
            assert.ok(partial.duration > 0 && wait.duration > 0)
            assert.deepEqual(finished, [])
          } finally {
            await server.close()
          }
        })

        for (const kind of ['sync throw', 'next(err)', 'rejected async handler']) {
          it(`ends a request whose handler fails by ${kind} once; errorHandler() records the error`, async () => {
            // Express 4 and Connect ignore a handler's returned promise: the request never answers.
            const forwardsRejections = fw === 'express 5'
            const hangs = kind === 'rejected async handler' && !forwardsRejections
            for (const withErrorHandler of [true, false]) {
              const { agent, records, waitFor } = recordingAgent(engine.options())
              const { app, route, group } = makeApp(fw)
              app.use(agent.middleware())
              const thrown = new Error(`boom by ${kind}`)
              const rejected = deferred()
              route('/fail', (req, res, next) => {
                ebt.getTransaction().addAttribute('rid', 'fail')
                if (kind === 'sync throw') throw thrown
                if (kind === 'next(err)') return setImmediate(next, thrown)
                const promise = (async () => {
                  await delay(1)
                  throw thrown
                })()
                // The same promise is returned to the framework; this handler only keeps Express 4
                // and Connect (which drop it) from turning it into an unhandled rejection.
                promise.catch(() => rejected.resolve())
                return promise
              })
              if (withErrorHandler) app.use(agent.errorHandler())
              app.use(function appErrors(err, req, res, next) {
                assert.equal(err, thrown) // errorHandler() passes the error on unchanged
                res.statusCode = 500
                res.end('error')
              })
              const server = await listen(app)
              try {
                if (hangs) {
                  await abortingGet(server.url('/fail'), rejected.promise)
                } else {
                  const response = await request(server.url('/fail'))
                  assert.equal(response.status, 500)
                }
                await waitFor(1)
                await settle()
                assert.equal(records.length, 1, `with errorHandler: ${withErrorHandler}`)
                const [record] = records
                assert.equal(record.attributes.rid, 'fail')
                // Connect names an error by the error handler's mount (`GET//`); naming has its own tests.
                if (fw !== 'connect') assert.equal(record.name, `WebTransaction/${group}/GET//fail`)
                if (hangs) {
                  assert.equal(record.aborted, true)
                  assert.equal('statusCode' in record, false) // no response went out
                  assert.equal(record.error, undefined) // the error never went through error handling
                } else {
                  assert.equal(record.aborted, false)
                  assert.equal(record.statusCode, 500)
                  if (withErrorHandler) assert.equal(record.error, thrown)
                  else assert.equal(record.error, undefined)
                }
              } finally {
                await server.close()
              }
            }
          })
        }

        it('gives sequential keep-alive requests on one socket their own transactions', async () => {
          const { agent, records, waitFor } = recordingAgent(engine.options())
          const { app, route } = makeApp(fw)
          app.use(agent.middleware())
          const seen = []
          const secondStarted = deferred()
          const lateRan = deferred()
          let lateResult
          route('/ka', async (req, res) => {
            const i = Number(req.headers['x-i'])
            const tx = ebt.getTransaction()
            assert.equal(tx, ebt.getTransaction(req))
            tx.addAttribute('rid', String(i))
            seen.push({ i, id: tx.id, port: req.socket.remotePort })
            if (i === 1) {
              // The next request on this socket has started; this one's async chain runs on.
              secondStarted.resolve()
              await lateRan.promise
            }
            await delay(1)
            assert.equal(ebt.getTransaction(), tx)
            if (req.headers['x-mode'] === 'background') assert.equal(ebt.setBackgroundTask(), true)
            res.end(String(i))
            if (i === 0) {
              // A continuation of the first request, running while the second is active.
              secondStarted.promise.then(() => {
                lateResult = { tx: ebt.getTransaction(), applied: ebt.setBackgroundTask() }
                lateRan.resolve()
              })
            }
          })
          const server = await listen(app)
          const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 })
          try {
            const modes = ['background', 'web', 'background', 'web', 'web', 'background']
            for (const [i, mode] of modes.entries()) {
              const response = await request(server.url('/ka'), { agent: keepAlive, headers: { 'x-i': String(i), 'x-mode': mode } })
              assert.equal(response.body, String(i))
            }
            await waitFor(modes.length)
            await settle()
            assert.equal(records.length, modes.length)
            assert.deepEqual(countByRid(records), Object.fromEntries(modes.map((_, i) => [String(i), 1])))
            for (const record of records) assert.equal(record.type, modes[Number(record.attributes.rid)])
            // One socket, distinct transactions, each seen by its own handler.
            assert.equal(new Set(seen.map((s) => s.port)).size, 1)
            assert.equal(new Set(seen.map((s) => s.id)).size, modes.length)
            for (const s of seen) assert.equal(records.find((r) => r.attributes.rid === String(s.i)).id, s.id)
            // The first request's late continuation saw no transaction and did not touch the second.
            assert.deepEqual(lateResult, { tx: undefined, applied: false })
          } finally {
            keepAlive.destroy()
            await server.close()
          }
        })

        it('keeps one transaction when the middleware is mounted twice, in a sub-app too', async () => {
          const { agent, records, waitFor } = recordingAgent(engine.options())
          const { app, route, framework, group } = makeApp(fw)
          const mw = agent.middleware()
          app.use(mw)
          app.use(mw)
          const sub = framework()
          sub.use(mw)
          const handler = (req, res) => {
            const tx = ebt.getTransaction()
            assert.equal(tx, ebt.getTransaction(req))
            tx.addAttribute('rid', req.headers['x-rid'])
            ebt.setBackgroundTask()
            res.end('ok')
          }
          if (fw === 'connect') sub.use('/x', handler)
          else sub.get('/x', handler)
          app.use('/sub', sub)
          route('/top', handler)
          const server = await listen(app)
          try {
            await request(server.url('/top'), { headers: { 'x-rid': 'top' } })
            await request(server.url('/sub/x'), { headers: { 'x-rid': 'sub' } })
            await waitFor(2)
            await settle()
            assert.equal(records.length, 2)
            assert.deepEqual(countByRid(records), { top: 1, sub: 1 })
            assert.deepEqual(records.map((r) => r.type), ['background', 'background'])
            assert.equal(records.find((r) => r.attributes.rid === 'top').name, `OtherTransaction/${group}/GET//top`)
          } finally {
            await server.close()
          }
        })

        it('lets the first of two agents own the single transaction of a request', async () => {
          const first = recordingAgent(engine.options())
          const second = recordingAgent(engine.options())
          const { app, route } = makeApp(fw)
          app.use(first.agent.middleware())
          app.use(second.agent.middleware())
          route('/both', (req, res) => {
            const tx = ebt.getTransaction()
            assert.equal(tx, second.agent.getTransaction(req))
            tx.addAttribute('rid', 'both')
            // The second agent's helper finds the first agent's transaction.
            assert.equal(second.agent.setBackgroundTask(), true)
            res.end('ok')
          })
          const server = await listen(app)
          try {
            await request(server.url('/both'))
            await first.waitFor(1)
            await settle()
            assert.equal(first.records.length, 1)
            assert.equal(first.records[0].attributes.rid, 'both')
            assert.equal(first.records[0].type, 'background')
            assert.equal(second.records.length, 0)
          } finally {
            await server.close()
          }
        })

        it('keeps a server-sent events stream in one background transaction until it ends', async () => {
          const { agent, records, waitFor } = recordingAgent(engine.options())
          const { app, route, group } = makeApp(fw)
          app.use(agent.middleware())
          let span
          route('/events', (req, res) => {
            assert.equal(ebt.setBackgroundTask(), true)
            const tx = ebt.getTransaction()
            const started = performance.now()
            res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
            let n = 0
            const timer = setInterval(() => {
              n += 1
              res.write(`data: ${n} ${ebt.getTransaction() === tx}\n\n`)
              if (n === 5) {
                clearInterval(timer)
                span = performance.now() - started
                res.end()
              }
            }, 20)
            req.on('close', () => clearInterval(timer))
          })
          const server = await listen(app)
          try {
            const response = await request(server.url('/events'))
            assert.equal(response.headers['content-type'], 'text/event-stream')
            assert.deepEqual(response.body.trim().split('\n\n'), [1, 2, 3, 4, 5].map((n) => `data: ${n} true`))
            await waitFor(1)
            await settle()
            assert.equal(records.length, 1)
            const [record] = records
            assert.equal(record.type, 'background')
            assert.equal(record.name, `OtherTransaction/${group}/GET//events`)
            assert.equal(record.aborted, false)
            assert.equal(record.statusCode, 200)
            assert.ok(record.duration >= span, `duration ${record.duration} covers the stream ${span}`)
          } finally {
            await server.close()
          }
        })

        it('keeps a piped download in one background transaction until the stream ends', async () => {
          const { agent, records, waitFor } = recordingAgent(engine.options())
          const { app, route, group } = makeApp(fw)
          app.use(agent.middleware())
          let span
          let pipelineError = null
          route('/download', (req, res) => {
            ebt.setBackgroundTask()
            const tx = ebt.getTransaction()
            const started = performance.now()
            async function* chunks() {
              for (let i = 0; i < 5; i++) {
                await delay(20)
                yield `chunk ${i} ${ebt.getTransaction() === tx}\n`
              }
              span = performance.now() - started
            }
            res.setHeader('content-type', 'text/plain')
            pipeline(Readable.from(chunks()), res, (err) => { pipelineError = err ?? null })
          })
          const server = await listen(app)
          try {
            const response = await request(server.url('/download'))
            assert.equal(response.body, [0, 1, 2, 3, 4].map((i) => `chunk ${i} true\n`).join(''))
            await waitFor(1)
            await settle()
            assert.equal(pipelineError, null)
            assert.equal(records.length, 1)
            const [record] = records
            assert.equal(record.type, 'background')
            assert.equal(record.name, `OtherTransaction/${group}/GET//download`)
            assert.equal(record.aborted, false)
            assert.ok(record.duration >= span, `duration ${record.duration} covers the stream ${span}`)
          } finally {
            await server.close()
          }
        })
      })
    }

    it('keeps requests and the other listeners working when an onTransactionEnd listener throws', async () => {
      const { agent, records, waitFor } = recordingAgent(engine.options())
      const later = []
      let thrown = 0
      agent.onTransactionEnd(() => {
        thrown += 1
        throw new Error('listener failure')
      })
      agent.onTransactionEnd((record) => later.push(record))
      const { app, route } = makeApp('express 5')
      app.use(agent.middleware())
      route('/ok', (req, res) => res.end('fine'))
      const server = await listen(app)
      try {
        for (let i = 0; i < 3; i++) {
          const response = await request(server.url('/ok'))
          assert.deepEqual([response.status, response.body], [200, 'fine'])
        }
        await waitFor(3)
        await settle()
        assert.equal(thrown, 3)
        assert.equal(records.length, 3)
        assert.deepEqual(later, records)
      } finally {
        await server.close()
      }
    })

    it('emits once when user code ends the transaction before the response finishes', async () => {
      const { agent, records, waitFor } = recordingAgent(engine.options())
      const { app, route } = makeApp('express 5')
      app.use(agent.middleware())
      const after = {}
      route('/early', async (req, res) => {
        const tx = ebt.getTransaction()
        tx.addAttribute('rid', 'early')
        res.statusCode = 203
        tx.end()
        tx.end()
        after.records = records.length
        after.active = ebt.getTransaction()
        after.byReq = ebt.getTransaction(req)
        after.applied = ebt.setBackgroundTask()
        await delay(10)
        res.statusCode = 201
        res.end('late')
      })
      const server = await listen(app)
      try {
        const response = await request(server.url('/early'))
        assert.deepEqual([response.status, response.body], [201, 'late'])
        await waitFor(1)
        await settle()
        assert.deepEqual(after, { records: 1, active: undefined, byReq: undefined, applied: false })
        assert.equal(records.length, 1)
        assert.equal(records[0].type, 'web')
        assert.equal(records[0].statusCode, 203) // as the response had it when the transaction ended
        assert.equal(records[0].aborted, false)
      } finally {
        await server.close()
      }
    })
  })
}

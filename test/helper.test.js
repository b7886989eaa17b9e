'use strict'
// SPEC "The helper" and the Transaction handle / TransactionRecord (Public API), getTransaction,
// PITFALLS 2 (a lazily-connected shared resource: getTransaction(req) is the explicit path).
// Both context engines; request behaviour on Express 5, Express 4 and Connect.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { EventEmitter, once } = require('node:events')
const { Readable, Writable, pipeline } = require('node:stream')
const { ebt, FRAMEWORKS, ENGINES, recordingAgent, listen, request, delay } = require('./helpers')
const { startScenarioApp } = require('./fixtures/scenario-app')
const { captureDebug } = require('./fixtures/capture-debug')

async function settle() {
  await Promise.resolve()
  await new Promise((resolve) => setImmediate(resolve))
  await delay(1)
}

/** Runs `fn` and returns what the helper answered at each of the async hops, in order. */
async function helperThroughHops() {
  const answers = {}
  answers.sync = ebt.setBackgroundTask(false)
  await null
  answers.await = ebt.setBackgroundTask(false)
  answers.promiseChain = await Promise.resolve()
    .then(() => delay(1))
    .then(() => ebt.setBackgroundTask(false))
    .then((applied) => applied && ebt.setBackgroundTask(false))
  answers.setTimeout = await new Promise((resolve) => setTimeout(() => resolve(ebt.setBackgroundTask(false)), 1))
  answers.setImmediate = await new Promise((resolve) => setImmediate(() => resolve(ebt.setBackgroundTask(false))))
  answers.nextTick = await new Promise((resolve) => process.nextTick(() => resolve(ebt.setBackgroundTask(false))))
  answers.queueMicrotask = await new Promise((resolve) => queueMicrotask(() => resolve(ebt.setBackgroundTask(false))))
  answers.setInterval = await new Promise((resolve) => {
    let ticks = 0
    const interval = setInterval(() => {
      if (++ticks < 2) return
      clearInterval(interval)
      resolve(ebt.setBackgroundTask(false))
    }, 1)
  })
  const emitter = new EventEmitter()
  setTimeout(() => emitter.emit('ready'), 1)
  await once(emitter, 'ready')
  answers.eventEmitterOnce = ebt.setBackgroundTask(false)
  answers.eventEmitterListener = await new Promise((resolve) => {
    emitter.on('data', () => resolve(ebt.setBackgroundTask(false)))
    setTimeout(() => emitter.emit('data'), 1)
  })
  answers.stream = await new Promise((resolve, reject) => {
    let applied
    pipeline(
      Readable.from(['a', 'b']),
      new Writable({
        write(chunk, encoding, callback) {
          applied = ebt.setBackgroundTask(false)
          setImmediate(callback)
        }
      }),
      (err) => (err ? reject(err) : resolve(applied))
    )
  })
  answers.asyncGenerator = await (async () => {
    async function* ticks() {
      await delay(1)
      yield ebt.setBackgroundTask(false)
    }
    for await (const applied of ticks()) return applied
  })()
  // The last hop decides the record: background.
  answers.last = await new Promise((resolve) => setTimeout(() => resolve(ebt.setBackgroundTask()), 1))
  return answers
}

for (const engine of ENGINES) {
  describe(`setBackgroundTask helper (${engine.name})`, () => {
    it('returns false outside a request and changes nothing', () => {
      const capture = captureDebug()
      try {
        assert.equal(ebt.setBackgroundTask(), false)
        assert.equal(ebt.setBackgroundTask(true), false)
        assert.equal(ebt.setBackgroundTask(false), false)
        assert.equal(ebt.getTransaction(), undefined)
      } finally {
        capture.stop()
      }
      assert.ok(capture.matching('transaction', 'no active transaction').length >= 3, capture.lines.join('\n'))
    })

    for (const framework of Object.keys(FRAMEWORKS)) {
      describe(framework, () => {
        let app
        before(async () => {
          app = await startScenarioApp(framework, engine.options())
        })
        after(() => app.close())

        it('defaults to true: the request is recorded as a background transaction', async () => {
          const records = await app.run({
            handler() {
              assert.equal(ebt.setBackgroundTask(), true)
            }
          })
          assert.equal(records.length, 1)
          assert.equal(records[0].type, 'background')
          assert.match(records[0].name, /^OtherTransaction\/(Expressjs|Connect)\/GET\/\/t$/)
        })

        it('returns true through awaits, timers, EventEmitters, streams and promise chains', async () => {
          let answers
          const records = await app.run({
            async handler() {
              answers = await helperThroughHops()
            }
          })
          for (const [hop, applied] of Object.entries(answers)) assert.equal(applied, true, hop)
          assert.equal(records[0].type, 'background')
        })

        it('setBackgroundTask(false) turns a background request back to web', async () => {
          const records = await app.run({
            async handler() {
              assert.equal(ebt.setBackgroundTask(true), true)
              await settle()
              assert.equal(ebt.setBackgroundTask(false), true)
            }
          })
          assert.equal(records[0].type, 'web')
          assert.match(records[0].name, /^WebTransaction\//)
        })

        it('parses non-boolean flags like req.newrelic values', async () => {
          const records = await app.run({
            async handler(req) {
              const tx = ebt.getTransaction(req)
              for (const [flag, type] of [['on', 'background'], ['0', 'web'], [1, 'background'], ['FALSE', 'web'], ['True', 'background']]) {
                assert.equal(ebt.setBackgroundTask(flag), true, String(flag))
                assert.equal(tx.type, type, String(flag))
              }
            }
          })
          assert.equal(records[0].type, 'background')
        })

        it('returns false with an unparseable flag and changes nothing', async () => {
          const records = await app.run({
            handler(req) {
              assert.equal(ebt.setBackgroundTask(true), true)
              for (const junk of ['yes', '', null, 2, NaN, {}, [], Symbol('x'), () => true]) {
                assert.equal(ebt.setBackgroundTask(junk), false)
                assert.equal(ebt.getTransaction(req).setBackgroundTask(junk), false)
              }
            }
          })
          assert.equal(records[0].type, 'background')
        })

        it('returns false after the response ended, even from a callback of the request', async () => {
          let late
          const records = await app.run({
            handler(req, res) {
              const tx = ebt.getTransaction(req)
              late = new Promise((resolve) => {
                res.on('finish', () => {
                  setTimeout(() => {
                    resolve({
                      helper: ebt.setBackgroundTask(),
                      handle: tx.setBackgroundTask(),
                      active: ebt.getTransaction(),
                      ofRequest: ebt.getTransaction(req),
                      type: tx.type
                    })
                  }, 5)
                })
              })
              res.end('done')
            }
          })
          assert.deepEqual(await late, { helper: false, handle: false, active: undefined, ofRequest: undefined, type: 'web' })
          assert.equal(records.length, 1)
          assert.equal(records[0].type, 'web')
        })

        it('returns false in an ignored transaction (handle.ignore() or the flag)', async () => {
          const records = await app.run({
            async handler(req) {
              const tx = ebt.getTransaction(req)
              tx.ignore()
              assert.equal(ebt.setBackgroundTask(), false)
              assert.equal(tx.setBackgroundTask(), false)
              assert.equal(ebt.getTransaction(), undefined)
              assert.equal(ebt.getTransaction(req), undefined)
              await settle()
              assert.equal(ebt.setBackgroundTask(), false)
            }
          })
          assert.deepEqual(records, [])
        })

        it("the handle's setBackgroundTask returns what the helper returns, in every state", async () => {
          let afterEnd
          const records = await app.run({
            async handler(req, res) {
              const tx = ebt.getTransaction(req)
              for (const flag of [undefined, true, false, 'off', 'on', 1, 0, 'junk', null, 7]) {
                assert.equal(tx.setBackgroundTask(flag), ebt.setBackgroundTask(flag), `active, ${String(flag)}`)
              }
              req.newrelic.ignoreTransaction = true
              assert.equal(tx.setBackgroundTask(true), ebt.setBackgroundTask(true), 'ignored')
              req.newrelic.ignoreTransaction = false
              afterEnd = new Promise((resolve) => {
                res.on('finish', () => setTimeout(() => resolve([tx.setBackgroundTask(true), ebt.setBackgroundTask(true)]), 5))
              })
            }
          })
          assert.deepEqual(await afterEnd, [false, false])
          assert.equal(records[0].type, 'web')
        })

        it('getTransaction() is the active transaction; getTransaction(req) the request\'s while active', async () => {
          let kept
          const records = await app.run({
            async handler(req) {
              const tx = ebt.getTransaction()
              assert.ok(tx)
              assert.equal(ebt.getTransaction(req), tx)
              await settle()
              assert.equal(ebt.getTransaction(), tx)
              assert.equal(ebt.getTransaction({}), undefined, 'an object that is not a request')
              kept = { tx, req }
            }
          })
          assert.equal(records[0].id, kept.tx.id)
          assert.equal(ebt.getTransaction(kept.req), undefined, 'undefined after the end')
          assert.equal(ebt.getTransaction(), undefined)
        })

        it('exposes id, type and name on the handle', async () => {
          const seen = []
          for (let i = 0; i < 3; i++) {
            await app.run({
              handler(req) {
                const tx = ebt.getTransaction(req)
                assert.equal(typeof tx.id, 'string')
                assert.equal(tx.type, 'web')
                assert.match(tx.name, /^WebTransaction\/(Expressjs|Connect)\/GET\/\/t$/)
                tx.setBackgroundTask()
                assert.equal(tx.type, 'background')
                assert.match(tx.name, /^OtherTransaction\/(Expressjs|Connect)\/GET\/\/t$/)
                seen.push(tx.id)
              }
            })
          }
          assert.equal(new Set(seen).size, 3, 'ids are unique')
          const [record] = app.records.slice(-2, -1)
          assert.equal(record.id, seen[2])
        })

        it('addAttribute and noticeError reach the record; the record and its attributes are frozen', async () => {
          const boom = new Error('boom')
          const records = await app.run({
            handler(req) {
              const tx = ebt.getTransaction(req)
              tx.addAttribute('userId', 42)
              tx.addAttribute('plan', 'pro')
              tx.addAttribute('plan', 'team') // the last value wins
              tx.noticeError(boom)
            }
          })
          const [record] = records
          assert.deepEqual({ ...record.attributes }, { userId: 42, plan: 'team' })
          assert.equal(record.error, boom)
          assert.ok(Object.isFrozen(record))
          assert.ok(Object.isFrozen(record.attributes))
          assert.throws(() => {
            record.type = 'web'
          }, TypeError)
          assert.throws(() => {
            record.attributes.userId = 1
          }, TypeError)
          assert.equal(record.statusCode, 200)
          assert.equal(record.method, 'GET')
          assert.equal(record.aborted, false)
          assert.equal(typeof record.startTime, 'number')
          assert.ok(Math.abs(record.startTime - Date.now()) < 60_000, 'startTime is epoch ms')
          assert.ok(record.duration >= 0)
        })

        it('an attribute of a record without attributes is an empty frozen object', async () => {
          const [record] = await app.run({})
          assert.deepEqual({ ...record.attributes }, {})
          assert.ok(Object.isFrozen(record.attributes))
          assert.equal(record.error, undefined)
        })

        it('noticeError accepts a non-Error value and keeps it as the cause', async () => {
          const records = await app.run({
            handler(req) {
              ebt.getTransaction(req).noticeError('plain string')
            }
          })
          assert.ok(records[0].error instanceof Error)
          assert.match(records[0].error.message, /plain string/)
        })

        it('end() ends the transaction once; later end() calls and the response finishing do not', async () => {
          let tx
          const records = await app.run({
            async handler(req) {
              tx = ebt.getTransaction(req)
              tx.end()
              tx.end()
              assert.equal(ebt.getTransaction(req), undefined)
              assert.equal(ebt.getTransaction(), undefined)
              assert.equal(ebt.setBackgroundTask(), false)
              await settle()
              tx.end()
            }
          })
          assert.equal(records.length, 1)
          assert.equal(records[0].id, tx.id)
          assert.equal(records[0].type, 'web')
          tx.end()
          assert.equal(app.records.filter((r) => r.id === tx.id).length, 1)
        })

        it('getTransaction(req) is the explicit path when a shared lazily-connected client runs callbacks in another request (PITFALLS 2)', async () => {
          // A client that connects on first use: its worker loop is created inside the first
          // request, so every later callback runs in that request's async context.
          const queue = []
          let worker
          function query(cb) {
            queue.push(cb)
            worker ??= setInterval(() => {
              for (const pending of queue.splice(0)) pending()
            }, 1)
          }
          try {
            const seenActive = []
            const first = await app.run({
              handler() {
                return new Promise((resolve) => query(resolve))
              }
            })
            const second = await app.run({
              handler(req) {
                return new Promise((resolve) =>
                  query(() => {
                    seenActive.push(ebt.getTransaction())
                    assert.equal(ebt.getTransaction(req).setBackgroundTask(), true)
                    resolve()
                  })
                )
              }
            })
            assert.equal(first[0].type, 'web')
            assert.equal(second[0].type, 'background', 'the right request was reclassified')
            assert.notEqual(seenActive[0]?.id, second[0].id, 'the implicit context is the wrong one here')
          } finally {
            clearInterval(worker)
          }
        })
      })
    }

    describe('two agents', () => {
      it('the helper and getTransaction work whichever agent started the transaction', async () => {
        const express = FRAMEWORKS['express 5']()
        const first = recordingAgent(engine.options())
        const second = recordingAgent(engine.options())
        const app = express()
        app.use(first.agent.middleware())
        app.use(second.agent.middleware()) // the first one owns the request's transaction
        app.get('/job', async (req, res) => {
          const web = ebt.getTransaction()
          assert.equal(first.agent.getTransaction(), web)
          assert.equal(second.agent.getTransaction(req), web)
          await second.agent.backgroundTask('job', async () => {
            const job = ebt.getTransaction()
            assert.notEqual(job, web)
            assert.equal(first.agent.getTransaction(), job)
            await settle()
            assert.equal(first.agent.setBackgroundTask(false), true)
            assert.equal(job.type, 'web')
          })
          assert.equal(ebt.getTransaction(), web)
          assert.equal(second.agent.setBackgroundTask(), true)
          res.end('ok')
        })
        const server = await listen(app)
        try {
          const res = await request(server.url('/job'))
          assert.equal(res.status, 200, res.body)
          const [webRecord] = await first.waitFor(1)
          const [jobRecord] = await second.waitFor(1)
          assert.equal(webRecord.name, 'OtherTransaction/Expressjs/GET//job')
          assert.equal(jobRecord.name, 'WebTransaction/Nodejs/job')
          assert.equal(first.records.length, 1)
          assert.equal(second.records.length, 1, 'the second middleware started no transaction of its own')
        } finally {
          await server.close()
        }
      })

      const other = ENGINES.find((candidate) => candidate !== engine)
      it(`finds the innermost transaction when a ${other.name} agent's task runs inside a ${engine.name} request`, async () => {
        const outer = recordingAgent(engine.options())
        const inner = recordingAgent(other.options())
        const app = FRAMEWORKS['express 5']()()
        app.use(outer.agent.middleware())
        let seen
        app.get('/mixed', async (req, res) => {
          const web = ebt.getTransaction()
          await inner.agent.backgroundTask('mixed', async () => {
            await settle()
            seen = { inner: ebt.getTransaction(), web, applied: ebt.setBackgroundTask(false) }
          })
          res.end('ok')
        })
        const server = await listen(app)
        try {
          await request(server.url('/mixed'))
          const [webRecord] = await outer.waitFor(1)
          const [taskRecord] = await inner.waitFor(1)
          assert.equal(seen.inner?.id, taskRecord.id)
          assert.equal(taskRecord.name, 'WebTransaction/Nodejs/mixed')
          assert.equal(webRecord.type, 'web')
        } finally {
          await server.close()
        }
      })
    })
  })
}

for (const engine of ENGINES) {
  describe(`agent and handle edge cases (${engine.name})`, () => {
    it('getTransaction(null) is getTransaction(); a non-object holds no transaction', async () => {
      const express = require('express')
      const { agent, waitFor } = recordingAgent(engine.options())
      const app = express()
      app.use(agent.middleware())
      const seen = {}
      app.get('/t', (req, res) => {
        seen.null = ebt.getTransaction(null) === ebt.getTransaction()
        seen.active = ebt.getTransaction() !== undefined
        seen.string = ebt.getTransaction('req')
        res.end('ok')
      })
      const server = await listen(app)
      try {
        const { status } = await request(server.url('/t'))
        await waitFor(1)
        assert.equal(status, 200)
        assert.deepEqual(seen, { null: true, active: true, string: undefined })
      } finally {
        await server.close()
      }
    })

    it('agent methods work when taken off the agent, like the top-level functions', async () => {
      const express = require('express')
      const { middleware, backgroundTask, onTransactionEnd, setBackgroundTask, getTransaction, errorHandler } = ebt.createAgent(engine.options())
      const records = []
      onTransactionEnd((record) => records.push(record))
      const app = express()
      app.use(middleware())
      app.get('/t', (req, res) => {
        assert.equal(getTransaction(req) !== undefined, true)
        assert.equal(setBackgroundTask(), true)
        res.end(String(backgroundTask('inner', () => 7)))
      })
      app.use(errorHandler())
      const server = await listen(app)
      try {
        const { body } = await request(server.url('/t'))
        await delay(20)
        assert.equal(body, '7')
        assert.deepEqual(records.map((r) => r.name).sort(), ['OtherTransaction/Expressjs/GET//t', 'OtherTransaction/Nodejs/inner'])
      } finally {
        await server.close()
      }
    })

    it('the handle of an ignored request still reads its name after the end', async () => {
      const express = require('express')
      const { agent } = recordingAgent(engine.options())
      const app = express()
      app.use(agent.middleware())
      let handle
      app.get('/users/:id', (req, res) => {
        handle = ebt.getTransaction()
        handle.ignore()
        res.end('ok')
      })
      const server = await listen(app)
      try {
        await request(server.url('/users/5'))
        await delay(20)
        assert.equal(handle.name, 'WebTransaction/Expressjs/GET//users/:id')
      } finally {
        await server.close()
      }
    })
  })
}

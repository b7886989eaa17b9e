'use strict'
// SPEC "Background transactions" (and PITFALLS 7 and 15 for backgroundTask): naming, the returned
// value, thenables, errors, nesting inside a web request, and argument errors; both engines.
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const { performance } = require('node:perf_hooks')
const { EventEmitter, once } = require('node:events')
const { ebt, ENGINES, recordingAgent, listen, request, delay } = require('./helpers')

const REQUEST_FIELDS = ['method', 'path', 'statusCode', 'aborted']

async function settle() {
  await Promise.resolve()
  await new Promise((resolve) => setImmediate(resolve))
  await delay(1)
}

function deferred() {
  let resolve, reject
  const promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Collects process 'unhandledRejection' events while `fn` runs, plus a few turns after. */
async function unhandledRejectionsDuring(fn) {
  const seen = []
  const listener = (reason, promise) => seen.push({ reason, promise })
  process.on('unhandledRejection', listener)
  try {
    await fn()
    await settle()
    await delay(10)
  } finally {
    process.off('unhandledRejection', listener)
  }
  return seen
}

/** A thenable that is not a Promise, to check the very instance comes back. */
class CustomThenable {
  constructor(value) {
    this.value = value
    this.thenCalls = 0
  }
  then(onFulfilled, onRejected) {
    this.thenCalls++
    return Promise.resolve(this.value).then(onFulfilled, onRejected)
  }
}

for (const engine of ENGINES) {
  describe(`backgroundTask (${engine.name})`, () => {
    describe('names and records', () => {
      it('names the transaction OtherTransaction/Nodejs/<name> and records it as background', () => {
        const { agent, records } = recordingAgent(engine.options())
        let inside
        agent.backgroundTask('reports/daily', () => {
          inside = ebt.getTransaction()
          assert.equal(inside.type, 'background')
          assert.equal(inside.name, 'OtherTransaction/Nodejs/reports/daily')
        })
        assert.equal(records.length, 1, 'a synchronous task ends when fn returns')
        const [record] = records
        assert.equal(record.id, inside.id)
        assert.equal(record.type, 'background')
        assert.equal(record.name, 'OtherTransaction/Nodejs/reports/daily')
        assert.equal(record.suppressApdexMetric, false)
        assert.equal(record.error, undefined)
        for (const field of REQUEST_FIELDS) assert.equal(field in record, false, `no ${field} on a background task`)
        assert.ok(Object.isFrozen(record))
        assert.equal(ebt.getTransaction(), undefined, 'nothing is active after the task')
      })

      it('uses the group option: OtherTransaction/<group>/<name>; group undefined is the default', () => {
        const { agent, records } = recordingAgent(engine.options())
        agent.backgroundTask('resize', () => {}, { group: 'Images' })
        agent.backgroundTask('resize', () => {}, { group: undefined })
        agent.backgroundTask('resize', () => {}, {})
        agent.backgroundTask('resize', () => {}, Object.assign(Object.create(null), { group: 'Queue' }))
        assert.deepEqual(
          records.map((r) => r.name),
          ['OtherTransaction/Images/resize', 'OtherTransaction/Nodejs/resize', 'OtherTransaction/Nodejs/resize', 'OtherTransaction/Queue/resize']
        )
      })

      it('setBackgroundTask(false) inside it gives WebTransaction/<group>/<name>', async () => {
        const { agent, records, waitFor } = recordingAgent(engine.options())
        await agent.backgroundTask('webhook', async () => {
          await settle()
          assert.equal(ebt.setBackgroundTask(false), true)
          assert.equal(ebt.getTransaction().name, 'WebTransaction/Queue/webhook')
        }, { group: 'Queue' })
        await waitFor(1)
        assert.equal(records[0].type, 'web')
        assert.equal(records[0].name, 'WebTransaction/Queue/webhook')
        agent.backgroundTask('noop', () => assert.equal(ebt.setBackgroundTask(true), true))
        assert.equal(records[1].name, 'OtherTransaction/Nodejs/noop')
      })

      it('attributes and errors noticed through the handle reach the record', () => {
        const { agent, records } = recordingAgent(engine.options())
        const err = new Error('noticed')
        agent.backgroundTask('attrs', () => {
          const tx = ebt.getTransaction()
          tx.addAttribute('batch', 7)
          tx.noticeError(err)
        })
        assert.deepEqual({ ...records[0].attributes }, { batch: 7 })
        assert.equal(records[0].error, err)
      })
    })

    describe('the returned value', () => {
      it('returns what fn returns, the very same value', () => {
        const { agent } = recordingAgent(engine.options())
        const object = { rows: [1, 2] }
        assert.equal(agent.backgroundTask('object', () => object), object)
        assert.equal(agent.backgroundTask('number', () => 42), 42)
        assert.equal(agent.backgroundTask('undefined', () => undefined), undefined)
        const fn = () => 'x'
        assert.equal(agent.backgroundTask('function', () => fn), fn)
      })

      it('returns the same promise and the same custom thenable instance', async () => {
        const { agent, records, waitFor } = recordingAgent(engine.options())
        const promise = Promise.resolve('value')
        assert.equal(agent.backgroundTask('promise', () => promise), promise)
        const thenable = new CustomThenable('custom')
        const returned = agent.backgroundTask('thenable', () => thenable)
        assert.equal(returned, thenable)
        assert.ok(returned instanceof CustomThenable)
        assert.equal(await returned, 'custom')
        await waitFor(2)
        assert.deepEqual(records.map((r) => r.name).sort(), ['OtherTransaction/Nodejs/promise', 'OtherTransaction/Nodejs/thenable'])
      })

      it('a returned promise ends the transaction when it settles, and the duration covers it', async () => {
        const { agent, records, waitFor } = recordingAgent(engine.options())
        const gate = deferred()
        let startedAt
        let tx
        const returned = agent.backgroundTask('export', () => {
          startedAt = performance.now()
          tx = ebt.getTransaction()
          return gate.promise
        })
        await settle()
        assert.equal(records.length, 0, 'still running while the promise is pending')
        assert.equal(agent.getTransaction(), undefined, 'the caller is not inside the task')
        assert.ok(tx.name && tx.type === 'background')
        await delay(5)
        const settledAt = performance.now()
        gate.resolve('done')
        assert.equal(await returned, 'done')
        const [record] = await waitFor(1)
        assert.equal(record.id, tx.id)
        assert.ok(record.duration >= settledAt - startedAt, `${record.duration} covers ${settledAt - startedAt}`)
        assert.equal(record.error, undefined)
      })

      it('an async fn: nested async work inside it sees the background transaction', async () => {
        const { agent, waitFor } = recordingAgent(engine.options())
        const seen = {}
        await agent.backgroundTask('nested', async () => {
          const tx = ebt.getTransaction()
          await settle()
          seen.afterAwait = ebt.getTransaction() === tx
          seen.timer = await new Promise((resolve) => setTimeout(() => resolve(ebt.getTransaction() === tx), 1))
          const emitter = new EventEmitter()
          setImmediate(() => emitter.emit('go'))
          await once(emitter, 'go')
          seen.emitter = ebt.getTransaction() === tx
          seen.chain = await Promise.resolve().then(() => delay(1)).then(() => ebt.getTransaction() === tx)
        })
        assert.deepEqual(seen, { afterAwait: true, timer: true, emitter: true, chain: true })
        await waitFor(1)
      })
    })

    describe('errors', () => {
      it('a rejection is recorded as error, still rejects to the caller, and causes no unhandled rejection of its own', async () => {
        const { agent, waitFor } = recordingAgent(engine.options())
        const err = new Error('rejected')
        const unhandled = await unhandledRejectionsDuring(async () => {
          await assert.rejects(
            agent.backgroundTask('fails', async () => {
              await settle()
              throw err
            }),
            (caught) => caught === err
          )
          const thenable = { then: (resolve, reject) => setImmediate(() => reject(err)) }
          await assert.rejects(Promise.resolve(agent.backgroundTask('fails-thenable', () => thenable)), (caught) => caught === err)
        })
        assert.deepEqual(unhandled, [])
        const records = await waitFor(2)
        for (const record of records) assert.equal(record.error, err)
      })

      it('a rejection the caller leaves unhandled is still recorded (the same promise is observed, so Node sees it handled)', async () => {
        // backgroundTask returns the very promise fn returned and observes it with then(): V8 then
        // counts it as handled, so a fire-and-forget task's failure lives on in the record only.
        const { agent, waitFor } = recordingAgent(engine.options())
        const err = new Error('nobody listens')
        let returned
        const unhandled = await unhandledRejectionsDuring(() => {
          returned = agent.backgroundTask('orphan', () => Promise.reject(err))
        })
        assert.deepEqual(unhandled, [])
        const [record] = await waitFor(1)
        assert.equal(record.error, err)
        await assert.rejects(returned, (caught) => caught === err)
      })

      it('a synchronous throw is noticed, ends the transaction and is rethrown (the same error)', () => {
        const { agent, records } = recordingAgent(engine.options())
        const err = new Error('sync')
        let tx
        assert.throws(
          () =>
            agent.backgroundTask('throws', () => {
              tx = ebt.getTransaction()
              throw err
            }),
          (caught) => caught === err
        )
        assert.equal(records.length, 1)
        assert.equal(records[0].error, err)
        assert.equal(records[0].id, tx.id)
        assert.equal(agent.getTransaction(), undefined)
        assert.deepEqual(Object.keys(err), [], 'nothing (like cls-hooked\'s error@context) is added to the error')
      })

      it('rethrows non-Error values unchanged and records an Error for them (PITFALLS 7)', () => {
        const { agent, records } = recordingAgent(engine.options())
        const values = ['str', 42, null, undefined, Object.create(null), { toString() { throw new Error('no') } }]
        for (const value of values) {
          assert.throws(
            () =>
              agent.backgroundTask('throws-value', () => {
                throw value
              }),
            (caught) => caught === value
          )
        }
        assert.equal(records.length, values.length)
        for (const record of records) assert.ok(record.error instanceof Error)
        assert.match(records[0].error.message, /str/)
      })

      it('a thenable whose then throws is returned as is and its transaction ends with the error', () => {
        const { agent, records } = recordingAgent(engine.options())
        const err = new Error('then throws')
        const thenable = { then() { throw err } }
        assert.equal(agent.backgroundTask('bad-then', () => thenable), thenable)
        assert.equal(records.length, 1)
        assert.equal(records[0].error, err)
        const hostile = {}
        Object.defineProperty(hostile, 'then', { get() { throw err } })
        assert.equal(agent.backgroundTask('then-getter', () => hostile), hostile)
        assert.equal(records.length, 2, 'a then getter that throws still ends the transaction')
        assert.equal(records[1].error, err)
      })
    })

    describe('inside a web request', () => {
      it('starts a separate transaction; the web one is active again afterwards', async () => {
        const express = require('express')
        const { agent, records, waitFor } = recordingAgent(engine.options())
        const app = express()
        app.use(agent.middleware())
        const seen = {}
        app.get('/export', async (req, res) => {
          const web = ebt.getTransaction()
          agent.backgroundTask('sync-part', () => {
            seen.syncSeparate = ebt.getTransaction() !== web && ebt.getTransaction().type === 'background'
          })
          seen.webAfterSync = ebt.getTransaction() === web
          const result = await agent.backgroundTask('async-part', async () => {
            const job = ebt.getTransaction()
            await settle()
            seen.jobAfterAwait = ebt.getTransaction() === job
            seen.jobTimer = await new Promise((resolve) => setTimeout(() => resolve(ebt.getTransaction() === job), 1))
            assert.equal(ebt.setBackgroundTask(false), true) // reclassifies the job, not the request
            return 'rows'
          })
          seen.webAfterAsync = ebt.getTransaction() === web
          seen.webByReq = ebt.getTransaction(req) === web
          res.end(result)
        })
        const server = await listen(app)
        try {
          const res = await request(server.url('/export'))
          assert.equal(res.body, 'rows')
          await waitFor(3)
        } finally {
          await server.close()
        }
        assert.deepEqual(seen, { syncSeparate: true, webAfterSync: true, jobAfterAwait: true, jobTimer: true, webAfterAsync: true, webByReq: true })
        const byName = Object.fromEntries(records.map((r) => [r.name, r]))
        assert.ok(byName['OtherTransaction/Nodejs/sync-part'])
        assert.ok(byName['WebTransaction/Nodejs/async-part'])
        assert.equal(byName['WebTransaction/Expressjs/GET//export'].type, 'web')
        assert.equal(new Set(records.map((r) => r.id)).size, 3)
      })

      it('a task nested in a task is separate too, and concurrent tasks each see their own', async () => {
        const { agent, records, waitFor } = recordingAgent(engine.options())
        await agent.backgroundTask('outer', async () => {
          const outer = ebt.getTransaction()
          await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              agent.backgroundTask(`inner-${i}`, async () => {
                const inner = ebt.getTransaction()
                assert.notEqual(inner, outer)
                await delay(i % 3)
                assert.equal(ebt.getTransaction(), inner)
                if (i % 2 === 0) ebt.setBackgroundTask(false)
              })
            )
          )
          assert.equal(ebt.getTransaction(), outer)
        })
        await waitFor(21)
        for (const record of records) {
          const index = /inner-(\d+)$/.exec(record.name)?.[1]
          if (index === undefined) assert.equal(record.name, 'OtherTransaction/Nodejs/outer')
          else assert.equal(record.type, Number(index) % 2 === 0 ? 'web' : 'background', record.name)
        }
      })
    })

    describe('argument errors (TypeError with a code)', () => {
      const { agent } = recordingAgent(engine.options())
      function assertCode(fn, code, received) {
        assert.throws(fn, (err) => {
          assert.ok(err instanceof TypeError)
          assert.equal(err.code, code)
          if (received !== undefined) assert.ok(err.message.includes(received), err.message)
          return true
        })
      }
      it('a non-function fn: ERR_EBT_TASK_FUNCTION', () => {
        for (const fn of [undefined, null, 'fn', 42, {}, Promise.resolve()]) {
          assertCode(() => agent.backgroundTask('job', fn), 'ERR_EBT_TASK_FUNCTION')
        }
        assertCode(() => agent.backgroundTask('job', 'not a function'), 'ERR_EBT_TASK_FUNCTION', "'not a function'")
      })
      it('a non-string or empty name: ERR_EBT_TASK_NAME, and fn is not called', () => {
        let called = false
        const fn = () => {
          called = true
        }
        for (const name of [undefined, null, 42, '', Symbol('job'), {}, ['job']]) {
          assertCode(() => agent.backgroundTask(name, fn), 'ERR_EBT_TASK_NAME')
        }
        assertCode(() => agent.backgroundTask(42, fn), 'ERR_EBT_TASK_NAME', '42')
        assert.equal(called, false)
      })
      it('a bad group or options: ERR_EBT_TASK_GROUP, ERR_EBT_UNKNOWN_OPTION, ERR_EBT_OPTIONS_TYPE', () => {
        const fn = () => {}
        for (const group of [42, '', null, {}, true]) {
          assertCode(() => agent.backgroundTask('job', fn, { group }), 'ERR_EBT_TASK_GROUP')
        }
        assertCode(() => agent.backgroundTask('job', fn, { group: 7 }), 'ERR_EBT_TASK_GROUP', '7')
        assertCode(() => agent.backgroundTask('job', fn, { grup: 'Jobs' }), 'ERR_EBT_UNKNOWN_OPTION', 'grup')
        for (const options of ['Jobs', 42, null, ['Jobs']]) {
          assertCode(() => agent.backgroundTask('job', fn, options), 'ERR_EBT_OPTIONS_TYPE')
        }
      })
    })
  })
}

describe('top-level backgroundTask (default agent)', () => {
  it('runs on the default agent and reaches its onTransactionEnd listeners', async () => {
    const records = []
    const unsubscribe = ebt.onTransactionEnd((record) => records.push(record))
    try {
      const value = { ok: true }
      assert.equal(ebt.backgroundTask('default-sync', () => value), value)
      const result = await ebt.backgroundTask('default-async', async () => {
        await settle()
        return ebt.getTransaction().name
      }, { group: 'Default' })
      assert.equal(result, 'OtherTransaction/Default/default-async')
      assert.throws(() => ebt.backgroundTask('x', 'y'), { code: 'ERR_EBT_TASK_FUNCTION' })
    } finally {
      unsubscribe()
    }
    assert.deepEqual(records.map((r) => r.name), ['OtherTransaction/Nodejs/default-sync', 'OtherTransaction/Default/default-async'])
    ebt.backgroundTask('after-unsubscribe', () => {})
    assert.equal(records.length, 2)
  })
})

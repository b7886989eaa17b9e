'use strict'
// SPEC "The seam": start / classify / end on node:diagnostics_channel, for every agent, on real apps.
const { describe, it, afterEach } = require('node:test')
const assert = require('node:assert/strict')
const diagnosticsChannel = require('node:diagnostics_channel')
const { ebt, FRAMEWORKS, recordingAgent, listen, request, delay } = require('./helpers')

const NAMES = {
  start: 'express-background-task:transaction:start',
  classify: 'express-background-task:transaction:classify',
  end: 'express-background-task:transaction:end'
}

/** Subscribe to the three channels; returns { events, stop() }. */
function subscribeAll() {
  const events = []
  const handlers = {}
  for (const [kind, name] of Object.entries(NAMES)) {
    handlers[kind] = (message) => events.push({ kind, message, type: message.transaction.type })
    diagnosticsChannel.subscribe(name, handlers[kind])
  }
  return {
    events,
    stop() {
      for (const [kind, name] of Object.entries(NAMES)) diagnosticsChannel.unsubscribe(name, handlers[kind])
    }
  }
}

describe('diagnostics channels', () => {
  let subscription
  afterEach(() => subscription?.stop())

  it('exports the channel names as the contract', () => {
    assert.deepEqual({ ...ebt.ChannelName }, { START: NAMES.start, CLASSIFY: NAMES.classify, END: NAMES.end })
  })

  for (const [framework, load] of Object.entries(FRAMEWORKS)) {
    it(`${framework}: start carries upstream flags, classify follows later changes, end carries the record`, async () => {
      const { agent, waitFor } = recordingAgent()
      const app = load()()
      app.use((req, res, next) => {
        req.newrelic.setBackgroundTask = true // before the middleware: part of the start
        next()
      })
      app.use(agent.middleware())
      app.use((req, res) => {
        req.newrelic.setBackgroundTask = false // a change: classify
        req.newrelic.setBackgroundTask = 'false' // no change: nothing published
        ebt.setBackgroundTask(true) // a change: classify
        setTimeout(() => res.end('ok'), 5)
      })
      const server = await listen(app)
      subscription = subscribeAll()
      try {
        await request(server.url('/t'))
        const [record] = await waitFor(1)
        const events = subscription.events.filter((event) => event.message.transaction.agent === agent)
        assert.deepEqual(events.map((event) => event.kind), ['start', 'classify', 'classify', 'end'])
        assert.equal(events[0].type, 'background')
        assert.deepEqual(
          events.slice(1, 3).map(({ message }) => [message.previousType, message.type]),
          [['background', 'web'], ['web', 'background']]
        )
        assert.equal(events[3].message.record, record)
        assert.equal(events[3].message.transaction, events[0].message.transaction)
        assert.equal(events[0].message.transaction.agent.apdexT, 0.5)
      } finally {
        await server.close()
      }
    })
  }

  it('publishes end for an ignored transaction with no record, so starts balance', async () => {
    const { agent, records } = recordingAgent()
    subscription = subscribeAll()
    agent.backgroundTask('ignored', () => {
      ebt.getTransaction().ignore()
    })
    const mine = subscription.events.filter((event) => event.message.transaction.agent === agent)
    assert.deepEqual(mine.map((event) => event.kind), ['start', 'end'])
    assert.equal(mine[1].message.record, undefined)
    assert.deepEqual(records, [])
  })

  it('publishes for every agent, background tasks included, turned web', async () => {
    const one = ebt.createAgent()
    const two = ebt.createAgent({ apdexT: 2 })
    subscription = subscribeAll()
    await one.backgroundTask('a', async () => { await delay(1) })
    two.backgroundTask('b', () => ebt.setBackgroundTask(false))
    const ends = subscription.events.filter((event) => event.kind === 'end')
    assert.deepEqual(ends.map((event) => [event.message.transaction.agent === one, event.message.record.name]), [
      [true, 'OtherTransaction/Nodejs/a'],
      [false, 'WebTransaction/Nodejs/b']
    ])
    assert.equal(two.apdexT, 2)
    assert.throws(() => { 'use strict'; two.apdexT = 3 }, TypeError)
  })

  it('builds no message when nobody subscribes', () => {
    for (const name of Object.values(NAMES)) assert.equal(diagnosticsChannel.channel(name).hasSubscribers, false)
  })
})

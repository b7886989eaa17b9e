'use strict'
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const { ebt, ENGINES, recordingAgent, listen, request } = require('./helpers')

for (const engine of ENGINES) {
  describe(`smoke (${engine.name})`, () => {
    it('records a web request and a reclassified one', async () => {
      const express = require('express')
      const { agent, waitFor } = recordingAgent(engine.options())
      const app = express()
      app.use(agent.middleware())
      app.get('/users/:id', (req, res) => res.send('ok'))
      app.get('/events', async (req, res) => {
        await new Promise((resolve) => setImmediate(resolve))
        assert.equal(ebt.setBackgroundTask(), true)
        res.send('ok')
      })
      const server = await listen(app)
      try {
        await request(server.url('/users/7?q=1'))
        await request(server.url('/events'))
        const records = await waitFor(2)
        assert.deepEqual(records.map((r) => [r.type, r.name]), [
          ['web', 'WebTransaction/Expressjs/GET//users/:id'],
          ['background', 'OtherTransaction/Expressjs/GET//events']
        ])
      } finally {
        await server.close()
      }
    })
  })
}

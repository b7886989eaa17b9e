'use strict'
// bench/bridge-timing.js, in the bridged bench server as bench/newrelic-bridge.js runs it: the
// bridge's own time and the agent's end are read per request over a window, and every request of
// the window is counted.
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const http = require('node:http')
const path = require('node:path')
const { request } = require('../bench/ipc')

const ROOT = path.join(__dirname, '..')

function startServer(variant) {
  const child = spawn(process.execPath, [path.join(ROOT, 'bench', 'server.js'), variant], {
    cwd: ROOT,
    env: { ...process.env, EBT_BENCH_TIME_BRIDGE: '1' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  return child
}

function get(port, route) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: `/${route}`, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode))
    }).on('error', reject)
  })
}

describe('bench/bridge-timing.js', () => {
  for (const route of ['sync', 'async']) {
    it(`times the bridge on the ${route} route, the agent's end apart, over the window only`, async () => {
      const child = startServer('package-newrelic-bridge')
      try {
        const { port } = await request(child, undefined, 'listening')
        // before the window: not counted
        for (let i = 0; i < 5; i++) assert.equal(await get(port, route), 200)
        await request(child, { type: 'start' }, 'started')
        const requests = 40
        for (let i = 0; i < requests; i++) assert.equal(await get(port, route), 200)
        const { own } = await request(child, { type: 'stop' }, 'stopped')
        assert.equal(own.requests, requests)
        // the agent's end is far more than a clock read; the bridge's own time is there, and less than the agent's end
        assert.ok(own.clockNs > 0 && own.agentEndNs > 10 * own.clockNs, JSON.stringify(own))
        assert.ok(own.bridgeNs > 0 && own.bridgeNs < own.agentEndNs, JSON.stringify(own))
        const report = await request(child, { type: 'report' }, 'reported')
        assert.equal(report.bridgeActive, true)
        // the timers changed nothing the bridge does: every other request recorded as background by New Relic
        assert.equal(report.nrBackground, report.reclassifyCalls)
      } finally {
        child.kill()
      }
    })
  }
})

'use strict'
// express-background-task/newrelic against the real New Relic agent, agents 12 and 13 side by side
// (npm aliases; 14 too when this Node is 22+, else its stub), offline: a dummy licence key and a local
// HTTPS collector started here (test/fixtures/newrelic-collector.js, a certificate made at start and
// trusted through NODE_EXTRA_CA_CERTS). Each scenario runs test/fixtures/newrelic-bridge.js in its own
// process (the agent must be required first); the agent connects, serves the requests, harvests at
// newrelic.shutdown({ collectPendingData: true }), and the assertions read its real metric_data,
// analytic_event_data and error_data payloads.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const http = require('node:http')
const { spawn } = require('node:child_process')
const { startCollector } = require('./fixtures/newrelic-collector')
const {
  AGENT_MAJORS,
  NEW_RELIC_TEST_ENV,
  PARENT_ENV,
  REQUESTS,
  runScenario,
  assertBridged,
  assertUntouched,
  assertAppUnaffected
} = require('./fixtures/newrelic-scenarios')

const NODE_MAJOR = Number(process.versions.node.split('.')[0])
const RUNNABLE = AGENT_MAJORS.filter((agent) => NODE_MAJOR >= agent.minNode)
const STUBBED = AGENT_MAJORS.filter((agent) => NODE_MAJOR < agent.minNode)

describe('bridgeNewRelic() with the real New Relic agent and a local collector', () => {
  let collector
  before(async () => {
    collector = await startCollector()
  })
  after(() => collector.close())

  for (const { major, module } of RUNNABLE) {
    for (const framework of ['express 5', 'express 4']) {
      it(`agent ${major}, ${framework}: requests marked background (flags before the middleware, req.newrelic, the helper, last write wins, aborted, failing) are harvested as OtherTransaction, tasks turned web as WebTransaction with Apdex, ignored ones not at all`, async () => {
        const result = await runScenario({ collector, framework, module })
        assert.equal(Number(result.version.split('.')[0]), major)
        assertBridged(result)
      })
    }

    it(`agent ${major}: stop() restores the agent: later requests and tasks are left as the agent makes them`, async () => {
      const result = await runScenario({ collector, module, mode: 'stopped' })
      assert.equal(result.bridge.active, true)
      assert.equal(result.restored, true, "the agent's Transaction.prototype.end, wrapped while bridged, is its own again")
      assertUntouched(result)
      // without the bridge, New Relic cannot keep a request out of Apdex from req.newrelic either
      const apdex = result.metrics.Apdex
      assert.equal(apdex[0] + apdex[1] + apdex[2], REQUESTS)
    })

    it(`agent ${major}: not loaded first (express required before newrelic): inactive with a reason, New Relic and the app as without the bridge`, async () => {
      const result = await runScenario({ collector, module, mode: 'late' })
      assert.equal(result.bridge.active, false)
      assert.match(result.bridge.reason, /^express was loaded before newrelic \(.*node_modules[\\/]express[\\/].*\), so the agent does not instrument it: require\('newrelic'\) first/)
      // the agent names requests by URL then: its Express instrumentation did not apply
      assert.equal(result.metrics['WebTransaction/NormalizedUri/*']?.[0], REQUESTS)
      assertUntouched(result, { routeNames: false })
      assertAppUnaffected(result)
    })

    it(`agent ${major}: newrelic first, then express, then the bridge: active`, async () => {
      const result = await runScenario({ collector, module, mode: 'express-first', framework: 'express 4' })
      assertBridged(result)
    })
  }

  for (const { major, module, minNode } of STUBBED) {
    it(`agent ${major} on Node ${NODE_MAJOR} (it needs Node ${minNode}+) loads as a stub: inactive with the reason, the app unaffected`, async () => {
      const result = await runScenario({ collector, module })
      assert.equal(result.bridge.active, false)
      assert.match(result.bridge.reason, new RegExp(`^the New Relic agent is not running: newrelic ${major}\\.\\d+\\.\\d+ needs Node >=${minNode} and this is Node v${NODE_MAJOR}\\.`))
      assertAppUnaffected(result)
      assert.deepEqual(result.methods, [], 'a stub reports nothing')
    })
  }

  it('stays inactive with a reason, changing nothing, when the agent is shaped otherwise', async () => {
    const result = await runScenario({ collector, mode: 'fake' })
    assert.equal(result.bridge.active, false)
    assert.match(result.bridge.reason, /shaped unlike the agents the bridge supports: agent\.tracer has no getTransaction/)
    assertUntouched(result)
  })

  it('stays inactive with a reason when the agent is disabled (the stub API), the app unaffected', async () => {
    const result = await runScenario({ collector, env: { NEW_RELIC_ENABLED: 'false' } })
    assert.deepEqual(result.bridge, { active: false, reason: 'the New Relic agent is not running (newrelic loaded its stub API: disabled, no licence key, or a Node version it does not support)' })
    assertAppUnaffected(result)
    assert.deepEqual(result.methods, [])
  })

  it('stays inactive with a reason without a licence key, the app unaffected', async () => {
    const result = await runScenario({ collector, env: { NEW_RELIC_LICENSE_KEY: '' } })
    assert.equal(result.bridge.active, false)
    assert.match(result.bridge.reason, /no licence key/)
    assertAppUnaffected(result)
  })

  it('a second bridge on the same agent throws ERR_EBT_ALREADY_REGISTERED; the first keeps working', async () => {
    const result = await runScenario({ collector, mode: 'twice' })
    assert.equal(result.secondError, 'ERR_EBT_ALREADY_REGISTERED')
    assertBridged(result)
  })
})

/** Send one request and read it all; resolves the status. */
function send(port, method, urlPath) {
  return new Promise((resolve, reject) => {
    http.request({ host: '127.0.0.1', port, path: urlPath, method, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode))
    }).on('error', reject).end()
  })
}

describe('examples/newrelic-bridge.js', () => {
  it('runs as is with the agent offline: New Relic names the stream OtherTransaction and the task turned web WebTransaction', async () => {
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'newrelic-bridge.js')], {
      env: { ...PARENT_ENV, ...NEW_RELIC_TEST_ENV, NEW_RELIC_HOST: '127.0.0.1', NEW_RELIC_PORT: '9', PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk) => { stderr += chunk })
    const waitFor = async (pattern) => {
      for (let waited = 0; waited < 20_000; waited += 20) {
        const match = stdout.match(pattern)
        if (match !== null) return match
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      throw new Error(`no ${pattern} in stdout:\n${stdout}\nstderr:\n${stderr}`)
    }
    try {
      const port = Number((await waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/))[1])
      assert.match(stdout, /^new relic bridge: active$/m)
      assert.equal(await send(port, 'GET', '/api/items/7'), 200)
      assert.equal(await send(port, 'GET', '/events'), 200)
      assert.equal(await send(port, 'POST', '/previews/7'), 201)
      await waitFor(/^new relic  WebTransaction\/Expressjs\/POST\/\/previews\/:id$/m)
      for (const line of [
        'new relic  WebTransaction/Expressjs/GET//api/items/:id',
        'new relic  OtherTransaction/Expressjs/GET//events',
        'new relic  WebTransaction/Nodejs/render-preview',
        'background OtherTransaction/Expressjs/GET//events',
        'web        WebTransaction/Nodejs/render-preview'
      ]) {
        assert.ok(stdout.split('\n').includes(line), `${line} missing from:\n${stdout}`)
      }
    } finally {
      child.kill()
    }
  })
})

describe('bridgeNewRelic() options', () => {
  // This process runs no agent: disabled, require('newrelic') gives the stub API, quietly.
  Object.assign(process.env, { NEW_RELIC_ENABLED: 'false', NEW_RELIC_NO_CONFIG_FILE: 'true', NEW_RELIC_LOG_ENABLED: 'false' })
  const { bridgeNewRelic } = require('express-background-task/newrelic')
  const { createAgent, ErrorCode } = require('express-background-task')

  it('rejects unknown keys and wrong types with coded TypeErrors', () => {
    assert.throws(() => bridgeNewRelic({ agnet: createAgent() }), { name: 'TypeError', code: ErrorCode.UNKNOWN_OPTION, message: /unknown bridgeNewRelic option 'agnet'/ })
    assert.throws(() => bridgeNewRelic({ agent: {} }), { name: 'TypeError', code: ErrorCode.OPTIONS_TYPE, message: /agent must be an agent from createAgent/ })
    assert.throws(() => bridgeNewRelic({ newrelic: 'newrelic' }), { name: 'TypeError', code: ErrorCode.OPTIONS_TYPE, message: /newrelic must be the newrelic module/ })
    assert.throws(() => bridgeNewRelic(42), { name: 'TypeError', code: ErrorCode.OPTIONS_TYPE })
    assert.throws(() => bridgeNewRelic([]), { name: 'TypeError', code: ErrorCode.OPTIONS_TYPE })
  })

  it('takes no options, undefined values, or an agent; without a running agent it is inactive and stop() is harmless', () => {
    for (const options of [undefined, {}, { agent: undefined, newrelic: undefined }, { agent: createAgent() }]) {
      const bridge = bridgeNewRelic(options)
      assert.equal(bridge.active, false)
      assert.match(bridge.reason, /not running/)
      bridge.stop()
      bridge.stop()
    }
  })

  it('is inactive with a reason for a module that lacks the internals', () => {
    assert.match(bridgeNewRelic({ newrelic: {} }).reason, /not running/)
    assert.match(bridgeNewRelic({ newrelic: { agent: { config: { license_key: 'x' } } } }).reason, /shaped unlike/)
  })

  it('imports from ESM as the same function', async () => {
    const esm = await import('express-background-task/newrelic')
    assert.equal(esm.bridgeNewRelic, bridgeNewRelic)
  })
})

'use strict'
// express-background-task/newrelic against the real New Relic agent (the installed major), offline: a
// dummy licence key and a collector that refuses connections; the agent still instruments, names and
// aggregates. Each scenario runs test/fixtures/newrelic-bridge.js in its own process (the agent must
// be required first) and reads the agent's own metric_data harvest payload and transaction events.
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const http = require('node:http')
const { execFile, spawn } = require('node:child_process')

const FIXTURE = path.join(__dirname, 'fixtures', 'newrelic-bridge.js')
/** The environment before the options tests below disable the agent in this process. */
const PARENT_ENV = { ...process.env }

const NEW_RELIC_OFFLINE = {
  NEW_RELIC_LICENSE_KEY: '0000000000000000000000000000000000000000',
  NEW_RELIC_APP_NAME: 'express-background-task bridge test',
  NEW_RELIC_NO_CONFIG_FILE: 'true',
  NEW_RELIC_LOG_ENABLED: 'false',
  NEW_RELIC_HOST: '127.0.0.1',
  NEW_RELIC_PORT: '9'
}

/** Run the fixture; resolves its JSON line. */
function runFixture(framework, mode, env = {}, { execPath = process.execPath } = {}) {
  return new Promise((resolve, reject) => {
    execFile(
      execPath,
      ['--preserve-symlinks', FIXTURE, framework, mode],
      { cwd: path.join(__dirname, '..'), env: { ...PARENT_ENV, ...NEW_RELIC_OFFLINE, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`))
        else resolve(JSON.parse(stdout.trim().split('\n').pop()))
      }
    )
  })
}

const calls = (result, name) => result.metrics[name]?.[0] ?? 0

/** Requests the fixture marks background, one way or another; and those that stay (or end) web. */
const BACKGROUND_REQUESTS = ['/events', '/flagged/:id', '/upstream', '/toggle-background', '/boom', '/aborted']
const WEB_REQUESTS = ['/web/:id', '/toggle-web', '/suppressed', '/with-task']
const TASKS = { 'Nodejs/nightly-report': 'background', 'Nodejs/from-request': 'background', 'Jobs/sync': 'background', 'Nodejs/failing': 'background', 'Nodejs/outer': 'background', 'Nodejs/render-preview': 'web' }

/** What New Relic must have recorded with the bridge active: the same on every supported agent major and Express major. */
function assertBridged(result) {
  assert.equal(result.bridge.active, true, result.bridge.reason)
  for (const route of BACKGROUND_REQUESTS) {
    const name = `Expressjs/GET/${route}`
    assert.equal(calls(result, `OtherTransaction/${name}`), 1, `OtherTransaction/${name}`)
    for (const web of [`WebTransaction/${name}`, `WebTransactionTotalTime/${name}`, `Apdex/${name}`]) assert.equal(result.metrics[web], undefined, web)
  }
  for (const route of WEB_REQUESTS) {
    const name = `Expressjs/GET/${route}`
    assert.equal(calls(result, `WebTransaction/${name}`), 1, `WebTransaction/${name}`)
    assert.equal(result.metrics[`OtherTransaction/${name}`], undefined)
  }
  for (const [name, type] of Object.entries(TASKS)) {
    const [kept, gone] = type === 'web' ? ['WebTransaction', 'OtherTransaction'] : ['OtherTransaction', 'WebTransaction']
    assert.equal(calls(result, `${kept}/${name}`), 1, `${kept}/${name}`)
    assert.equal(result.metrics[`${gone}/${name}`], undefined, `${gone}/${name}`)
  }
  // a task nested in a task shares New Relic's transaction of the outer one, as startBackgroundTransaction does
  assert.equal(result.metrics['OtherTransaction/Nodejs/inner'], undefined)
  // the rollups count each transaction by its final type: HttpDispatcher and Apdex only for web ones
  const web = WEB_REQUESTS.length + 1
  const background = BACKGROUND_REQUESTS.length + Object.keys(TASKS).length - 1
  assert.equal(calls(result, 'WebTransaction'), web)
  assert.equal(calls(result, 'HttpDispatcher'), web)
  assert.equal(calls(result, 'OtherTransaction/all'), background)
  // Apdex stats are [satisfying, tolerating, frustrating, ...]: suppressApdexMetric keeps /suppressed out
  const apdex = result.metrics.Apdex
  assert.equal(apdex[0] + apdex[1] + apdex[2], web - 1)
  assert.equal(result.metrics['Apdex/Expressjs/GET//suppressed'], undefined)
  assert.ok(result.metrics['Apdex/Nodejs/render-preview'], 'a task turned web counts in Apdex')
  assert.ok(result.metrics['Apdex/Expressjs/GET//web/:id'])
  // ignoreTransaction: New Relic records nothing for it either
  assert.ok(!Object.keys(result.metrics).some((name) => name.includes('/ignored')), 'an ignored request is recorded')
  // errors of a request marked background and of a failing task count as non-web errors
  assert.equal(calls(result, 'Errors/allOther'), 2)
  assert.equal(result.metrics['Errors/allWeb'], undefined)
  assert.equal(calls(result, 'Errors/OtherTransaction/Expressjs/GET//boom'), 1)
  assert.equal(calls(result, 'Errors/OtherTransaction/Nodejs/failing'), 1)
  // transaction events (what New Relic's UI lists) carry the same names
  assert.deepEqual(result.events, [
    ...BACKGROUND_REQUESTS.map((route) => `OtherTransaction/Expressjs/GET/${route}`),
    ...Object.keys(TASKS).filter((name) => TASKS[name] === 'background').map((name) => `OtherTransaction/${name}`),
    ...WEB_REQUESTS.map((route) => `WebTransaction/Expressjs/GET/${route}`),
    'WebTransaction/Nodejs/render-preview'
  ].sort())
  assert.equal(result.statuses['/boom'], 500)
}

/** New Relic as it is without the bridge: every request web, tasks unseen. */
function assertUntouched(result) {
  const requests = BACKGROUND_REQUESTS.length + WEB_REQUESTS.length + 1
  assert.equal(calls(result, 'WebTransaction'), requests)
  assert.equal(calls(result, 'HttpDispatcher'), requests)
  assert.equal(result.metrics['OtherTransaction/all'], undefined)
  for (const route of BACKGROUND_REQUESTS) assert.equal(calls(result, `WebTransaction/Expressjs/GET/${route}`), 1, route)
  assert.equal(result.events.filter((name) => name.startsWith('OtherTransaction/')).length, 0)
}

describe('bridgeNewRelic() with the installed New Relic agent (offline)', () => {
  for (const framework of ['express 5', 'express 4']) {
    it(`records requests marked background (flags before the middleware, req.newrelic, the helper, last write wins) as OtherTransaction, tasks turned web as WebTransaction with Apdex, on ${framework}`, async () => {
      const result = await runFixture(framework, 'bridge')
      assert.match(result.version, /^13\./)
      assertBridged(result)
    })
  }

  it('stop() restores the agent: later requests and tasks are left as the agent makes them', async () => {
    const result = await runFixture('express 5', 'stopped')
    assert.equal(result.bridge.active, true)
    assertUntouched(result)
    // without the bridge, New Relic cannot keep a request out of Apdex from req.newrelic either
    const apdex = result.metrics.Apdex
    assert.equal(apdex[0] + apdex[1] + apdex[2], BACKGROUND_REQUESTS.length + WEB_REQUESTS.length + 1)
  })

  it('stays inactive with a reason, changing nothing, when the agent is shaped otherwise', async () => {
    const result = await runFixture('express 5', 'fake')
    assert.equal(result.bridge.active, false)
    assert.match(result.bridge.reason, /shaped unlike the agents the bridge supports: agent\.tracer has no getTransaction/)
    assertUntouched(result)
  })

  it('stays inactive with a reason when the agent is disabled (the stub API), the app unaffected', async () => {
    const result = await runFixture('express 5', 'bridge', { NEW_RELIC_ENABLED: 'false' })
    assert.deepEqual(result.bridge, { active: false, reason: 'the New Relic agent is not running (newrelic loaded its stub API: disabled, no licence key, or a Node version it does not support)' })
    assert.equal(result.statuses['/web/1'], 200)
    assert.equal(result.statuses['/boom'], 500)
  })

  it('stays inactive with a reason without a licence key, the app unaffected', async () => {
    const result = await runFixture('express 5', 'bridge', { NEW_RELIC_LICENSE_KEY: '' })
    assert.equal(result.bridge.active, false)
    assert.match(result.bridge.reason, /no licence key/)
    assert.equal(result.statuses['/events'], 200)
  })

  it('a second bridge on the same agent throws ERR_EBT_ALREADY_REGISTERED; the first keeps working', async () => {
    const result = await runFixture('express 5', 'twice')
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
      env: { ...PARENT_ENV, ...NEW_RELIC_OFFLINE, PORT: '0' },
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

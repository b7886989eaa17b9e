'use strict'
// Naming with other instrumentations loaded (issue 9 item 1, PITFALLS 20): OpenTelemetry's
// instrumentation-express (with the SDK and instrumentation-http) and the New Relic agent (offline:
// a dummy licence key, a collector that refuses connections; it still instruments and names) wrap
// router layers and handles. Each is loaded before and after this package, in a child process per
// combination, since they patch Express as it is required; Express 5 and 4 in each. With New Relic
// running, its own transaction names are compared with this package's, request by request.
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { execFile } = require('node:child_process')
const { ENGINES } = require('./helpers')

const FIXTURE = path.join(__dirname, 'fixtures', 'naming-instrumented.js')

const NEW_RELIC_OFFLINE = {
  NEW_RELIC_LICENSE_KEY: '0000000000000000000000000000000000000000',
  NEW_RELIC_APP_NAME: 'express-background-task naming test',
  NEW_RELIC_NO_CONFIG_FILE: 'true',
  NEW_RELIC_LOG_ENABLED: 'false',
  NEW_RELIC_HOST: '127.0.0.1',
  NEW_RELIC_PORT: '9'
}

/** What each request of the fixture must be named, on both Express majors. */
const EXPECTED = {
  '/org/1/users/2': '/org/:orgId/users/:id',
  '/sub/t1/r/2': '/sub/:tenant/r/:id',
  '/sub/t1/inner/x2/deep/3': '/sub/:tenant/inner/:x/deep/:d',
  '/sub/t1/raw/k2/x': '/sub/:tenant/raw/:kind',
  '/sub/t1/boom/2': '/sub/:tenant/boom/:id',
  '/holder/h1/app/a2/deep/3': '/holder/:h/app/:appId/deep/:d',
  '/test': '/test',
  '/hit/k1': '/'
}

function runFixture(args, env) {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--preserve-symlinks', FIXTURE, ...args],
      { cwd: path.join(__dirname, '..'), env: { ...process.env, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`))
        else resolve(stdout.trim().split('\n').map((line) => JSON.parse(line)))
      }
    )
  })
}

for (const engine of ENGINES) {
  describe(`naming with other Express instrumentations loaded (${engine.name})`, () => {
    for (const [instrumentation, label] of [['otel', "OpenTelemetry's instrumentation-express"], ['newrelic', 'the New Relic agent']]) {
      for (const order of ['before', 'after']) {
        it(`names sub-apps, routers and middleware mounts with ${label} loaded ${order} this package`, async () => {
          const env = instrumentation === 'newrelic' ? NEW_RELIC_OFFLINE : {}
          const lines = await runFixture([instrumentation, order, engine.name], env)
          const urls = Object.keys(EXPECTED)
          assert.deepEqual(lines.map((line) => `${line.framework} ${line.url}`), [
            ...urls.map((url) => `express 5 ${url}`),
            ...urls.map((url) => `express 4 ${url}`)
          ])
          for (const line of lines) {
            const template = EXPECTED[line.url]
            assert.equal(line.name, `WebTransaction/Expressjs/GET/${template}`, `${line.framework} ${line.url}`)
            assert.equal(line.path, template)
            assert.equal(line.status, line.url.includes('/boom/') ? 500 : 200)
            // the agent names every one of these requests as this package does
            if (instrumentation === 'newrelic') assert.equal(line.newrelic, line.name, `New Relic's name for ${line.framework} ${line.url}`)
          }
        })
      }
    }
  })
}

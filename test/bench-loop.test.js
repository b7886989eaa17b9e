'use strict'
// Keeps bench/loop.js (the socketless loop bench/instructions.js --socketless counts) alive: each
// variant it measures really serves its requests, keeps the request's context, and counts them.
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')

const LOOP = path.join(__dirname, '..', 'bench', 'loop.js')
const WARMUP = 20
const REQUESTS = 40
/** bench/loop.js serves this many more after its warm-up, before it counts. */
const SETTLE = 1000

/** Run the loop; resolves with its exit code and the report it prints last on stderr. */
function runLoop(variant, route) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LOOP, variant, route, String(WARMUP), String(REQUESTS)], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk) => (stderr += chunk))
    child.on('error', reject)
    child.on('exit', (code) => {
      const last = stderr.trim().split('\n').pop()
      let report
      try {
        report = JSON.parse(last)
      } catch {
        return reject(new Error(`${variant} ${route} exited ${code} without a report: ${stderr.slice(-2000)}`))
      }
      resolve({ code, report })
    })
  })
}

describe('bench/loop.js', { concurrency: true }, () => {
  for (const route of ['sync', 'async']) {
    for (const variant of ['bare', 'floor', 'floor-state', 'package']) {
      it(`serves ${variant} /${route} in context`, async () => {
        const { code, report } = await runLoop(variant, route)
        const served = WARMUP + SETTLE + REQUESTS
        assert.equal(code, 0)
        assert.equal(report.routed, served)
        assert.equal(report.misses, 0)
        if (variant === 'package') {
          // every other request is marked background, and the metrics count each request once
          assert.equal(report.reclassified, served / 2)
          assert.equal(report.metricsWeb + report.metricsBackground, served)
          assert.equal(report.metricsBackground, served / 2)
        }
      })
    }
  }

  it('runs the New Relic agent with the bridge, which reclassifies what the package marked', async () => {
    const { code, report } = await runLoop('package-newrelic-bridge', 'sync')
    const served = WARMUP + SETTLE + REQUESTS
    assert.equal(code, 0)
    assert.equal(report.routed, served)
    assert.equal(report.misses, 0)
    assert.equal(report.bridgeActive, true)
    assert.equal(report.nrBackground, served / 2)
  })
})

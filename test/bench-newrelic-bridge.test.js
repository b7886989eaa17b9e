'use strict'
// bench/newrelic-bridge.js's split of a CPU profile into the bridge's share and the seam's, on a profile made to the shape V8's has.
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const { split } = require('../bench/newrelic-bridge')

const BRIDGE = 'file:///app/node_modules/express-background-task/dist/newrelic/bridge.js'
const AGENT_TRANSACTION = 'file:///app/node_modules/newrelic/lib/transaction/index.js'
const AGENT_TRACE = 'file:///app/node_modules/newrelic/lib/transaction/trace/index.js'
const TIMING = 'file:///app/bench/bridge-timing.js'

/** A profile from a call tree: `[name, url, self µs, children]`, one sample per node carrying its self time. */
function profileOf(tree) {
  const nodes = []
  const samples = []
  const timeDeltas = []
  const add = ([functionName, url, self, children = []]) => {
    const node = { id: nodes.length + 1, callFrame: { functionName, url }, children: [] }
    nodes.push(node)
    if (self > 0) {
      samples.push(node.id)
      timeDeltas.push(self)
    }
    node.children = children.map(add)
    return node.id
  }
  add(tree)
  return { nodes, samples, timeDeltas }
}

describe('bench/newrelic-bridge.js split()', () => {
  it("counts the bridge's frames and the agent functions it calls, not the agent's own end even when the profiler left that frame out", () => {
    const profile = profileOf(['(root)', '', 0, [
      ['(idle)', '', 500],
      ['handle', 'file:///app/node_modules/express/lib/application.js', 600],
      ['buildRecord', 'file:///app/node_modules/express-background-task/dist/record.js', 20],
      ['onEnd', BRIDGE, 10, [
        ['finish', BRIDGE, 30, [
          ['finalizeName', AGENT_TRANSACTION, 15, [['getFullName', AGENT_TRANSACTION, 5]]],
          // the agent's end, as sampled: once with its frame, once without it (its callee right under the bridge's frame)
          ['end', AGENT_TRANSACTION, 100, [['generateSpanEvents', AGENT_TRACE, 40]]],
          ['generateSpanEvents', AGENT_TRACE, 40],
          ['getStore', 'node:async_hooks', 5]
        ]]
      ]]
    ]])
    const totals = split(profile)
    assert.equal(totals.busy, 600 + 20 + 10 + 30 + 15 + 5 + 100 + 40 + 40 + 5)
    // onEnd, finish, finalizeName with what it calls, and Node's getStore
    assert.equal(totals.bridge, 10 + 30 + 15 + 5 + 5)
    assert.equal(totals.seam, 20)
  })

  it("counts bench/bridge-timing.js's clocks as neither the bridge's nor the seam's, and what they wrap as before", () => {
    const profile = profileOf(['(root)', '', 0, [
      ['publish', 'node:diagnostics_channel', 4, [
        // the subscribers before and after the bridge's
        ['before', TIMING, 3],
        ['onEnd', BRIDGE, 10, [
          ['finish', BRIDGE, 30, [
            // the agent's end, wrapped to be timed: the wrapper's own time is the clocks'
            ['timedCall', TIMING, 7, [['end', AGENT_TRANSACTION, 100, [['generateSpanEvents', AGENT_TRACE, 40]]]]],
            ['timedCall', TIMING, 6, [['generateSpanEvents', AGENT_TRACE, 20]]]
          ]]
        ]],
        ['after', TIMING, 2]
      ]]
    ]])
    const totals = split(profile)
    assert.equal(totals.busy, 4 + 3 + 10 + 30 + 7 + 100 + 40 + 6 + 20 + 2)
    assert.equal(totals.bridge, 10 + 30)
    assert.equal(totals.seam, 4)
  })
})

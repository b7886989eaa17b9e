'use strict'
// What bridgeNewRelic() adds per request to the New Relic agent and this package, read from CPU
// profiles of the bridged server itself. Two servers' CPU time cannot tell 2% apart here: the
// agent's cost per request differs from one process to the next by more than that (the paired
// `npm run bench -- --only bridge-vs-agent` row has windows from 0.86 to 1.25 on this machine), and
// so do its instruction counts, which the agent's late JIT compilation moves by ±10%.
//
//   node bench/newrelic-bridge.js [--rounds 3] [--seconds 10] [--warmup 8] [--connections 16] [--keep <dir>]
//   (--keep: leave the .cpuprofile files there, to open in Chrome's DevTools)
//
// Per round, route and workload: a fresh bench/server.js `package-newrelic-bridge` (Express 5, the
// package, the agent offline, the bridge) is loaded by autocannon for --warmup seconds, then profiled in-process
// (V8's sampling profiler through node:inspector, every 100 µs) for --seconds under the same load.
// The busy time of the profile is split by frames:
// - the bridge: every frame of dist/newrelic/ and what it calls (the agent's name computation when
//   a type changes, its context and transaction lookups), but not the agent's own Transaction end it
//   hands back to, which runs with or without the bridge. The profiler leaves that end's own frame
//   out of some samples (with and without inlining), so what it calls (span events, the sampling
//   decision) would show right under the bridge's: an agent frame there counts only when it is one
//   the bridge calls, or is reached through one;
// - the seam the bridge makes the package feed: building the frozen record and publishing on
//   diagnostics_channel, which any subscriber costs.
// Their sum ÷ the main thread's busy time is their share of the main thread. A request's CPU is
// more than that: V8's other threads (concurrent and parallel GC, background compilation) do
// 12-16% of it with the agent, and the bridge runs on the main thread only. So the share of a
// request's CPU is that share × the main thread's part of the process's CPU in the same window
// (per-thread CPU from /proc, bench/thread-cpu.js; the profiler's own thread left out). Medians
// over rounds.
// Two workloads: every other request marked background (half of New Relic's transactions change
// type, so the agent names them again), and none marked (the bridge pairs, waits and hands back,
// but changes nothing): the difference is what a change of type costs.
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')
const autocannon = require('autocannon')
const { request } = require('./ipc')

const ROUTES = ['sync', 'async']
/** Which requests the server marks background, and the variant that does it (bench/server.js). */
const WORKLOADS = [
  { marked: 'every other', variant: 'package-newrelic-bridge' },
  { marked: 'none', variant: 'package-newrelic-bridge~web' }
]

// required by a test for split(): no options then
const { values } = parseArgs({
  args: require.main === module ? process.argv.slice(2) : [],
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '8' },
    connections: { type: 'string', default: '16' },
    keep: { type: 'string' }
  }
})
const [ROUNDS, SECONDS, WARMUP, CONNECTIONS] = [values.rounds, values.seconds, values.warmup, values.connections].map(Number)

const isBridge = (frame) => /[\\/]dist[\\/]newrelic[\\/]/.test(frame.url)
const isAgentEnd = (frame) => /newrelic[\\/]lib[\\/]transaction[\\/]index\.js$/.test(frame.url) && frame.functionName === 'end'
const isAgent = (frame) => /[\\/]node_modules[\\/](@newrelic[\\/][^\\/]+|newrelic)[\\/]/.test(frame.url)
/** The agent's functions the bridge calls per transaction (lib/newrelic/bridge.ts). */
const CALLED_BY_BRIDGE = new Set(['getTransaction', 'getContext', 'startBackgroundTransaction', 'noticeError', 'finalizeName', 'setForceIgnore'])
const isSeam = (frame) => /[\\/]dist[\\/](record|channels)\.js$/.test(frame.url) || frame.url === 'node:diagnostics_channel'
const IDLE = new Set(['(idle)', '(program)'])
/** bench/bridge-timing.js's clocks, around the bridge's frames and the seam's: neither's. */
const isTiming = (frame) => /[\\/]bench[\\/]bridge-timing\.js$/.test(frame.url)

/** The profile's busy time, and the parts of it in the bridge's frames and in the seam's. */
function split(profile) {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map()
  for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0))
  const totals = { busy: 0, bridge: 0, seam: 0 }
  const stack = [{ id: profile.nodes[0].id, bridge: false, agentEnd: false, called: false, agentOwn: false, seam: false }]
  while (stack.length > 0) {
    const { id, ...within } = stack.pop()
    const node = nodes.get(id)
    const frame = node.callFrame
    const own = isBridge(frame)
    const bridge = within.bridge || own
    const agentEnd = within.agentEnd || (bridge && isAgentEnd(frame))
    // under the bridge's frames: the agent's functions it calls, and the agent's own end with its frame left out
    const agent = bridge && !own && isAgent(frame)
    const called = !own && (within.called || (agent && CALLED_BY_BRIDGE.has(frame.functionName)))
    const agentOwn = !own && (within.agentOwn || (agent && !called))
    const seam = within.seam || isSeam(frame)
    const time = self.get(id) ?? 0
    if (!IDLE.has(frame.functionName)) totals.busy += time
    const counted = !isTiming(frame)
    if (counted && bridge && !agentEnd && !agentOwn) totals.bridge += time
    else if (counted && seam && !bridge) totals.seam += time
    for (const child of node.children ?? []) stack.push({ id: child, bridge, agentEnd, called, agentOwn, seam })
  }
  return totals
}

async function measure(route, workload, dir) {
  // with the bridge's own time read by clocks around it too (bench/bridge-timing.js)
  const env = { ...process.env, EBT_BENCH_TIME_BRIDGE: '1' }
  const child = spawn(process.execPath, [path.join(__dirname, 'server.js'), workload.variant], { cwd: path.join(__dirname, '..'), env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  try {
    const { port } = await request(child, undefined, 'listening')
    const url = `http://127.0.0.1:${port}/${route}`
    await autocannon({ url, connections: CONNECTIONS, duration: WARMUP })
    await request(child, { type: 'profile-start' }, 'profiling')
    await request(child, { type: 'start' }, 'started')
    const load = autocannon({ url, connections: CONNECTIONS, duration: SECONDS })
    const result = await load
    const stopped = await request(child, { type: 'stop' }, 'stopped')
    const file = path.join(dir, `${route}-${Date.now()}.cpuprofile`)
    const profiled = await request(child, { type: 'profile-stop', file }, 'profiled')
    if (profiled.error) throw new Error(`profiler: ${profiled.error}`)
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`${route}: ${result.non2xx} non-2xx, ${result.errors} errors`)
    const report = await request(child, { type: 'report' }, 'reported')
    if (report.bridgeActive !== true) throw new Error('the bridge is not active')
    // the workload is what it says: New Relic recorded the marked half as background, or none
    const background = workload.marked === 'none' ? 0 : report.reclassifyCalls
    if (Math.abs(report.nrBackground - background) > report.served / 100) throw new Error(`${workload.marked} marked: New Relic recorded ${report.nrBackground} of ${report.served} requests as background`)
    const totals = split(JSON.parse(fs.readFileSync(file, 'utf8')))
    if (stopped.threads === undefined) throw new Error('no CPU time by thread: this measure needs Linux\'s /proc')
    const { main, others, profiler } = stopped.threads
    // the timed µs are wall time on the main thread, like the profile's: a share of its busy time, then taken over the same way
    const busyMicros = totals.busy / stopped.requests
    return {
      cpuPerRequest: stopped.cpuMicros / stopped.requests,
      requests: stopped.requests,
      bridge: totals.bridge / totals.busy,
      seam: totals.seam / totals.busy,
      mainPart: main / (main + others),
      profilerPart: profiler / (main + others + profiler),
      timedMicros: stopped.own.bridgeNs / 1000,
      timed: stopped.own.bridgeNs / 1000 / busyMicros,
      clockNs: stopped.own.clockNs
    }
  } finally {
    if (child.connected) child.send({ type: 'exit' })
    setTimeout(() => child.kill('SIGKILL'), 5000).unref()
  }
}

const median = (list) => {
  const sorted = [...list].sort((a, b) => a - b)
  const middle = sorted.length / 2
  return sorted.length % 2 === 1 ? sorted[Math.floor(middle)] : (sorted[middle - 1] + sorted[middle]) / 2
}
const percent = (share) => `${(share * 100).toFixed(2)}%`

async function main() {
  if (!fs.existsSync(path.join(__dirname, '..', 'dist', 'newrelic', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first')
  const dir = values.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ebt-nr-bridge-'))
  fs.mkdirSync(dir, { recursive: true })
  const cells = ROUTES.flatMap((route) => WORKLOADS.map((workload) => ({ route, workload, samples: [] })))
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // the cells alternate which goes first
      for (const cell of round % 2 === 0 ? cells : [...cells].reverse()) {
        const sample = await measure(cell.route, cell.workload, dir)
        cell.samples.push(sample)
        console.error(`round ${round + 1}/${ROUNDS} /${cell.route}, ${cell.workload.marked} marked: ${sample.requests} requests, ${sample.cpuPerRequest.toFixed(0)} µs CPU each, bridge ${percent(sample.bridge)}, seam ${percent(sample.seam)}, main thread ${percent(sample.mainPart)} of the CPU, the profiler's thread ${percent(sample.profilerPart)}; timed: the bridge ${sample.timedMicros.toFixed(2)} µs (${percent(sample.timed)} of the main thread), a clock read ${sample.clockNs.toFixed(0)} ns`)
      }
    }
  } finally {
    if (values.keep === undefined) fs.rmSync(dir, { recursive: true, force: true })
  }
  const version = (name) => require(`${name}/package.json`).version
  console.log(`node ${process.version}, newrelic ${version('newrelic')} (offline), express ${version('express')}; ${ROUNDS} rounds per route and workload, each a fresh server: ${WARMUP} s of warm-up, then a ${SECONDS} s profile (100 µs sampling) under ${CONNECTIONS} connections`)
  console.log('')
  console.log('| Route | requests marked background | CPU µs / request (agent + package + bridge) | the bridge | the seam (record, publish) | both, of the main thread | the main thread, of the CPU | the bridge adds, of the CPU | the bridge timed, µs / request | timed + the seam, of the CPU |')
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  const range = (list) => `${percent(median(list))} (${percent(Math.min(...list))}–${percent(Math.max(...list))})`
  for (const { route, workload, samples } of cells) {
    const ofMain = samples.map((s) => s.bridge + s.seam)
    const ofCpu = samples.map((s) => (s.bridge + s.seam) * s.mainPart)
    const timed = samples.map((s) => (s.timed + s.seam) * s.mainPart)
    console.log(`| ${route} | ${workload.marked} | ${median(samples.map((s) => s.cpuPerRequest)).toFixed(0)} | ${percent(median(samples.map((s) => s.bridge)))} | ${percent(median(samples.map((s) => s.seam)))} | ${range(ofMain)} | ${percent(median(samples.map((s) => s.mainPart)))} | ${range(ofCpu)} | ${median(samples.map((s) => s.timedMicros)).toFixed(1)} | ${range(timed)} |`)
  }
  console.log('\nThe bridge and the seam: shares of the main thread\'s busy time in the measured window (what the agent inlines into their frames counts as theirs; the garbage collection of what they allocate does not). Of the CPU: times the main thread\'s part of the process\'s CPU in the window, the profiler\'s thread left out. Timed: the bridge\'s own time by clocks around it, the agent\'s end taken out exactly and the clock reads too (bench/bridge-timing.js), as a share of the main thread\'s busy time per request, plus the seam\'s from the profile, taken over to the CPU as above.')
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}

module.exports = { split }

'use strict'
// Benchmark runner (`npm run bench`): server CPU time per request of each variant, measured side by side with its own bare Express partner.
//
//   npm run bench                        full run (4 to 8 minutes here, depending on what else runs)
//   npm run bench -- --quick             a smoke run (under a minute)
//   options: --node <binary>             servers and load generator run under this Node (default: this one)
//            --only <variant,...>        a subset: bare (the control), als, floor, floor-state, package, package-cls, package-prometheus, package-dashboard,
//                                        package-newrelic, package-newrelic-bridge (the agent offline, without/with the bridge),
//                                        bridge-vs-agent (the bridge row paired with the agent row instead of bare Express) and
//                                        agent-vs-agent (its control: the agent row paired with itself), the parts of
//                                        the bridge each paired with the agent (seam-vs-agent, wrap-vs-agent,
//                                        bridge-web-vs-agent), cls-raw,
//                                        http-context, otel, otel-package-alone, otel-package, and package-before (EBT_BENCH_BEFORE=<a built checkout>, e.g. the
//                                        commit before the diagnostics-channel seam, to show what the unsubscribed seam costs)
//            --json <file>               also write every sample and the settings as JSON
//            --variant-flags="<flags>"   Node flags for the variant's servers only, e.g. --variant-flags="--cpu-prof --cpu-prof-dir=/tmp/prof"
//            --passes <n> --windows <n per route and pass> --window <seconds> --warmup <requests per route>
//            --warmup-cap <seconds a warm-up may take at most> (a slow variant, like the New Relic agent's,
//                                        needs more than the default 5 s to reach the requests asked for)
//            --connections <n per server>       override the mode's settings
//
// Why pairs: on this kind of shared machine, solo runs of the same server move by ±15%, so the
// primary figure is a ratio taken at the same time. Each pass starts fresh processes: the variant's
// server and a bare Express partner, both pinned to one core (taskset; the idlest one at the start),
// loaded at once, with the same settings, by one autocannon each from a load generator pinned to
// the other core. Each server reads its own process.cpuUsage() (user + system) over the same window
// and counts the requests it served; a slow spell of the machine falls on both alike and cancels
// out of variant CPU/req ÷ partner CPU/req. What does not cancel is noise of a few % per window and
// per process, hence many windows over fresh pairs and medians. Passes rotate the variants, the
// route order and which server is loaded first. The control row pairs bare with bare: it must read
// 1.00, and it tells how far to trust the other rows.
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')
const { request } = require('./ipc')

const ROOT = path.join(__dirname, '..')
const ROUTES = ['sync', 'async']
const CONTROL_TOLERANCE = 0.03
// The measured servers and their load generator run at this niceness when allowed (root).
const NICENESS = -10
const SETTLE_REQUESTS = 300

const VARIANTS = [
  { key: 'bare', short: 'control', label: 'control: bare Express 5 (vs bare)' },
  { key: 'als', short: 'bare ALS', label: 'bare AsyncLocalStorage middleware' },
  { key: 'floor', short: 'floor', label: 'floor: bare ALS + one emit wrapper per prototype, keys on req/res' },
  { key: 'floor-state', short: 'lowered floor', label: "lowered floor: the same, key on the request's readable state" },
  { key: 'package', short: 'package', label: 'express-background-task, default engine, metrics on' },
  { key: 'package-cls', short: 'package cls-hooked', label: "express-background-task, `context: 'cls-hooked'`" },
  { key: 'package-prometheus', short: 'package + Prometheus', label: 'express-background-task + Prometheus exporter (prom-client)' },
  { key: 'package-newrelic', short: 'package + New Relic', label: 'express-background-task under the New Relic agent (offline)' },
  { key: 'package-newrelic-bridge', short: 'package + NR + bridge', label: 'express-background-task under the New Relic agent + bridgeNewRelic()' },
  // paired with the agent alone, not with bare Express: the bridge's own cost, read straight off the ratio
  { key: 'bridge-vs-agent', server: 'package-newrelic-bridge', partner: 'package-newrelic', short: 'bridge ÷ agent', label: 'package + New Relic agent + bridgeNewRelic(), paired with package + agent (**not** bare)' },
  // its control: the agent paired with itself reads 1.00 unless the two processes of a pair differ by more than chance
  { key: 'agent-vs-agent', server: 'package-newrelic', partner: 'package-newrelic', short: 'agent ÷ agent', label: 'control: package + New Relic agent, paired with the same (**not** bare)' },
  // parts of the bridge's cost, each paired with the agent alone (bench/server.js, setupPackageNewRelic)
  { key: 'seam-vs-agent', server: 'package-newrelic~seam', partner: 'package-newrelic', short: 'seam ÷ agent', label: 'package + agent + a do-nothing subscriber on the start and end channels, paired with package + agent' },
  { key: 'wrap-vs-agent', server: 'package-newrelic~wrap', partner: 'package-newrelic', short: 'wrap ÷ agent', label: "package + agent + a pass-through wrapper on the agent's Transaction end, paired with package + agent" },
  { key: 'bridge-web-vs-agent', server: 'package-newrelic-bridge~web', partner: 'package-newrelic~web', short: 'bridge ÷ agent, none marked', label: 'package + agent + bridge, no request marked background, paired with the same without the bridge' },
  { key: 'package-dashboard', short: 'package + dashboard', label: 'express-background-task + dashboard subscribed (no page open)' },
  // only with EBT_BENCH_BEFORE=<a built checkout>: the package before a change, next to `package`
  { key: 'package-before', short: 'package before', label: 'express-background-task at EBT_BENCH_BEFORE', optIn: 'EBT_BENCH_BEFORE' },
  { key: 'cls-raw', short: 'cls-hooked ns', label: 'raw cls-hooked namespace (`ns.run` + `bindEmitter`)' },
  { key: 'http-context', short: 'express-http-context', label: 'express-http-context 2' },
  { key: 'otel', short: 'OpenTelemetry', label: 'OpenTelemetry SDK + http + express instrumentations' },
  { key: 'otel-package-alone', short: 'OpenTelemetry + package', label: 'the same + express-background-task (metrics on), no integration' },
  { key: 'otel-package', short: 'OpenTelemetry + package + integration', label: 'the same + express-background-task/opentelemetry' }
]
const MODES = {
  // warmup: requests per route and server, stopped after warmupCap seconds on a machine too busy to serve them.
  quick: { passes: 1, warmup: 1500, warmupCap: 2.5, windows: 2, window: 0.8, connections: 16 },
  full: { passes: 6, warmup: 2000, warmupCap: 5, windows: 2, window: 1.25, connections: 16 }
}

const children = new Set()

// Never leave servers behind: on any exit, error or Ctrl-C, kill what is still running.
process.on('exit', killChildren)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => process.exit(130))
main().catch((err) => {
  console.error(err?.stack ?? err)
  // A server that started while its partner failed would keep the IPC channel, and so this process, alive.
  killChildren()
  process.exitCode = 1
})

function parseOptions() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      node: { type: 'string', default: process.execPath },
      only: { type: 'string' },
      json: { type: 'string' },
      'variant-flags': { type: 'string', default: '' },
      passes: { type: 'string' },
      windows: { type: 'string' },
      window: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      'warmup-cap': { type: 'string' }
    }
  })
  const settings = { ...MODES[values.quick ? 'quick' : 'full'] }
  for (const [option, key] of [['passes', 'passes'], ['windows', 'windows'], ['window', 'window'], ['warmup', 'warmup'], ['connections', 'connections'], ['warmup-cap', 'warmupCap']]) {
    if (values[option] === undefined) continue
    const n = Number(values[option])
    if (!(n > 0)) throw new Error(`--${option} must be a positive number, got ${values[option]}`)
    settings[key] = key === 'window' || key === 'warmupCap' ? n : Math.round(n)
  }
  let variants = VARIANTS.filter((variant) => variant.optIn === undefined || process.env[variant.optIn])
  if (values.only !== undefined) {
    const keys = values.only.split(',').map((key) => key.trim()).filter(Boolean)
    const unknown = keys.filter((key) => !VARIANTS.some((variant) => variant.key === key))
    if (unknown.length > 0) throw new Error(`--only: unknown variant ${unknown.join(', ')}; known: ${VARIANTS.map((v) => v.key).join(', ')}`)
    variants = VARIANTS.filter((variant) => keys.includes(variant.key))
  }
  const variantFlags = values['variant-flags'].split(' ').filter(Boolean)
  return { mode: values.quick ? 'quick' : 'full', settings, variants, node: values.node, json: values.json, variantFlags }
}

// ----------------------------------------------------------------------------- child processes

/**
 * Which core the servers get and which the load generator gets, or why pinning is impossible (then
 * the run goes on unpinned, with a warning). The servers get the idlest core over a second before
 * the run: on a shared machine other jobs are often pinned to cpu 0 and would halve their share.
 */
async function chooseCores() {
  const cpus = allowedCpus()
  if (cpus.length < 2) return { pin: false, why: 'fewer than 2 CPUs' }
  const busy = await cpuBusyShares(cpus, 1000)
  const [serverCpu, loadCpu] = [...cpus].sort((a, b) => (busy[a] ?? 0) - (busy[b] ?? 0))
  const probe = spawnSync('taskset', ['-c', `${serverCpu},${loadCpu}`, 'true'])
  if (probe.error || probe.status !== 0) return { pin: false, why: `taskset failed (${probe.error?.code ?? probe.stderr.toString().trim()})` }
  return { pin: true, serverCpu: String(serverCpu), loadCpu: String(loadCpu), busy }
}

/** The CPUs this process may run on (Linux's Cpus_allowed_list), else all of them. */
function allowedCpus() {
  try {
    const list = fs.readFileSync('/proc/self/status', 'utf8').match(/^Cpus_allowed_list:\s*(\S+)/m)[1]
    return list.split(',').flatMap((range) => {
      const [first, last = first] = range.split('-').map(Number)
      return Array.from({ length: last - first + 1 }, (_, i) => first + i)
    })
  } catch {
    return os.cpus().map((_, i) => i)
  }
}

/** Share of time each CPU was busy over `ms`, from /proc/stat; empty where that cannot be read. */
async function cpuBusyShares(cpus, ms) {
  function read() {
    const times = {}
    try {
      for (const line of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
        const match = /^cpu(\d+)\s+(.*)$/.exec(line)
        if (!match) continue
        const fields = match[2].split(/\s+/).map(Number)
        // Fields 4 and 5 are idle and iowait.
        times[match[1]] = { idle: fields[3] + fields[4], total: fields.reduce((sum, n) => sum + n, 0) }
      }
    } catch {}
    return times
  }
  const before = read()
  await new Promise((resolve) => setTimeout(resolve, ms))
  const after = read()
  const busy = {}
  for (const cpu of cpus) {
    const [a, b] = [before[cpu], after[cpu]]
    if (a && b && b.total > a.total) busy[cpu] = 1 - (b.idle - a.idle) / (b.total - a.total)
  }
  return busy
}

/**
 * Whether children can run at a raised priority (root, or CAP_SYS_NICE). On a busy shared machine
 * that about halved the window-to-window noise of the ratios here: the pair keeps its core instead
 * of sharing it with whatever else runs there.
 */
function canRaisePriority() {
  const probe = spawnSync('nice', ['-n', String(NICENESS), 'true'], { encoding: 'utf8' })
  return !probe.error && probe.status === 0 && probe.stderr === ''
}

/** Spawn `node script` as [nice -n niceness] [taskset -c cpu] node ..., so every thread of it inherits both. */
function startChild(env, script, args, { cpu, niceness, nodeFlags = [] }) {
  const argv = [env.node, ...nodeFlags, script, ...args]
  if (env.pin) argv.unshift('taskset', '-c', cpu)
  if (niceness !== undefined) argv.unshift('nice', '-n', String(niceness))
  const child = spawn(argv[0], argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  child.on('exit', () => children.delete(child))
  child.exited = new Promise((resolve) => child.once('exit', resolve))
  return child
}

function killChildren() {
  for (const child of children) child.kill('SIGKILL')
}

async function startServer(env, variantKey, label, nodeFlags) {
  // Pipelined, a server starts and warms up at the normal priority, below the measured work.
  const niceness = env.pipeline ? undefined : env.niceness
  const child = startChild(env, path.join(__dirname, 'server.js'), [variantKey], { cpu: env.loadCpu, niceness, nodeFlags })
  child.label = label
  child.port = (await request(child, undefined, 'listening')).port
  return child
}

async function stopServer(child) {
  if (child.connected) child.send({ type: 'exit' })
  // Generous: a server run with --cpu-prof writes its profile as it exits.
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await child.exited
  clearTimeout(timer)
}

// ------------------------------------------------------------------------------------ measuring

/**
 * Load both servers of a pair at once on `route`, from `generator`, for `{ seconds }`, or for
 * `{ amount, seconds }`: that many requests each, stopped after `seconds` if not done by then.
 * @returns the load generator's results, one per server.
 */
async function load(env, generator, servers, route, length) {
  const targets = servers.map((server) => ({ port: server.port, path: `/${route}` }))
  const done = await request(generator, { type: 'run', targets, connections: env.settings.connections, ...length }, 'done')
  if (done.error) throw new Error(`load generator: ${done.error}`)
  return done.results
}

/** One measured window on one route: both servers read their CPU time over it, at the same time. */
async function measureWindow(env, servers, route) {
  await Promise.all(servers.map((server) => request(server, { type: 'start' }, 'started')))
  const loads = await load(env, env.load, servers, route, { seconds: env.settings.window })
  const stops = await Promise.all(servers.map((server) => request(server, { type: 'stop' }, 'stopped')))
  return servers.map((server, i) => {
    const stop = stops[i]
    const loadResult = loads[i]
    if (loadResult.failed > 0) throw new Error(`${server.label} /${route}: ${loadResult.failed} requests failed`)
    if (stop.requests === 0) throw new Error(`${server.label} /${route}: no request served in a ${env.settings.window} s window`)
    if (stop.requests < 200) env.notes.add(`${server.label} /${route}: only ${stop.requests} requests in one window; the machine was busy, so that ratio is rough`)
    return {
      cpuPerRequest: stop.cpuMicros / stop.requests,
      requestsPerSecond: (stop.requests / stop.elapsedMs) * 1000,
      p99Ms: loadResult.p99Ms,
      maxRssBytes: stop.maxRssBytes,
      requests: stop.requests,
      // Share of the window this server was on a CPU: the pair's sum near 1 means the core was saturated by it.
      cpuShare: stop.cpuMicros / (stop.elapsedMs * 1000)
    }
  })
}

/**
 * Start a pair: the variant's server and its bare partner, fresh processes. They start on the load
 * generator's core, so their start-up overlaps the pair measured before them without touching its
 * core, and move to the servers' core when their turn comes. Pipelined, they also warm up there,
 * from a second load generator, below the measured work in priority: the warm-up, nearly half of a
 * serial run, then costs next to nothing, and twice the windows fit in the same time.
 */
async function startPair(env, { variant, pass }) {
  // Alternate which of the two is started first.
  const order = pass % 2 === 0 ? [0, 1] : [1, 0]
  const partner = variant.partner ?? 'bare'
  const pair = [
    { key: variant.server ?? variant.key, label: variant.key, flags: env.variantFlags },
    { key: partner, label: `${partner} partner`, flags: [] }
  ]
  const servers = await Promise.all(order.map((i) => startServer(env, pair[i].key, pair[i].label, pair[i].flags)))
  // Warm-up requests still owed, per route: all of them unless pipelined. Pipelined, the warm-up gets
  // no more time than the pair before takes to be measured (it would hold the run up, on a load core
  // that others keep busy), and what it could not do is owed.
  const owed = Object.fromEntries(ROUTES.map((route) => [route, env.settings.warmup]))
  if (env.pipeline) {
    const seconds = env.settings.windows * env.settings.window
    for (const route of ROUTES) owed[route] -= await warmUp(env, env.warmer, servers, route, env.settings.warmup, seconds)
  }
  return { variant, pass, servers, mineAt: order.indexOf(0), owed }
}

/**
 * JIT warm-up of both servers on `route`, unmeasured; counted in requests, as a busy machine serves
 * fewer per second, and capped in time, so a very busy machine cannot stretch the run without bound.
 * @returns how many requests the less served of the two got.
 */
async function warmUp(env, generator, servers, route, amount, seconds = env.settings.warmupCap) {
  const results = await load(env, generator, servers, route, { amount, seconds })
  return Math.min(...results.map((result) => result.ok))
}

/** Give every thread of a running server `niceness`: Linux keeps one per thread. */
function renice(child, niceness) {
  for (const tid of fs.readdirSync(`/proc/${child.pid}/task`)) {
    try {
      os.setPriority(Number(tid), niceness)
    } catch (err) {
      // A thread that ended meanwhile.
      if (err.code !== 'ESRCH') throw err
    }
  }
}

/** Move every thread of a running server to `cpu`. */
function moveTo(env, child, cpu) {
  if (!env.pin) return
  const moved = spawnSync('taskset', ['-a', '-p', '-c', cpu, String(child.pid)])
  if (moved.status !== 0) throw new Error(`taskset could not move ${child.label} to cpu ${cpu}: ${moved.stderr}`)
}

/** One pass of one variant on a started pair: a warm-up, then `windows` windows per route, the routes alternating. */
async function runPair(env, { variant, pass, servers, mineAt, owed }) {
  try {
    for (const server of servers) {
      moveTo(env, server, env.serverCpu)
      if (env.pipeline) renice(server, env.niceness)
    }
    // What the warm-up still owes, and at least a few requests to settle the pair on its new core.
    for (const route of ROUTES) await warmUp(env, env.load, servers, route, Math.max(SETTLE_REQUESTS, owed[route]))
    const samples = []
    for (let window = 0; window < env.settings.windows; window++) {
      const routes = (pass + window) % 2 === 0 ? ROUTES : [...ROUTES].reverse()
      // Which server the load generator starts first alternates, so any edge that gives cancels out.
      const mineFirst = (pass + window) % 2 === 0
      const ordered = mineFirst ? [servers[mineAt], servers[1 - mineAt]] : [servers[1 - mineAt], servers[mineAt]]
      for (const route of routes) {
        const measured = await measureWindow(env, ordered, route)
        const [mine, partner] = mineFirst ? measured : [measured[1], measured[0]]
        samples.push({ variant: variant.key, route, pass, window, mineFirst, ...mine, partner, ratio: mine.cpuPerRequest / partner.cpuPerRequest })
      }
    }
    // After the load, so every transaction has ended: does the variant still see its context, do the metrics add up?
    const reports = await Promise.all(servers.map((server) => request(server, { type: 'report' }, 'reported')))
    checkReport(env, variant, reports[mineAt])
    if (variant.partner !== undefined) checkReport(env, { key: variant.partner }, reports[1 - mineAt])
    return samples
  } finally {
    await Promise.all(servers.map(stopServer))
  }
}

/** Sanity checks on what a server counted; problems end up as notes above the summary. */
function checkReport(env, variant, report) {
  const note = (text) => env.notes.add(`${variant.key}: ${text}`)
  const server = variant.server ?? variant.key
  if (report.misses > 0) note(`the route did not see its context on ${report.misses} of ${report.routed} requests`)
  if (['package', 'package-cls', 'package-prometheus', 'package-dashboard', 'package-before', 'otel-package-alone', 'otel-package', 'package-newrelic', 'package-newrelic-bridge'].includes(server)) {
    const expected = report.reclassifyCalls
    if (report.reclassified !== expected) note(`setBackgroundTask() applied ${report.reclassified} times, expected ${expected}`)
    if (report.metricsWeb === undefined) {
      note('metrics() is not available, so the metric counts were not checked')
    } else {
      env.metricsChecked.add(variant.key)
      const web = report.routed - report.reclassified
      if (report.metricsWeb !== web || report.metricsBackground !== report.reclassified) {
        note(`metrics() counted ${report.metricsWeb} web + ${report.metricsBackground} background, expected ${web} + ${report.reclassified}`)
      }
    }
  }
  if (server === 'package-prometheus') {
    const web = report.routed - report.reclassified
    if (report.promWeb !== web || report.promBackground !== report.reclassified) {
      note(`the Prometheus exporter counted ${report.promWeb} web + ${report.promBackground} background, expected ${web} + ${report.reclassified}`)
    }
  }
  if (server === 'otel-package') {
    const web = report.routed - report.reclassified
    if (report.otelWeb !== web || report.otelBackground !== report.reclassified) {
      note(`the OpenTelemetry histograms counted ${report.otelWeb} web + ${report.otelBackground} background, expected ${web} + ${report.reclassified}`)
    }
  }
  if (server === 'package-newrelic-bridge') {
    if (report.bridgeActive !== true) note('the bridge is not active')
    else if (report.nrBackground < report.reclassified) note(`New Relic counted ${report.nrBackground} background transactions, expected ${report.reclassified}`)
  }
  if (server === 'package-dashboard') {
    const web = report.routed - report.reclassified
    if (report.dashWeb !== web || report.dashBackground !== report.reclassified) {
      note(`the dashboard counted ${report.dashWeb} web + ${report.dashBackground} background, expected ${web} + ${report.reclassified}`)
    }
  }
  if (server.startsWith('otel')) {
    env.spansPerRequest.push({ key: variant.key, spans: report.exportedSpans / report.routed })
    if (!(report.exportedSpans > 0)) note('no span was exported; the instrumentation may not be active')
  }
}

// ------------------------------------------------------------------------------------ reporting

/** The q-quantile (0..1) by linear interpolation. */
function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (sorted.length - 1) * q
  const low = Math.floor(at)
  return sorted[low] + (sorted[Math.ceil(at)] - sorted[low]) * (at - low)
}

function median(values) {
  return quantile(values, 0.5)
}

function packageVersion(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version
  } catch {
    return 'missing'
  }
}

function gitDescription() {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' })
  if (head.status !== 0) return ''
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'lib'], { cwd: ROOT, encoding: 'utf8' })
  return `, git ${head.stdout.trim()}${dirty.stdout.trim() ? ' + uncommitted lib/ changes' : ''}`
}

function describeEnvironment(env) {
  const cpus = os.cpus()
  const own = require(path.join(ROOT, 'package.json'))
  const versions = [
    `${own.name} ${own.version}${gitDescription()}`,
    `express ${packageVersion('express')}`,
    `express-http-context ${packageVersion('express-http-context')}`,
    `cls-hooked ${packageVersion('cls-hooked')}`,
    `prom-client ${packageVersion('prom-client')}`,
    `@opentelemetry/sdk-trace-node ${packageVersion('@opentelemetry/sdk-trace-node')}`,
    `instrumentation-http ${packageVersion('@opentelemetry/instrumentation-http')}`,
    `instrumentation-express ${packageVersion('@opentelemetry/instrumentation-express')}`,
    `autocannon ${packageVersion('autocannon')}`
  ]
  const { passes, windows, window, warmup, connections } = env.settings
  return [
    `machine: ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} cores, ${os.type()} ${os.release()}`,
    `node: ${env.nodeVersion} (${env.node})`,
    `packages: ${versions.join(', ')}`,
    `method: ${env.mode} run; each variant loaded at the same time as its own bare Express 5 partner, ` +
      (env.pin ? `both servers pinned to cpu ${env.serverCpu}, autocannon on cpu ${env.loadCpu}${describeBusy(env.busy)}` : `UNPINNED (${env.pinWhy})`) +
      (env.raisePriority ? `, at nice ${NICENESS}` : '') +
      `, ${connections} connections each; ${passes} pass(es) of fresh processes, each ${warmup} warm-up requests per route ` +
      (env.pipeline ? '(on the load generator\'s core while the pair before is measured) ' : '') +
      `then ${windows} × ${window} s windows per route; CPU = the server's own process.cpuUsage() (user + system) ` +
      'over a window ÷ the requests it served in it; medians over all windows, spread = interquartile range.'
  ]
}

/** ' (cpu busy before the run: 0 95%, 1 3%)', or nothing when /proc/stat could not be read. */
function describeBusy(busy = {}) {
  const shares = Object.entries(busy).map(([cpu, share]) => `${cpu} ${Math.round(share * 100)}%`)
  return shares.length > 0 ? ` (cpu busy before the run: ${shares.join(', ')})` : ''
}

function summarize(samples, variants) {
  const rows = []
  for (const variant of variants) {
    for (const route of ROUTES) {
      const mine = samples.filter((s) => s.variant === variant.key && s.route === route)
      if (mine.length === 0) continue
      const ratios = mine.map((s) => s.ratio)
      rows.push({
        variant,
        route,
        cpuPerRequest: median(mine.map((s) => s.cpuPerRequest)),
        ratio: median(ratios),
        ratioLow: quantile(ratios, 0.25),
        ratioHigh: quantile(ratios, 0.75),
        ratioMin: Math.min(...ratios),
        ratioMax: Math.max(...ratios),
        windows: ratios.length,
        requestsPerSecond: median(mine.map((s) => s.requestsPerSecond)),
        p99Ms: median(mine.map((s) => s.p99Ms)),
        maxRssBytes: Math.max(...mine.map((s) => s.maxRssBytes))
      })
    }
  }
  return rows
}

function formatReport(env, rows) {
  const lines = [...describeEnvironment(env), '']
  lines.push('| Variant | Route | CPU µs/req | × bare partner (median) | spread (IQR) | req/s | p99 ms | peak RSS MB |')
  lines.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const row of rows) {
    lines.push(
      `| ${row.variant.label} | ${row.route} | ${row.cpuPerRequest.toFixed(1)} | ${row.ratio.toFixed(3)} | ` +
        `${row.ratioLow.toFixed(2)}–${row.ratioHigh.toFixed(2)} | ${Math.round(row.requestsPerSecond)} | ${row.p99Ms.toFixed(1)} | ` +
        `${(row.maxRssBytes / 2 ** 20).toFixed(0)} |`
    )
  }
  lines.push('', 'req/s and p99 are measured while each server shares its core with its partner, so they are about half of a solo run.')

  const ratioOf = (key, route) => rows.find((row) => row.variant.key === key && row.route === route)?.ratio
  const notes = []
  const controls = ROUTES.map((route) => ratioOf('bare', route))
  if (controls.every((control) => control !== undefined)) {
    const off = controls.some((control) => Math.abs(control - 1) > CONTROL_TOLERANCE)
    notes.push(
      off
        ? `WARNING: the bare-vs-bare control reads ${controls.map((c) => c.toFixed(3)).join('/')}, off by more than ${CONTROL_TOLERANCE * 100}%: ` +
          (env.mode === 'quick' ? 'a quick run is too short for steady ratios; use the full run' : 'the machine was too noisy for these ratios; run again')
        : `control: bare vs bare reads ${controls.map((c) => c.toFixed(3)).join('/')}, within ±${CONTROL_TOLERANCE * 100}% of 1`
    )
  }
  // The issue's targets compare across pairs: each ratio is against its own bare partner, so dividing them is fair.
  const compare = (key, floorKey, name, floorName, target) => {
    const parts = ROUTES.map((route) => {
      const [mine, floor] = [ratioOf(key, route), ratioOf(floorKey, route)]
      return mine === undefined || floor === undefined ? undefined : (mine / floor).toFixed(3)
    })
    if (parts.every((part) => part !== undefined)) notes.push(`${name} ÷ ${floorName} (sync/async): ${parts.join('/')}${target ? ` (target ${target})` : ""}`)
  }
  compare('package', 'floor', 'package', 'floor', '≤ 1.02')
  compare('floor-state', 'als', 'lowered floor', 'bare ALS', '≤ 1.03')
  compare('package', 'floor-state', 'package', 'lowered floor', '≤ 1.02')
  compare('package', 'als', 'package', 'bare ALS', '')
  compare('package-cls', 'cls-raw', 'package cls-hooked', 'cls-hooked ns', '≤ 1.00')
  compare('otel-package', 'otel-package-alone', 'the OpenTelemetry integration', 'OpenTelemetry + package', '≤ 1.03')
  const bridge = ROUTES.map((route) => ratioOf('bridge-vs-agent', route))
  if (bridge.every((ratio) => ratio !== undefined)) notes.push(`the New Relic bridge ÷ the agent alone, paired directly (sync/async): ${bridge.map((r) => r.toFixed(3)).join('/')} (target ≤ 1.02)`)
  const share = median(env.samples.map((sample) => sample.cpuShare + sample.partner.cpuShare))
  if (share < 0.9) notes.push(`the pairs had ${Math.round(share * 100)}% of their core (median): other processes were busy on it, so the ratios are noisier than usual`)
  for (const key of env.metricsChecked) if (![...env.notes].some((n) => n.startsWith(`${key}: metrics`))) notes.push(`${key}: metrics() counts match the requests served (web + background)`)
  for (const key of new Set(env.spansPerRequest.map((entry) => entry.key))) {
    const spans = median(env.spansPerRequest.filter((entry) => entry.key === key).map((entry) => entry.spans))
    notes.push(`${key}: ${spans.toFixed(2)} spans exported per request (the rest of a batch may still be queued)`)
  }
  notes.push(...env.notes)
  if (notes.length > 0) lines.push('', ...notes.map((note) => `- ${note}`))

  const summary = env.variants
    .map((variant) => `${variant.short} ${ROUTES.map((route) => ratioOf(variant.key, route)?.toFixed(2) ?? '–').join('/')}`)
    .join(' · ')
  lines.push('', `summary (node ${env.nodeVersion}, ${ROUTES.join('/')}, CPU/req × bare partner): ${summary}`)
  return lines.join('\n')
}

// ----------------------------------------------------------------------------------------- main

/** One line on stderr per pair: its ratios window by window, and how much of the core the pair had. */
function logProgress(title, pair, began) {
  const ratios = ROUTES.map((route) => `${route} ${pair.filter((s) => s.route === route).map((s) => s.ratio.toFixed(3)).join(' ')}`)
  // Near 1.00: nothing else took the servers' core during the windows.
  const share = median(pair.map((s) => s.cpuShare + s.partner.cpuShare))
  console.error(`${title}: ${ratios.join(', ')}; core share ${share.toFixed(2)} (${((Date.now() - began) / 1000).toFixed(0)} s)`)
}

async function main() {
  const began = Date.now()
  const options = parseOptions()
  const probe = spawnSync(options.node, ['-p', 'process.version'], { encoding: 'utf8' })
  if (probe.status !== 0) throw new Error(`--node ${options.node} does not run: ${probe.error?.message ?? probe.stderr}`)
  if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first')
  const pinning = await chooseCores()
  if (!pinning.pin) console.error(`WARNING: running unpinned (${pinning.why}); the ratios will be far noisier`)
  const raisePriority = canRaisePriority()
  if (!raisePriority) console.error(`note: cannot run at nice ${NICENESS} (not root); on a busy machine the ratios will be noisier`)
  const env = {
    ...options,
    nodeVersion: probe.stdout.trim(),
    niceness: raisePriority ? NICENESS : undefined,
    // Pipelined warm-up (see startPair) needs both cores and the right to raise a pair's priority when its turn comes.
    pipeline: pinning.pin && raisePriority,
    pin: pinning.pin,
    pinWhy: pinning.why,
    serverCpu: pinning.serverCpu,
    loadCpu: pinning.loadCpu,
    busy: pinning.busy,
    raisePriority,
    notes: new Set(),
    metricsChecked: new Set(),
    spansPerRequest: []
  }
  env.load = startChild(env, path.join(__dirname, 'load.js'), [], { cpu: env.loadCpu, niceness: env.niceness })
  env.load.label = 'load generator'
  await request(env.load, undefined, 'ready')
  if (env.pipeline) {
    env.warmer = startChild(env, path.join(__dirname, 'load.js'), [], { cpu: env.loadCpu })
    env.warmer.label = 'warm-up load generator'
    await request(env.warmer, undefined, 'ready')
  }

  const { passes } = env.settings
  const samples = []
  const schedule = []
  for (let pass = 0; pass < passes; pass++) {
    // Rotate the variants so none always runs first or last in a pass.
    for (let i = 0; i < env.variants.length; i++) schedule.push({ variant: env.variants[(i + pass) % env.variants.length], pass })
  }
  try {
    let next = startPair(env, schedule[0])
    for (let i = 0; i < schedule.length; i++) {
      const started = await next
      // The next pair starts while this one warms up; its failure surfaces when it is awaited.
      next = i + 1 < schedule.length ? startPair(env, schedule[i + 1]) : undefined
      next?.catch(() => {})
      const pair = await runPair(env, started)
      samples.push(...pair)
      logProgress(`pass ${started.pass + 1}/${passes} ${started.variant.key}`, pair, began)
    }
  } finally {
    for (const generator of [env.load, env.warmer]) if (generator?.connected) generator.send({ type: 'exit' })
  }

  env.samples = samples
  const rows = summarize(samples, env.variants)
  const elapsedSeconds = (Date.now() - began) / 1000
  if (env.json) {
    const { load: _load, notes, metricsChecked: _checked, samples: _samples, variants, ...settings } = env
    const dump = {
      ...settings,
      variants: variants.map((variant) => variant.key),
      notes: [...notes],
      elapsedSeconds,
      rows: rows.map((row) => ({ ...row, variant: row.variant.key })),
      samples
    }
    fs.writeFileSync(env.json, JSON.stringify(dump, null, 2))
  }
  console.error(`(ran in ${elapsedSeconds.toFixed(0)} s)`)
  console.log(formatReport(env, rows))
}


'use strict'
// Benchmark server: one Express 5 app per process in the variant named on the command line, driven by bench/run.js over IPC.
//
//   node bench/server.js <variant>     (started by run.js; it reports {type: 'listening', port})
//
// Every variant serves the same two routes with the same response; each reads its own context in
// the route (after the awaits, on the async route) and counts a miss, so a variant that loses the
// context cannot look cheap. The server measures itself: process.cpuUsage() and a request count
// between the 'start' and 'stop' messages (and by thread, on Linux), and the peak RSS.
const { threadCpu, threadCpuSince } = require('./thread-cpu')

const VARIANT_SETUPS = {
  bare: setupBare,
  als: setupAsyncLocalStorage,
  floor: () => setupFloor('own'),
  'floor-state': () => setupFloor('state'),
  package: setupPackage,
  'package-cls': setupPackageCls,
  'package-prometheus': setupPackagePrometheus,
  'package-dashboard': setupPackageDashboard,
  'package-before': setupPackageBefore,
  'package-newrelic': () => setupPackageNewRelic(false),
  'package-newrelic-bridge': () => setupPackageNewRelic(true),
  'cls-raw': setupClsRaw,
  'http-context': setupHttpContext,
  otel: setupOpenTelemetry,
  'otel-package': () => setupOpenTelemetryPackage({ bridge: true }),
  'otel-package-alone': () => setupOpenTelemetryPackage({ bridge: false })
}

if (require.main === module) runServer(process.argv[2])

/**
 * Build the app of one variant.
 * @returns {{ app, readContext: (req) => boolean, reclassify: () => void, report: () => object }}
 *   readContext tells whether the variant still sees this request's context.
 */
function createVariantApp(spec) {
  // `package-newrelic~seam`: the variant with EBT_BENCH_EXPERIMENT=seam (experiments a setup reads)
  const [variant, experiment] = spec.split('~')
  if (experiment !== undefined) process.env.EBT_BENCH_EXPERIMENT = experiment
  const setup = VARIANT_SETUPS[variant]
  if (setup === undefined) throw new Error(`unknown variant ${variant}; known: ${Object.keys(VARIANT_SETUPS).join(', ')}`)
  // OpenTelemetry patches express as it is loaded, so each setup requires express itself, after its own hooks.
  return setup()
}

function setupBare() {
  const app = require('express')()
  return { app, readContext: function bareRead() { return true }, reclassify: function bareReclassify() {}, report: () => ({}) }
}

function setupAsyncLocalStorage() {
  const { AsyncLocalStorage } = require('node:async_hooks')
  const storage = new AsyncLocalStorage()
  const app = require('express')()
  app.use(function alsMiddleware(req, res, next) {
    storage.run({ req }, next)
  })
  return {
    app,
    readContext: function alsRead(req) { return storage.getStore()?.req === req },
    reclassify: function alsReclassify() {},
    report: () => ({})
  }
}

/**
 * The floor of the design (issue 14): the bare AsyncLocalStorage middleware plus one `emit` wrapper
 * per prototype (request and response) that enters the request's store, for the events somebody
 * listens to, of the requests that have one. It keeps body parsers and `finish` listeners in the
 * request's context, which bare ALS does not, and does nothing else: no transaction, no naming, no
 * metrics. The package's ratio over this row is what its own work costs.
 *
 * `carrier` is where the store is kept for the wrapper to find: `own`, a symbol key on `req` and on
 * `res` (the design before issue 14); `state`, one on the request's readable state, which the
 * response reaches through `res.req` (the lowered floor: see lib/carrier.ts for why it is cheaper).
 */
function setupFloor(carrier) {
  const { AsyncLocalStorage } = require('node:async_hooks')
  const { IncomingMessage, ServerResponse } = require('node:http')
  const storage = new AsyncLocalStorage()
  const STORE = Symbol('store')
  // as lib/carrier.ts does: a request is asked for its state, a response for its req (never for a property it lacks)
  const requestSlot = carrier === 'state' ? (req) => req._readableState : (req) => req
  const responseSlot = carrier === 'state' ? (res) => res.req?._readableState : (res) => res
  for (const [proto, slotOf] of [[IncomingMessage.prototype, requestSlot], [ServerResponse.prototype, responseSlot]]) {
    const inner = proto.emit
    proto.emit = function floorEmit(event) {
      const store = slotOf(this)?.[STORE]
      if (store === undefined || this.listenerCount(event) === 0) return Reflect.apply(inner, this, arguments)
      return storage.run(store, Reflect.apply, inner, this, arguments)
    }
  }
  const app = require('express')()
  app.use(function floorMiddleware(req, res, next) {
    const store = { req }
    requestSlot(req)[STORE] = store
    if (carrier === 'own') res[STORE] = store
    storage.run(store, next)
  })
  return {
    app,
    readContext: function floorRead(req) { return storage.getStore()?.req === req },
    reclassify: function floorReclassify() {},
    report: () => ({})
  }
}

/** This package, default agent and engine: metrics aggregation is on, the route reads the transaction. */
function setupPackage() {
  const ebt = require('..')
  // EBT_BENCH_EXPERIMENT=seam: what the seam costs with a subscriber that does nothing
  if (process.env.EBT_BENCH_EXPERIMENT === 'seam') subscribeDoingNothing(ebt)
  const app = require('express')()
  app.use(ebt.middleware())
  return packageHandles(app, ebt, ebt)
}

/** A subscriber on the start and end channels that does nothing: the messages, and the record built for it. */
function subscribeDoingNothing(ebt) {
  const { subscribe } = require('node:diagnostics_channel')
  subscribe(ebt.ChannelName.START, function ignoreStart() {})
  subscribe(ebt.ChannelName.END, function ignoreEnd() {})
}

/**
 * The package under the New Relic agent, offline (a dummy licence key, a collector that refuses
 * connections: it instruments and aggregates as it would online), with or without bridgeNewRelic().
 */
function setupPackageNewRelic(bridged) {
  Object.assign(process.env, {
    NEW_RELIC_LICENSE_KEY: '0000000000000000000000000000000000000000',
    NEW_RELIC_APP_NAME: 'express-background-task bench',
    NEW_RELIC_NO_CONFIG_FILE: 'true',
    NEW_RELIC_LOG_ENABLED: 'false',
    NEW_RELIC_HOST: '127.0.0.1',
    NEW_RELIC_PORT: '9'
  })
  const newrelic = require('newrelic') // first, as the agent requires
  const ebt = require('..')
  const startBridge = () => require('../dist/newrelic').bridgeNewRelic()
  // EBT_BENCH_TIME_BRIDGE=1 (bench/newrelic-bridge.js): the bridge's own time, read with clocks around it
  const timing = bridged && process.env.EBT_BENCH_TIME_BRIDGE === '1' ? require('./bridge-timing').timeBridge(startBridge) : undefined
  const bridge = timing?.bridge ?? (bridged ? startBridge() : undefined)
  const app = require('express')()
  app.use(ebt.middleware())
  const handles = packageHandles(app, ebt, ebt)
  if (timing !== undefined) {
    handles.windowStart = timing.reset
    handles.windowStop = timing.read
  }
  // EBT_BENCH_EXPERIMENT=web: no request marked background, so no New Relic transaction changes type
  if (process.env.EBT_BENCH_EXPERIMENT === 'web') handles.reclassify = function noReclassify() {}
  // without the bridge, what parts of it cost. EBT_BENCH_EXPERIMENT=seam: a subscriber that does
  // nothing on the start and end channels (the messages and the record built for it); wrap: the
  // bridge's pass-through wrapper on the agent's Transaction.prototype.end, nothing else
  if (!bridged && process.env.EBT_BENCH_EXPERIMENT === 'seam') subscribeDoingNothing(ebt)
  if (!bridged && process.env.EBT_BENCH_EXPERIMENT === 'wrap') {
    const prototype = require(require.resolve('newrelic/lib/transaction/index.js')).prototype
    const nrEnd = prototype.end
    prototype.end = function endPassingThrough() {
      return Reflect.apply(nrEnd, this, arguments)
    }
  }
  const report = handles.report
  handles.report = function newRelicReport() {
    // the agent's own count of background transactions: with the bridge, the reclassified requests
    const other = newrelic.agent.metrics.getMetric('OtherTransaction/all')
    return { ...report(), bridgeActive: bridge?.active, nrBackground: other === undefined ? 0 : other.callCount }
  }
  return handles
}

/** The package with express-background-task/prometheus subscribed to its channels, into prom-client's default registry. */
function setupPackagePrometheus() {
  const ebt = require('..')
  const { createPrometheusExporter } = require('../dist/prometheus')
  createPrometheusExporter()
  const app = require('express')()
  app.use(ebt.middleware())
  const handles = packageHandles(app, ebt, ebt)
  const report = handles.report
  const { register } = require('prom-client')
  handles.report = function prometheusReport() {
    // the exporter's counts, checked by run.js like metrics()'s: one observation per transaction
    const counts = (name) => register.getSingleMetric(name).get().then(({ values }) =>
      values.filter((v) => v.metricName === `${name}_count`).reduce((sum, v) => sum + v.value, 0))
    return Promise.all([counts('http_server_request_duration_seconds'), counts('background_transaction_duration_seconds')])
      .then(([promWeb, promBackground]) => ({ ...report(), promWeb, promBackground }))
  }
  return handles
}

/** The package with express-background-task/dashboard subscribed to its channels and mounted, no page open. */
function setupPackageDashboard() {
  const ebt = require('..')
  const { dashboard } = require('../dist/dashboard')
  const dash = dashboard()
  const app = require('express')()
  app.use(ebt.middleware())
  app.use('/_background', dash)
  const handles = packageHandles(app, ebt, ebt)
  const report = handles.report
  handles.report = function dashboardReport() {
    // the dashboard's counts, checked by run.js like metrics()'s (a pass is far shorter than its 15 minutes)
    const view = dash.view(15, Date.now() + 1000)
    return { ...report(), dashWeb: view.web.count, dashBackground: view.background.count }
  }
  return handles
}

/**
 * The package as built from another checkout (EBT_BENCH_BEFORE=<its root, built>), e.g. the commit
 * before the diagnostics-channel seam: against `package`, what the unsubscribed seam costs.
 */
function setupPackageBefore() {
  const root = process.env.EBT_BENCH_BEFORE
  if (!root) throw new Error('package-before needs EBT_BENCH_BEFORE=<root of a built checkout to compare with>')
  const ebt = require(require('node:path').resolve(root, 'dist', 'index.js'))
  const app = require('express')()
  app.use(ebt.middleware())
  return packageHandles(app, ebt, ebt)
}

function setupPackageCls() {
  const ebt = require('..')
  const agent = ebt.createAgent({ context: 'cls-hooked' })
  const app = require('express')()
  app.use(agent.middleware())
  return packageHandles(app, ebt, agent)
}

function packageHandles(app, ebt, agent) {
  let reclassified = 0
  return {
    app,
    readContext: function packageRead() { return ebt.getTransaction() !== undefined },
    reclassify: function packageReclassify() {
      if (ebt.setBackgroundTask()) reclassified++
    },
    report: function packageReport() {
      if (typeof agent.metrics !== 'function') return { reclassified }
      // What the aggregator counted, checked by run.js against the server's own counts.
      const { timeslices } = agent.metrics()
      return {
        reclassified,
        metricsWeb: timeslices.WebTransaction?.callCount ?? 0,
        metricsBackground: timeslices['OtherTransaction/all']?.callCount ?? 0
      }
    }
  }
}

/** A raw cls-hooked namespace run, as cls-based context libraries set one up per request. */
function setupClsRaw() {
  const namespace = require('cls-hooked').createNamespace('bench')
  const app = require('express')()
  app.use(function clsMiddleware(req, res, next) {
    namespace.bindEmitter(req)
    namespace.bindEmitter(res)
    namespace.run(function clsRun() {
      namespace.set('req', req)
      next()
    })
  })
  return {
    app,
    readContext: function clsRead(req) { return namespace.get('req') === req },
    reclassify: function clsReclassify() {},
    report: () => ({})
  }
}

function setupHttpContext() {
  const httpContext = require('express-http-context')
  const app = require('express')()
  app.use(httpContext.middleware)
  app.use(function httpContextSet(req, res, next) {
    httpContext.set('req', req)
    next()
  })
  return {
    app,
    readContext: function httpContextRead(req) { return httpContext.get('req') === req },
    reclassify: function httpContextReclassify() {},
    report: () => ({})
  }
}

/** OpenTelemetry tracing as its docs set it up: provider, batch processor, http + express instrumentations; spans are discarded. */
function setupOpenTelemetry() {
  const { NodeTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-node')
  const { registerInstrumentations } = require('@opentelemetry/instrumentation')
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http')
  const { ExpressInstrumentation } = require('@opentelemetry/instrumentation-express')
  const api = require('@opentelemetry/api')
  let exportedSpans = 0
  const discardingExporter = {
    export(spans, resultCallback) {
      exportedSpans += spans.length
      resultCallback({ code: 0 })
    },
    shutdown: () => Promise.resolve(),
    forceFlush: () => Promise.resolve()
  }
  const provider = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(discardingExporter)] })
  provider.register()
  registerInstrumentations({ instrumentations: [new HttpInstrumentation(), new ExpressInstrumentation()] })
  // Only now: the instrumentations hook require() and patch express as it loads.
  const app = require('express')()
  return {
    app,
    readContext: function otelRead() { return api.trace.getActiveSpan() !== undefined },
    reclassify: function otelReclassify() {},
    report: function otelReport() {
      return { exportedSpans }
    }
  }
}

/**
 * The same OpenTelemetry setup plus this package and (with `bridge`) its OpenTelemetry integration, as
 * the README sets them up: a MeterProvider with the View and a periodic reader whose exporter discards
 * (no network). Without `bridge` the pair tells the integration's own cost from the package's.
 */
function setupOpenTelemetryPackage({ bridge }) {
  const { MeterProvider, PeriodicExportingMetricReader, AggregationTemporality } = require('@opentelemetry/sdk-metrics')
  const api = require('@opentelemetry/api')
  const totals = { web: 0, background: 0 }
  const discardingMetricExporter = {
    export(resourceMetrics, resultCallback) {
      // Cumulative: the last export holds the totals so far.
      for (const { metrics } of resourceMetrics.scopeMetrics) {
        for (const metric of metrics) {
          const count = metric.dataPoints.reduce((sum, point) => sum + point.value.count, 0)
          if (metric.descriptor.name === 'http.server.request.duration') totals.web = count
          if (metric.descriptor.name === 'background_transaction.duration') totals.background = count
        }
      }
      resultCallback({ code: 0 })
    },
    selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve()
  }
  const reader = new PeriodicExportingMetricReader({ exporter: discardingMetricExporter, exportIntervalMillis: 5000 })
  const { instrumentOpenTelemetry, dropInstrumentationHttpDurationViews } = require('../dist/opentelemetry')
  const meterProvider = new MeterProvider({ readers: [reader], views: dropInstrumentationHttpDurationViews() })
  api.metrics.setGlobalMeterProvider(meterProvider)
  const handles = setupOpenTelemetry() // tracing and the instrumentations (they take the global meter provider), then express
  const ebt = require('..')
  if (bridge) instrumentOpenTelemetry()
  handles.app.use(ebt.middleware())
  const tracing = handles.report
  const ours = packageHandles(handles.app, ebt, ebt)
  return {
    ...ours,
    readContext: function otelPackageRead() { return ebt.getTransaction() !== undefined && api.trace.getActiveSpan() !== undefined },
    report: async function otelPackageReport() {
      await reader.forceFlush()
      // The OpenTelemetry histograms' counts, checked by run.js against the server's own counts.
      const report = { ...ours.report(), ...tracing() }
      return bridge ? { ...report, otelWeb: totals.web, otelBackground: totals.background } : report
    }
  }
}

/** Both routes; `reclassify` runs on every other request, as a route that marks some work as background would. */
function addRoutes(handles) {
  const { app, readContext, reclassify } = handles
  const counts = { routed: 0, misses: 0, reclassifyCalls: 0, aborted: 0 }
  function checkContext(req, n) {
    // The load generator closes its sockets at the end of a window; a transaction whose client went
    // away has ended, so it is rightly no longer visible and can no longer be reclassified.
    if (req.socket.destroyed) {
      counts.aborted++
      return
    }
    if (!readContext(req)) counts.misses++
    if (n % 2 === 0) {
      counts.reclassifyCalls++
      reclassify()
    }
  }
  const lookup = (id) => Promise.resolve({ id, name: `user ${id}` })

  app.get('/sync', function syncRoute(req, res) {
    const n = ++counts.routed
    checkContext(req, n)
    res.json({ id: n, name: 'sync' })
  })

  app.get('/async', async function asyncRoute(req, res) {
    const n = ++counts.routed
    const user = await lookup(n)
    await new Promise((resolve) => setImmediate(resolve))
    const orders = await lookup(user.id)
    await new Promise((resolve) => setTimeout(resolve, 0))
    // Read after the hops: a context lost across them is counted, not hidden.
    checkContext(req, n)
    res.json({ id: orders.id, name: 'async' })
  })
  return counts
}

function runServer(variant) {
  const handles = createVariantApp(variant)
  // Only after the variant's setup: OpenTelemetry wants its http instrumentation registered before http loads.
  const http = require('node:http')
  const counts = addRoutes(handles)
  let served = 0
  const server = http.createServer(function countRequest(req, res) {
    served++
    handles.app(req, res)
  })
  server.keepAliveTimeout = 60_000
  // open connections, so the report waits for the last ones' close (and so their transactions' end)
  let open = 0
  server.on('connection', (socket) => {
    open++
    socket.once('close', () => open--)
  })
  function whenClosed(callback) {
    if (open === 0) setImmediate(callback)
    else setTimeout(whenClosed, 1, callback)
  }

  // The parent went away (Ctrl-C, a crash): do not linger.
  process.on('disconnect', () => process.exit(0))
  server.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: server.address().port }))

  let startCpu
  let startThreads
  let profiler
  let startServed = 0
  let startTime
  process.on('message', function onMessage(message) {
    if (message.type === 'start') {
      // /proc read first, so reading it stays out of the window's process.cpuUsage()
      startThreads = threadCpu()
      startServed = served
      startTime = process.hrtime.bigint()
      startCpu = process.cpuUsage()
      handles.windowStart?.()
      process.send({ type: 'started' })
    } else if (message.type === 'stop') {
      const cpu = process.cpuUsage(startCpu)
      const elapsedMs = Number(process.hrtime.bigint() - startTime) / 1e6
      const threads = threadCpuSince(startThreads)
      process.send({
        type: 'stopped',
        cpuMicros: cpu.user + cpu.system,
        requests: served - startServed,
        elapsedMs,
        // clock ticks by thread kind (bench/thread-cpu.js), undefined elsewhere than Linux
        threads,
        // what a variant measures of itself over the window (bench/bridge-timing.js)
        own: handles.windowStop?.(),
        // resourceUsage().maxRSS is in kilobytes.
        maxRssBytes: process.resourceUsage().maxRSS * 1024
      })
    } else if (message.type === 'report') {
      // Sent after the load has stopped and sockets are closed, so every transaction has ended.
      // A destroyed socket's 'close' (which ends an unfinished response's transaction) comes in a
      // later phase of the event loop than setImmediate: wait for every one.
      server.closeAllConnections()
      whenClosed(async () => process.send({ type: 'reported', served, ...counts, ...(await handles.report()) }))
    } else if (message.type === 'profile-start') {
      // bench/newrelic-bridge.js: a CPU profile of the measured window only (not the warm-up), taken in-process
      profiler ??= new (require('node:inspector').Session)()
      profiler.connect()
      profiler.post('Profiler.enable', () => profiler.post('Profiler.setSamplingInterval', { interval: 100 }, () =>
        profiler.post('Profiler.start', () => process.send({ type: 'profiling' }))))
    } else if (message.type === 'profile-stop') {
      profiler.post('Profiler.stop', (err, result) => {
        profiler.disconnect()
        require('node:fs').writeFileSync(message.file, JSON.stringify(err ? {} : result.profile))
        process.send({ type: 'profiled', error: err?.message })
      })
    } else if (message.type === 'gc') {
      // bench/instructions.js: a full collection right before counting, so no major GC falls into the window by chance
      global.gc?.()
      process.send({ type: 'collected' })
    } else if (message.type === 'exit') {
      server.closeAllConnections()
      server.close(() => process.exit(0))
    }
  })
}

module.exports = { createVariantApp, addRoutes, VARIANTS: Object.keys(VARIANT_SETUPS) }

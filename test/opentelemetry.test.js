'use strict'
// express-background-task/opentelemetry against the real SDK: sdk-metrics with a pull reader,
// sdk-trace-node with an in-memory exporter, instrumentation-http and instrumentation-express.
// This process loads the instrumentations before the package; test/fixtures/otel-order.js runs the
// other order (and this one again) in child processes.
const sdk = require('./fixtures/otel-sdk')

const tracing = sdk.startTracing() // before node:http, express and this package are loaded

const { describe, it, afterEach, after } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const http = require('node:http')
const { execFile } = require('node:child_process')
const diagnosticsChannel = require('node:diagnostics_channel')
const api = require('@opentelemetry/api')
const { ebt, FRAMEWORKS, ENGINES, recordingAgent, listen, request, delay } = require('./helpers')
const { captureDebug } = require('./fixtures/capture-debug')
const otel = require('express-background-task/opentelemetry')

const { instrumentOpenTelemetry, dropInstrumentationHttpDurationViews, isLongLivedRequest, MetricName, AttributeName, CLASSIFY_EVENT } = otel
const SCOPE = 'express-background-task'
const HTTP_DURATION = MetricName.HTTP_SERVER_REQUEST_DURATION
const BACKGROUND_DURATION = MetricName.BACKGROUND_TRANSACTION_DURATION
const SPAN_KIND = { INTERNAL: 0, SERVER: 1 }
const RPC_METADATA_KEY = api.createContextKey('OpenTelemetry SDK Context Key RPC_METADATA')
/** The route each framework reports for /users/7: Express's template, Connect's mount path. */
const USERS_ROUTE = { 'express 5': '/users/:id', 'express 4': '/users/:id', connect: '/users' }

let live = []
after(() => tracing.tracerProvider.shutdown())
afterEach(async () => {
  for (const { instrumentation, meterProvider } of live.splice(0)) {
    instrumentation.stop()
    await meterProvider.shutdown()
  }
})

/** A fresh MeterProvider (instrumentation-http records on it too), the integration on it, no spans yet. */
function setup({ views, agent, tracerProvider } = {}) {
  const { meterProvider, histograms } = sdk.createMeterProvider(views)
  tracing.httpInstrumentation.setMeterProvider(meterProvider)
  tracing.spanExporter.reset()
  const instrumentation = instrumentOpenTelemetry({ meterProvider, agent, tracerProvider })
  live.push({ instrumentation, meterProvider })
  /** This package's data points of one histogram. */
  async function ours(name) {
    return (await histograms()).filter((point) => point.scope === SCOPE && point.name === name)
  }
  return { instrumentation, meterProvider, histograms, ours }
}

/** The spans exported so far, once `predicate(spans)` holds (server spans end on the response's close). */
async function spansWhen(predicate, timeoutMs = 5000) {
  for (let waited = 0; ; waited += 5) {
    const spans = tracing.spanExporter.getFinishedSpans()
    if (predicate(spans)) return spans
    if (waited > timeoutMs) throw new Error(`spans never matched; got ${spans.map((s) => s.name).join(', ')}`)
    await delay(5)
  }
}

const serverSpans = (spans) => spans.filter((span) => span.kind === SPAN_KIND.SERVER)
const serverSpanFor = (spans, path) => serverSpans(spans).find((span) => span.attributes['url.path'] === path)
const byAttribute = (points, key, value) => points.filter((point) => point.attributes[key] === value)

/** The app every framework runs: one route per case. `hooks.events(req)` runs in /events around the mark. */
function createApp(framework, agent, hooks = {}) {
  const app = FRAMEWORKS[framework]()()
  const route = framework === 'connect'
    ? (template, handler) => app.use(template.replace('/:id', ''), handler)
    : (template, handler) => app.get(template, handler)
  app.use(agent.middleware())
  route('/users/:id', (req, res) => res.end('user'))
  route('/events', (req, res) => {
    const mark = () => { req.newrelic.setBackgroundTask = true }
    if (hooks.events) hooks.events(req, mark)
    else mark()
    res.end('done')
  })
  route('/unavailable', (req, res) => {
    res.statusCode = 503
    res.end()
  })
  route('/health', (req, res) => {
    req.newrelic.ignoreTransaction = true
    res.end('ok')
  })
  route('/fail', (req, res, next) => next(new TypeError('boom')))
  route('/spawn', async (req, res) => {
    await agent.backgroundTask('index', () => delay(1))
    res.end('spawned')
  })
  app.use(agent.errorHandler())
  app.use((err, req, res, next) => {
    res.statusCode = 500
    res.end('failed')
  })
  return app
}

/** GET `url` on its own connection and hang up: at the first chunk of the body, or after `afterMs`. */
function abandon(url, { onFirstChunk = false, afterMs } = {}) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.on('error', () => {}) // our own hang-up
      if (onFirstChunk) res.once('data', () => req.destroy())
    })
    req.on('error', () => {})
    req.on('close', resolve)
    if (afterMs !== undefined) setTimeout(() => req.destroy(), afterMs)
  })
}

/** Serve `app`, send GET to each path in turn, wait for `transactions` records; returns the records. */
async function serve(app, paths, waitFor, transactions = paths.length) {
  const server = await listen(app)
  try {
    for (const path of paths) await request(server.url(path))
    return await waitFor(transactions)
  } finally {
    await server.close()
  }
}

describe('instrumentOpenTelemetry options', () => {
  it('rejects bad options at the call, by code', () => {
    const cases = [
      [42, 'ERR_EBT_OPTIONS_TYPE'],
      [[], 'ERR_EBT_OPTIONS_TYPE'],
      [{ meterprovider: {} }, 'ERR_EBT_UNKNOWN_OPTION'],
      [{ meterProvider: {} }, 'ERR_EBT_OPTIONS_TYPE'],
      [{ tracerProvider: 'global' }, 'ERR_EBT_OPTIONS_TYPE'],
      [{ agent: {} }, 'ERR_EBT_OPTIONS_TYPE'],
      [{ agent: ebt }, 'ERR_EBT_OPTIONS_TYPE']
    ]
    for (const [options, code] of cases) {
      assert.throws(() => instrumentOpenTelemetry(options), (err) => err instanceof TypeError && err.code === code, JSON.stringify(options))
    }
    assert.throws(() => instrumentOpenTelemetry({ agent: ebt }), /pass an agent made by createAgent\(\)/)
    assert.throws(() => instrumentOpenTelemetry({ meterprovider: {} }), /unknown instrumentOpenTelemetry option 'meterprovider' \(allowed: meterProvider, tracerProvider, agent\)/)
  })

  it('takes undefined for absent, and the global providers by default', () => {
    const instrumentation = instrumentOpenTelemetry({ meterProvider: undefined, agent: undefined })
    assert.equal(typeof instrumentation.stop, 'function')
    instrumentation.stop()
    instrumentation.stop() // idempotent
    instrumentOpenTelemetry().stop()
  })

  it('refuses a second instrumentation recording the same transactions on one meter provider, until stop()', () => {
    const { meterProvider } = sdk.createMeterProvider()
    const first = instrumentOpenTelemetry({ meterProvider })
    assert.throws(() => instrumentOpenTelemetry({ meterProvider }), { name: 'TypeError', code: 'ERR_EBT_ALREADY_REGISTERED' })
    assert.throws(() => instrumentOpenTelemetry({ meterProvider, agent: ebt.createAgent() }), { code: 'ERR_EBT_ALREADY_REGISTERED' })
    first.stop()
    // Disjoint agents share a provider.
    const [one, two] = [ebt.createAgent(), ebt.createAgent()]
    const a = instrumentOpenTelemetry({ meterProvider, agent: one })
    const b = instrumentOpenTelemetry({ meterProvider, agent: two })
    assert.throws(() => instrumentOpenTelemetry({ meterProvider, agent: one }), { code: 'ERR_EBT_ALREADY_REGISTERED' })
    assert.throws(() => instrumentOpenTelemetry({ meterProvider }), { code: 'ERR_EBT_ALREADY_REGISTERED' })
    a.stop()
    b.stop()
    instrumentOpenTelemetry({ meterProvider }).stop()
  })
})

for (const framework of Object.keys(FRAMEWORKS)) {
  describe(`${framework} with instrumentation-http`, () => {
    it('records web requests on http.server.request.duration with the semantic-convention attributes, and marked ones only on the background histogram', async () => {
      const { ours } = setup()
      const { agent, waitFor } = recordingAgent()
      const records = await serve(createApp(framework, agent), ['/users/7', '/events', '/users/8', '/nowhere'], waitFor)
      assert.deepEqual(records.map((r) => r.type), ['web', 'background', 'web', 'web'])

      const web = await ours(HTTP_DURATION)
      assert.deepEqual(
        web.map((p) => [p.attributes, p.count]),
        [
          [{ 'http.request.method': 'GET', 'url.scheme': 'http', 'http.route': USERS_ROUTE[framework], 'http.response.status_code': 200 }, 2],
          // nothing matched: no http.route, as the semantic conventions say
          [{ 'http.request.method': 'GET', 'url.scheme': 'http', 'http.response.status_code': 404 }, 1]
        ]
      )
      assert.equal(web[0].unit, 's')
      assert.deepEqual(web[0].boundaries, [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10])
      assert.ok(web[0].sum > 0 && web[0].sum < 5, `seconds, got ${web[0].sum}`)

      const background = await ours(BACKGROUND_DURATION)
      assert.deepEqual(background.map((p) => [p.attributes, p.count]), [[{ [AttributeName.NAME]: records[1].name }, 1]])
      assert.match(records[1].name, /^OtherTransaction\/(Expressjs|Connect)\/GET\/\/events$/)
      assert.equal(background[0].unit, 's')
      assert.equal(background[0].boundaries.at(-1), 3600)
    })

    it('labels the server span at start and at the change, while it is still recording', async () => {
      setup()
      const { agent, waitFor } = recordingAgent()
      const seen = []
      const app = createApp(framework, agent, {
        events(req, mark) {
          // instrumentation-express may have a layer span active here; the request's span is the server span.
          const span = api.context.active().getValue(RPC_METADATA_KEY).span
          seen.push([span.attributes[AttributeName.TYPE], span.events.length])
          mark()
          seen.push([span.attributes[AttributeName.TYPE], span.events.map((event) => event.name), span.ended])
        }
      })
      const records = await serve(app, ['/events', '/users/1'], waitFor)
      assert.deepEqual(seen, [['web', 0], ['background', [CLASSIFY_EVENT], false]])

      const spans = await spansWhen((all) => serverSpans(all).length >= 2)
      const events = serverSpanFor(spans, '/events')
      assert.equal(events.attributes[AttributeName.TYPE], 'background')
      assert.equal(events.attributes[AttributeName.NAME], records[0].name)
      assert.deepEqual(events.events.map((event) => [event.name, event.attributes]), [
        [CLASSIFY_EVENT, { [AttributeName.TYPE]: 'background', [AttributeName.PREVIOUS_TYPE]: 'web' }]
      ])
      const users = serverSpanFor(spans, '/users/1')
      assert.equal(users.attributes[AttributeName.TYPE], 'web')
      assert.equal(users.attributes[AttributeName.NAME], records[1].name)
      assert.deepEqual(users.events, [])
      // No express layer span was labelled.
      assert.deepEqual(spans.filter((span) => span.kind !== SPAN_KIND.SERVER && AttributeName.TYPE in span.attributes), [])
    })

    it('sets error.type from a noticed error and from a 5xx status', async () => {
      const { ours } = setup()
      const { agent, waitFor } = recordingAgent()
      await serve(createApp(framework, agent), ['/fail', '/unavailable', '/users/1'], waitFor)
      const web = await ours(HTTP_DURATION)
      assert.deepEqual(web.map((p) => [p.attributes['error.type'], p.attributes['http.response.status_code']]), [
        ['TypeError', 500],
        ['503', 503],
        [undefined, 200]
      ])
    })

    it('records nothing for an ignored request', async () => {
      const { ours } = setup()
      const { agent, waitFor } = recordingAgent()
      const ended = []
      const onEnd = (message) => ended.push(message.record)
      diagnosticsChannel.subscribe('express-background-task:transaction:end', onEnd)
      try {
        await serve(createApp(framework, agent), ['/health', '/users/1'], waitFor, 1)
      } finally {
        diagnosticsChannel.unsubscribe('express-background-task:transaction:end', onEnd)
      }
      assert.equal(ended.length, 2)
      assert.deepEqual((await ours(HTTP_DURATION)).map((p) => p.attributes['http.route']), [USERS_ROUTE[framework]])
      assert.deepEqual(await ours(BACKGROUND_DURATION), [])
      const spans = await spansWhen((all) => serverSpans(all).length >= 2)
      assert.equal(AttributeName.NAME in serverSpanFor(spans, '/health').attributes, false)
    })

    it('gives a backgroundTask() inside a request a span of its own and leaves the request web', async () => {
      const { ours } = setup()
      const { agent, waitFor } = recordingAgent()
      await serve(createApp(framework, agent), ['/spawn'], waitFor, 2)
      const spans = await spansWhen((all) => serverSpans(all).length >= 1)
      const server = serverSpans(spans)[0]
      const task = spans.find((span) => span.name === 'OtherTransaction/Nodejs/index')
      assert.ok(task, `no task span in ${spans.map((s) => s.name).join(', ')}`)
      assert.equal(task.kind, SPAN_KIND.INTERNAL)
      assert.equal(task.spanContext().traceId, server.spanContext().traceId)
      assert.equal(task.attributes[AttributeName.TYPE], 'background')
      assert.equal(server.attributes[AttributeName.TYPE], 'web')
      assert.deepEqual(server.events, [])
      assert.equal((await ours(HTTP_DURATION)).length, 1)
      assert.deepEqual((await ours(BACKGROUND_DURATION)).map((p) => p.attributes[AttributeName.NAME]), ['OtherTransaction/Nodejs/index'])
    })
  })
}

describe('background tasks', () => {
  it('records a task on the background histogram with a span of its own, timed as the transaction', async () => {
    const { ours } = setup()
    const agent = ebt.createAgent()
    await agent.backgroundTask('nightly', () => delay(20))
    await assert.rejects(agent.backgroundTask('broken', async () => { throw new RangeError('nope') }), RangeError)
    const background = await ours(BACKGROUND_DURATION)
    assert.deepEqual(background.map((p) => [p.attributes, p.count]), [
      [{ [AttributeName.NAME]: 'OtherTransaction/Nodejs/nightly' }, 1],
      [{ [AttributeName.NAME]: 'OtherTransaction/Nodejs/broken', 'error.type': 'RangeError' }, 1]
    ])
    assert.ok(background[0].sum >= 0.015, `seconds, got ${background[0].sum}`)
    assert.deepEqual(await ours(HTTP_DURATION), [])

    const [nightly, broken] = tracing.spanExporter.getFinishedSpans()
    assert.equal(nightly.name, 'OtherTransaction/Nodejs/nightly')
    assert.equal(nightly.parentSpanContext, undefined)
    const seconds = nightly.duration[0] + nightly.duration[1] / 1e9
    assert.ok(seconds >= 0.015 && seconds < 1, `span lasts the transaction, got ${seconds}`)
    assert.equal(broken.status.code, api.SpanStatusCode.ERROR)
    assert.equal(broken.events[0].name, 'exception')
  })

  it('records a task turned web on http.server.request.duration, told by its name', async () => {
    const { ours } = setup()
    const agent = ebt.createAgent()
    agent.backgroundTask('render-preview', () => ebt.setBackgroundTask(false))
    assert.deepEqual((await ours(HTTP_DURATION)).map((p) => p.attributes), [
      { 'http.request.method': '_OTHER', [AttributeName.NAME]: 'WebTransaction/Nodejs/render-preview' }
    ])
    assert.deepEqual(await ours(BACKGROUND_DURATION), [])
    const [span] = tracing.spanExporter.getFinishedSpans()
    assert.equal(span.attributes[AttributeName.TYPE], 'web')
  })

  it('labels the span a task runs in, live, instead of making one', async () => {
    setup()
    const agent = ebt.createAgent()
    const tracer = api.trace.getTracer('jobs')
    tracer.startActiveSpan('consume job', (span) => {
      agent.backgroundTask('job', () => {
        assert.equal(span.attributes[AttributeName.TYPE], 'background')
        ebt.setBackgroundTask(false)
        assert.equal(span.attributes[AttributeName.TYPE], 'web')
      })
      span.end()
    })
    const spans = tracing.spanExporter.getFinishedSpans()
    assert.deepEqual(spans.map((span) => span.name), ['consume job'])
    assert.equal(spans[0].attributes[AttributeName.NAME], 'WebTransaction/Nodejs/job')
    assert.deepEqual(spans[0].events.map((event) => event.attributes), [
      { [AttributeName.TYPE]: 'web', [AttributeName.PREVIOUS_TYPE]: 'background' }
    ])
  })

  it('makes no span and records nothing for an ignored task', async () => {
    const { histograms } = setup()
    ebt.createAgent().backgroundTask('ignored', () => ebt.getTransaction().ignore())
    assert.deepEqual((await histograms()).filter((p) => p.scope === SCOPE), [])
    assert.deepEqual(tracing.spanExporter.getFinishedSpans(), [])
  })

  it('uses the tracerProvider given for task spans', async () => {
    const { NodeTracerProvider, SimpleSpanProcessor, InMemorySpanExporter } = require('@opentelemetry/sdk-trace-node')
    const exporter = new InMemorySpanExporter()
    const tracerProvider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
    setup({ tracerProvider })
    ebt.createAgent().backgroundTask('own-provider', () => 1)
    assert.deepEqual(exporter.getFinishedSpans().map((span) => [span.name, span.instrumentationScope.name]), [['OtherTransaction/Nodejs/own-provider', SCOPE]])
    assert.deepEqual(tracing.spanExporter.getFinishedSpans(), [])
    await tracerProvider.shutdown()
  })
})

describe('the View that drops instrumentation-http\'s duration histogram', () => {
  it('leaves this package\'s http.server.request.duration the single one', async () => {
    // Without the View, both meters record the request: the test would catch a View that drops nothing.
    const without = setup()
    const { agent, waitFor } = recordingAgent()
    await serve(createApp('express 5', agent), ['/users/1'], waitFor)
    await spansWhen((all) => serverSpans(all).length >= 1)
    const both = (await without.histograms()).filter((p) => p.name === HTTP_DURATION).map((p) => p.scope)
    assert.deepEqual(both.sort(), ['@opentelemetry/instrumentation-http', SCOPE])

    const views = dropInstrumentationHttpDurationViews()
    const withView = setup({ views })
    const second = recordingAgent()
    await serve(createApp('express 5', second.agent), ['/users/1', '/events'], second.waitFor)
    await spansWhen((all) => serverSpans(all).length >= 2)
    const points = await withView.histograms()
    assert.deepEqual(points.filter((p) => p.name === HTTP_DURATION).map((p) => [p.scope, p.count]), [[SCOPE, 1]])
    // instrumentation-http's client histogram (the test's own requests) is kept.
    assert.ok(points.some((p) => p.scope === '@opentelemetry/instrumentation-http' && p.name === 'http.client.request.duration'))
  })

  it('drops the old semantic conventions\' http.server.duration of instrumentation-http\'s meter only', async () => {
    // instrumentation-http 0.223 records only the stable name; older ones record http.server.duration
    // (ms) unless OTEL_SEMCONV_STABILITY_OPT_IN=http. Their meter is named the same.
    const { meterProvider, histograms } = sdk.createMeterProvider(dropInstrumentationHttpDurationViews())
    meterProvider.getMeter('@opentelemetry/instrumentation-http').createHistogram('http.server.duration', { unit: 'ms' }).record(12)
    meterProvider.getMeter('someone-else').createHistogram('http.server.duration', { unit: 'ms' }).record(12)
    assert.deepEqual((await histograms()).map((p) => [p.scope, p.name]), [['someone-else', 'http.server.duration']])
    await meterProvider.shutdown()
  })
})

describe('agent filter and stop()', () => {
  it('records and labels only the given agent\'s transactions', async () => {
    const mine = recordingAgent()
    const other = recordingAgent()
    const { ours } = setup({ agent: mine.agent })
    const server = await listen((req, res) => {
      const app = req.url === '/mine' ? mineApp : otherApp
      app(req, res)
    })
    const mineApp = createApp('express 5', mine.agent)
    const otherApp = createApp('express 5', other.agent)
    try {
      await request(server.url('/mine'))
      await request(server.url('/other'))
      await Promise.all([mine.waitFor(1), other.waitFor(1)])
    } finally {
      await server.close()
    }
    other.agent.backgroundTask('theirs', () => 1)
    assert.deepEqual((await ours(HTTP_DURATION)).map((p) => p.attributes['http.response.status_code']), [404])
    assert.equal((await ours(HTTP_DURATION))[0].count, 1)
    assert.deepEqual(await ours(BACKGROUND_DURATION), [])
    const spans = await spansWhen((all) => serverSpans(all).length >= 2)
    assert.equal(serverSpanFor(spans, '/mine').attributes[AttributeName.TYPE], 'web')
    assert.equal(AttributeName.TYPE in serverSpanFor(spans, '/other').attributes, false)
    assert.equal(spans.some((span) => span.name === 'OtherTransaction/Nodejs/theirs'), false)
  })

  it('stop() unsubscribes: nothing more is recorded or labelled', async () => {
    const { instrumentation, ours } = setup()
    const agent = ebt.createAgent()
    agent.backgroundTask('before', () => 1)
    instrumentation.stop()
    for (const name of Object.values(ebt.ChannelName)) assert.equal(diagnosticsChannel.channel(name).hasSubscribers, false, name)
    agent.backgroundTask('after', () => 1)
    assert.deepEqual((await ours(BACKGROUND_DURATION)).map((p) => p.attributes[AttributeName.NAME]), ['OtherTransaction/Nodejs/before'])
    assert.deepEqual(tracing.spanExporter.getFinishedSpans().map((span) => span.name), ['OtherTransaction/Nodejs/before'])
  })
})

describe('context engines and aborted requests', () => {
  for (const engine of ENGINES) {
    it(`${engine.name}: a stream marked background and abandoned by its client is recorded as background only`, async () => {
      const { ours } = setup()
      const { agent, waitFor } = recordingAgent(engine.options())
      const app = require('express')()
      app.use(agent.middleware())
      app.get('/stream', async (req, res) => {
        await delay(1)
        ebt.setBackgroundTask() // after an async hop: the context carries the transaction
        res.writeHead(200, { 'Content-Type': 'text/event-stream' })
        res.write('data: 1\n\n')
      })
      app.get('/slow', async (req, res) => {
        await delay(50)
        res.end('late')
      })
      const server = await listen(app)
      try {
        await abandon(server.url('/stream'), { onFirstChunk: true })
        await abandon(server.url('/slow'), { afterMs: 10 })
        const records = await waitFor(2)
        assert.deepEqual(records.map((r) => [r.name, r.type, r.aborted]).sort(), [
          ['OtherTransaction/Expressjs/GET//stream', 'background', true],
          ['WebTransaction/Expressjs/GET//slow', 'web', true]
        ])
      } finally {
        await server.close()
      }
      assert.deepEqual((await ours(BACKGROUND_DURATION)).map((p) => p.attributes[AttributeName.NAME]), ['OtherTransaction/Expressjs/GET//stream'])
      assert.deepEqual((await ours(HTTP_DURATION)).map((p) => p.attributes['http.route']), ['/slow'])
      const spans = await spansWhen((all) => serverSpans(all).length >= 2)
      assert.equal(serverSpanFor(spans, '/stream').attributes[AttributeName.TYPE], 'background')
    })
  }
})

describe('failures stay out of the request', () => {
  it('a meter that throws is reported through debug, and the request and other subscribers go on', async () => {
    const { meterProvider } = sdk.createMeterProvider()
    const broken = {
      getMeter(...args) {
        const meter = meterProvider.getMeter(...args)
        return {
          createHistogram: (...histogramArgs) => {
            meter.createHistogram(...histogramArgs)
            return { record() { throw new Error('exporter on fire') } }
          }
        }
      }
    }
    const instrumentation = instrumentOpenTelemetry({ meterProvider: broken })
    live.push({ instrumentation, meterProvider })
    const capture = captureDebug('express-background-task:opentelemetry')
    try {
      const { agent, waitFor } = recordingAgent()
      const records = await serve(createApp('express 5', agent), ['/users/1'], waitFor)
      assert.equal(records[0].statusCode, 200)
      assert.equal(agent.backgroundTask('still-fine', () => 7), 7)
    } finally {
      capture.stop()
    }
    assert.equal(capture.lines.filter((line) => line.includes('fail on transaction end') && line.includes('exporter on fire')).length, 2)
  })
})

describe('isLongLivedRequest (an ignoreIncomingRequestHook)', () => {
  it('is true for an event stream or an upgrade, false otherwise', () => {
    assert.equal(isLongLivedRequest({ headers: { accept: 'text/html, Text/Event-Stream' } }), true)
    assert.equal(isLongLivedRequest({ headers: { upgrade: 'websocket', connection: 'Upgrade' } }), true)
    assert.equal(isLongLivedRequest({ headers: { accept: 'application/json' } }), false)
    assert.equal(isLongLivedRequest({ headers: {} }), false)
  })
})

describe('load order', () => {
  const FIXTURE = path.join(__dirname, 'fixtures', 'otel-order.js')
  for (const order of ['instrumentations-first', 'package-first']) {
    it(`${order}: the same metrics and span labels`, async () => {
      const stdout = await new Promise((resolve, reject) => {
        execFile(process.execPath, [FIXTURE, order], { timeout: 30_000 }, (err, out, errOut) => {
          if (err) reject(Object.assign(err, { message: `${err.message}\n${out}\n${errOut}` }))
          else resolve(out)
        })
      })
      const result = JSON.parse(stdout.trim().split('\n').pop())
      assert.deepEqual(result, {
        order,
        web: [['/users/:id', 200, 1]],
        background: [['OtherTransaction/Expressjs/GET//events', 1]],
        instrumentationHttpDuration: 0,
        servers: [
          ['/events', 'background', 1, 'OtherTransaction/Expressjs/GET//events', 'GET /events'],
          ['/users/7', 'web', 0, 'WebTransaction/Expressjs/GET//users/:id', 'GET /users/:id']
        ]
      })
    })
  }
})

describe('examples/opentelemetry.js run as is', () => {
  it('serves the app, prints each server span with its type, and shows web and background apart on /otel', async () => {
    const { spawn } = require('node:child_process')
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'opentelemetry.js')], {
      env: { ...process.env, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', (chunk) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk) => { stdout += chunk })
    const exited = new Promise((resolve) => child.on('exit', resolve))
    const waitFor = async (pattern) => {
      for (let waited = 0; !pattern.test(stdout); waited += 10) {
        if (waited > 10_000) throw new Error(`no ${pattern} in:\n${stdout}`)
        await delay(10)
      }
      return stdout.match(pattern)
    }
    try {
      const [, port] = await waitFor(/^listening on http:\/\/127\.0\.0\.1:(\d+)$/m)
      const url = (p) => `http://127.0.0.1:${port}${p}`
      assert.equal((await request(url('/users/7'))).status, 200)
      assert.equal((await request(url('/reports/7'))).status, 200)
      await waitFor(/^span GET \/users\/:id express_background_task\.type=web$/m)
      await waitFor(/^span GET \/reports\/:id express_background_task\.type=background$/m)
      const rows = JSON.parse((await request(url('/otel'))).body)
      const summary = rows
        .filter((row) => row.scope === SCOPE)
        .map((row) => [row.name, row.attributes['http.route'] ?? row.attributes[AttributeName.NAME], row.count])
      assert.deepEqual(summary, [
        [HTTP_DURATION, '/users/:id', 1],
        [BACKGROUND_DURATION, 'OtherTransaction/Expressjs/GET//reports/:id', 1]
      ])
      assert.deepEqual(rows.filter((row) => row.scope !== SCOPE && row.name === HTTP_DURATION), [], 'the View dropped instrumentation-http\'s')
    } finally {
      child.kill()
      await exited
    }
  })
})

'use strict'
// The examples cannot rot: each app is built with a recording agent and checked by its records, each
// file is run as is (`node examples/<file>`), and `npm start`'s demo is run to its table.
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const http = require('node:http')
const { ENGINES, recordingAgent, listen, request, delay, spawnNode } = require('./helpers')

const EXAMPLES_DIR = path.join(__dirname, '..', 'examples')
const example = (file) => require(path.join(EXAMPLES_DIR, file))

/**
 * Every example server, run as is by `node examples/<file>` with PORT=0: the request to send and
 * the lines its own transaction log must print. `demo.js` is run on its own below.
 */
const SERVERS = {
  'server-sent-events.js': {
    request: { path: '/api/users/1' },
    expect: [/^web {8}WebTransaction\/Expressjs\/GET\/\/api\/users\/:id 200 /m]
  },
  'worker-job-turned-web.js': {
    request: { method: 'POST', path: '/previews', body: { documentId: 7 } },
    expect: [/^web {8}WebTransaction\/Nodejs\/render-preview /m, /^web {8}WebTransaction\/Expressjs\/POST\/\/previews /m]
  },
  'upstream-flag.js': {
    request: { path: '/reports/7', headers: { 'X-Background-Task': 'on' } },
    expect: [/^background OtherTransaction\/Expressjs\/GET\/\/reports\/:id /m]
  },
  'cls-hooked-interop.js': {
    request: { path: '/orders/42', headers: { 'X-Request-Id': 'abc' } },
    expect: [/^\[abc\] WebTransaction\/Expressjs\/GET\/\/orders\/:id: load order 42$/m, /^web {8}WebTransaction\/Expressjs\/GET\/\/orders\/:id /m]
  },
  'connect.js': {
    request: { path: '/API/users/7' },
    expect: [/^web {8}WebTransaction\/Connect\/GET\/\/Api\/users /m]
  },
  // Its metrics page is checked in test/opentelemetry.test.js.
  'opentelemetry.js': {
    request: { path: '/reports/7' },
    expect: [/^span GET \/reports\/:id express_background_task\.type=background$/m]
  }
}
// cluster-prometheus.js runs as a real cluster in test/prometheus-cluster.test.js and test/e2e/prometheus.test.js,
// cluster-dashboard.js in test/dashboard.test.js; newrelic-bridge.js runs with the real agent, offline, in test/newrelic.test.js.
const STANDALONE = ['demo.js', 'cluster-prometheus.js', 'cluster-dashboard.js', 'newrelic-bridge.js']

/** JSON request through the shared helper; resolves { status, body (parsed when JSON), headers }. */
async function send(url, { method = 'GET', headers = {}, body } = {}) {
  const payload = body === undefined ? undefined : JSON.stringify(body)
  if (payload !== undefined) headers = { 'Content-Type': 'application/json', ...headers }
  const res = await request(url, { method, headers, body: payload })
  const json = /json/.test(res.headers['content-type'] ?? '')
  return { ...res, body: json ? JSON.parse(res.body) : res.body }
}

/**
 * Open a streaming GET on its own connection; resolves once `pattern` matched `count` times in what
 * arrived, with the text so far and `close()` to hang up as a browser tab does.
 */
function openStream(url, pattern, count) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => {
        text += chunk
        if ((text.match(pattern) ?? []).length >= count) resolve({ status: res.statusCode, text, close: () => req.destroy() })
      })
      res.on('error', () => {}) // our own hang-up
    })
    req.on('error', reject)
  })
}

/** Wait until `records` holds one whose name is `name`. */
async function recordNamed(records, name, timeoutMs = 5000) {
  for (let waited = 0; waited < timeoutMs; waited += 5) {
    const found = records.find((record) => record.name === name)
    if (found !== undefined) return found
    await delay(5)
  }
  throw new Error(`no record named ${name}; got ${records.map((r) => r.name).join(', ')}`)
}

/** Run `fn(server)` against the app on a loopback port, then close it. */
async function withServer(app, fn) {
  const server = await listen(app)
  try {
    return await fn(server)
  } finally {
    await server.close()
  }
}

describe('examples directory', () => {
  it('has a test for every example file, and each server example exports its app factory without listening', () => {
    const files = fs
      .readdirSync(EXAMPLES_DIR, { withFileTypes: true })
      .filter((entry) => entry.isFile() && entry.name.endsWith('.js'))
      .map((entry) => entry.name)
      .sort()
    assert.deepEqual(files, [...Object.keys(SERVERS), ...STANDALONE].sort())
    for (const file of Object.keys(SERVERS)) assert.equal(typeof example(file).createApp, 'function', file)
  })
})

for (const engine of ENGINES) {
  describe(`examples/server-sent-events.js (${engine.name})`, () => {
    const { createApp } = example('server-sent-events.js')

    it('keeps the JSON API web, named by route templates without raw values', async () => {
      const { agent, records, waitFor } = recordingAgent(engine.options())
      await withServer(createApp({ agent }), async (server) => {
        assert.deepEqual((await send(server.url('/api/users/2?fields=name'))).body, { id: 2, name: 'Grace Hopper' })
        assert.equal((await send(server.url('/api/users/99'))).status, 404)
        assert.equal((await send(server.url('/api/users'))).status, 200)
        assert.equal((await send(server.url('/api/orders'), { method: 'POST', body: { items: ['tea'] } })).status, 201)
        assert.equal((await send(server.url('/favicon.ico'))).status, 404)
        await waitFor(5)
      })
      assert.deepEqual(
        records.map((r) => [r.type, r.name, r.statusCode]),
        [
          ['web', 'WebTransaction/Expressjs/GET//api/users/:id', 200],
          ['web', 'WebTransaction/Expressjs/GET//api/users/:id', 404],
          ['web', 'WebTransaction/Expressjs/GET//api/users', 200],
          ['web', 'WebTransaction/Expressjs/POST//api/orders', 201],
          ['web', 'WebTransaction/Expressjs/GET/(not found)', 404]
        ]
      )
    })

    it('records an event stream as one background transaction that lasts until the client hangs up', async () => {
      const { agent, records } = recordingAgent(engine.options())
      await withServer(createApp({ agent, eventIntervalMs: 5 }), async (server) => {
        const stream = await openStream(server.url('/events'), /^event: tick$/gm, 3)
        assert.equal(stream.status, 200)
        assert.match(stream.text, /^data: \{"at":\d+\}$/m)
        assert.equal(records.length, 0, 'nothing is recorded while the stream is open')
        stream.close()
        const record = await recordNamed(records, 'OtherTransaction/Expressjs/GET//events')
        assert.equal(record.type, 'background')
        assert.equal(record.path, '/events')
        assert.equal(record.statusCode, 200)
        assert.equal(record.aborted, true)
      })
    })

    it('records the export marked by req.newrelic.setBackgroundTask as background, finished or abandoned', async () => {
      const { agent, records, waitFor } = recordingAgent(engine.options())
      await withServer(createApp({ agent, exportPageMs: 1 }), async (server) => {
        const csv = await send(server.url('/exports/orders'))
        assert.equal(csv.status, 200)
        assert.match(csv.headers['content-disposition'], /orders\.csv/)
        assert.equal(csv.body.trim().split('\n').length, 11)
        assert.equal((await send(server.url('/exports/nope'))).status, 404)
        await waitFor(2)
        const abandoned = await openStream(server.url('/exports/invoices'), /^id,total$/gm, 1)
        abandoned.close()
        await waitFor(3)
      })
      assert.deepEqual(
        records.map((r) => [r.type, r.name, r.statusCode, r.aborted]),
        [
          ['background', 'OtherTransaction/Expressjs/GET//exports/:report', 200, false],
          ['background', 'OtherTransaction/Expressjs/GET//exports/:report', 404, false],
          ['background', 'OtherTransaction/Expressjs/GET//exports/:report', 200, true]
        ]
      )
    })
  })

  describe(`examples/worker-job-turned-web.js (${engine.name})`, () => {
    const { createApp, createWorker } = example('worker-job-turned-web.js')

    it('runs send-digest jobs as background transactions and render-preview as a web one', async () => {
      const { agent, records, waitFor } = recordingAgent(engine.options())
      const failures = []
      const worker = createWorker({ agent, onError: (err, job) => failures.push([job.type, err.message]) })
      await withServer(createApp({ agent, worker }), async (server) => {
        assert.equal((await send(server.url('/digests'), { method: 'POST', body: { userId: 1 } })).status, 202)
        assert.equal((await send(server.url('/digests'), { method: 'POST', body: { userId: 9 } })).status, 202)
        const preview = await send(server.url('/previews'), { method: 'POST', body: { documentId: 7 } })
        assert.deepEqual(preview.body, { url: '/previews/7.png' })
        await waitFor(6)
      })
      const digests = records.filter((r) => r.name === 'OtherTransaction/Nodejs/send-digest')
      assert.deepEqual(
        digests.map((r) => [r.type, r.attributes.userId, r.error?.message]),
        [
          ['background', 1, undefined],
          ['background', 9, 'user 9 has no email address']
        ]
      )
      assert.deepEqual(failures, [['sendDigest', 'user 9 has no email address']])
      const preview = records.find((r) => r.name === 'WebTransaction/Nodejs/render-preview')
      assert.equal(preview?.type, 'web')
      assert.equal(preview.method, undefined, 'a job, not a request')
      assert.deepEqual(
        records.filter((r) => r.method !== undefined).map((r) => [r.type, r.name, r.statusCode]),
        [
          ['web', 'WebTransaction/Expressjs/POST//digests', 202],
          ['web', 'WebTransaction/Expressjs/POST//digests', 202],
          ['web', 'WebTransaction/Expressjs/POST//previews', 200]
        ]
      )
    })

    it('classifies jobs the same when the worker is fed outside any request', async () => {
      const { agent, records, waitFor } = recordingAgent(engine.options())
      const worker = createWorker({ agent, onError: () => {} })
      const results = await Promise.all([worker.enqueue('renderPreview', { documentId: 1 }), worker.enqueue('sendDigest', { userId: 2 })])
      assert.deepEqual(results, [{ url: '/previews/1.png' }, { sentTo: 'grace@example.com' }])
      await waitFor(2)
      assert.deepEqual(
        records.map((r) => [r.type, r.name]),
        [
          ['web', 'WebTransaction/Nodejs/render-preview'],
          ['background', 'OtherTransaction/Nodejs/send-digest']
        ]
      )
    })
  })

  describe(`examples/upstream-flag.js (${engine.name})`, () => {
    const { createApp } = example('upstream-flag.js')

    it('applies X-Background-Task values set before the middleware, parsed as the Python agent parses them', async () => {
      const cases = [
        ['on', 'background'],
        ['TRUE', 'background'],
        ['1', 'background'],
        ['On', 'background'],
        ['off', 'web'],
        ['False', 'web'],
        ['0', 'web'],
        ['yes', 'web'],
        ['', 'web'],
        [undefined, 'web']
      ]
      const { agent, records, waitFor } = recordingAgent(engine.options())
      await withServer(createApp({ agent }), async (server) => {
        for (const [index, [value]] of cases.entries()) {
          const headers = value === undefined ? {} : { 'X-Background-Task': value }
          assert.equal((await send(server.url(`/reports/${index}`), { headers })).status, 200)
          await waitFor(index + 1)
        }
      })
      assert.deepEqual(
        records.map((r) => r.type),
        cases.map(([, type]) => type)
      )
      for (const record of records) assert.equal(record.name.replace(/^\w+Transaction/, ''), '/Expressjs/GET//reports/:id')
    })

    it('records nothing for health checks', async () => {
      const { agent, records, waitFor } = recordingAgent(engine.options())
      await withServer(createApp({ agent }), async (server) => {
        assert.equal((await send(server.url('/healthz'))).body, 'ok')
        assert.equal((await send(server.url('/readyz'), { headers: { 'X-Background-Task': 'on' } })).body, 'ok')
        await send(server.url('/api/items/5'))
        await waitFor(1)
      })
      assert.deepEqual(
        records.map((r) => [r.type, r.name]),
        [['web', 'WebTransaction/Expressjs/GET//api/items/:id']]
      )
    })
  })

  describe(`examples/connect.js (${engine.name})`, () => {
    const { createApp } = example('connect.js')

    it('names by the mount path as registered, marks the stream and the export background, ignores health checks', async () => {
      const { agent, records, waitFor } = recordingAgent(engine.options())
      await withServer(createApp({ agent, eventIntervalMs: 5 }), async (server) => {
        assert.deepEqual((await send(server.url('/api/users/7'))).body, { id: '7' })
        assert.deepEqual((await send(server.url('/API/USERS/8?x=1'))).body, { id: '8' })
        assert.equal((await send(server.url('/healthz'))).body, 'ok')
        assert.equal((await send(server.url('/export'))).body.split('\n').length, 6)
        const stream = await openStream(server.url('/events'), /^data: \d+$/gm, 2)
        stream.close()
        await recordNamed(records, 'OtherTransaction/Connect/GET//events')
        assert.equal((await send(server.url('/nope'))).status, 404)
        await waitFor(5)
      })
      assert.deepEqual(
        records.map((r) => [r.type, r.name, r.aborted]),
        [
          ['web', 'WebTransaction/Connect/GET//Api/users', false],
          ['web', 'WebTransaction/Connect/GET//Api/users', false],
          ['background', 'OtherTransaction/Connect/GET//export', false],
          ['background', 'OtherTransaction/Connect/GET//events', true],
          ['web', 'WebTransaction/Connect/GET/(not found)', false]
        ]
      )
    })
  })
}

describe('examples/cls-hooked-interop.js', () => {
  const { createApp, ns } = example('cls-hooked-interop.js')

  it("shows the transaction to the app's code through ns.get('transaction'), next to its request id, under concurrency", async () => {
    const { agent, records, waitFor } = recordingAgent({ context: ns })
    const lines = []
    await withServer(createApp({ agent, write: (line) => lines.push(line) }), async (server) => {
      const responses = await Promise.all(
        Array.from({ length: 20 }, (_, i) => send(server.url(`/orders/${i}`), { headers: { 'X-Request-Id': `req-${i}` } }))
      )
      await waitFor(20)
      for (const [i, { body }] of responses.entries()) {
        assert.equal(body.requestId, `req-${i}`)
        assert.equal(body.transaction.name, 'WebTransaction/Expressjs/GET//orders/:id')
      }
      // The handle the app read from its namespace is the very transaction that was recorded.
      assert.deepEqual(
        new Set(responses.map(({ body }) => body.transaction.id)),
        new Set(records.map((r) => r.id))
      )
    })
    assert.deepEqual(
      lines.sort(),
      Array.from({ length: 20 }, (_, i) => `[req-${i}] WebTransaction/Expressjs/GET//orders/:id: load order ${i}`).sort()
    )
  })

  it('reclassifies through the handle from the namespace, and tags a job with the request id that started it', async () => {
    const { agent, records, waitFor } = recordingAgent({ context: ns })
    const lines = []
    await withServer(createApp({ agent, write: (line) => lines.push(line) }), async (server) => {
      const invoice = await send(server.url('/orders/42/invoice'), { headers: { 'X-Request-Id': 'inv-1' } })
      assert.equal(invoice.headers['content-type'], 'application/pdf')
      const created = await send(server.url('/orders'), { method: 'POST', headers: { 'X-Request-Id': 'post-1' } })
      assert.equal(created.status, 201)
      await waitFor(3)
      assert.deepEqual(lines, [
        '[inv-1] OtherTransaction/Expressjs/GET//orders/:id/invoice: render invoice 42',
        `[post-1] OtherTransaction/Nodejs/index-order: index order ${created.body.id}`
      ])
    })
    assert.deepEqual(
      records.map((r) => [r.type, r.name]),
      [
        ['background', 'OtherTransaction/Expressjs/GET//orders/:id/invoice'],
        ['web', 'WebTransaction/Expressjs/POST//orders'],
        ['background', 'OtherTransaction/Nodejs/index-order']
      ]
    )
  })
})

/** Spawn `node examples/<file>` with PORT=0; `waitFor(regex)` resolves once its stdout matches. */
function runExample(file) {
  return spawnNode(path.join(EXAMPLES_DIR, file), { PORT: '0' })
}

describe('examples run as is', { concurrency: true }, () => {
  for (const [file, { request: req, expect }] of Object.entries(SERVERS)) {
    it(`node examples/${file} listens on PORT and logs its transactions`, async () => {
      const run = runExample(file)
      try {
        const [, port] = await run.waitFor(/^listening on http:\/\/127\.0\.0\.1:(\d+)$/m)
        const res = await send(`http://127.0.0.1:${port}${req.path}`, req)
        assert.ok(res.status < 400, `${file}: ${req.path} answered ${res.status}`)
        for (const pattern of expect) await run.waitFor(pattern)
      } finally {
        run.child.kill()
        await run.exited
      }
    })
  }

  it('npm start (examples/demo.js) compares the same traffic as web and as background from metrics(), and exits 0', async () => {
    const run = runExample('demo.js')
    const { code } = await run.exited
    const { stdout, stderr } = run.output()
    assert.equal(code, 0, `demo exited ${code}:\n${stdout}\n${stderr}`)

    assert.match(stdout.split('\n')[0], /^dashboard: http:\/\/127\.0\.0\.1:\d+\/_background /, 'the dashboard address comes first')
    const [, sent, streams] = stdout.match(/^sent the same (\d+) requests twice \(\d+ at a time, (\d+) of them event streams/m) ?? []
    assert.ok(sent !== undefined, `no "sent" line in:\n${stdout}`)
    const comparison = readTable(stdout, /^from metrics\(\) +left as web +marked background$/)
    const figure = (label) => {
      const row = comparison.find((cells) => cells[0].startsWith(label))
      assert.ok(row, `no "${label}" row in:\n${stdout}`)
      return row.slice(1).map(Number)
    }
    const exports = 4
    const background = Number(streams) + exports
    assert.deepEqual(figure('web transactions'), [Number(sent), Number(sent) - background])
    assert.deepEqual(figure('background transactions'), [0, background])
    const [apdexAsWeb, apdexMarked] = figure('web Apdex score')
    assert.ok(apdexAsWeb < apdexMarked && apdexMarked <= 1, `Apdex ${apdexAsWeb} -> ${apdexMarked}`)
    const [meanAsWeb, meanMarked] = figure('web mean response time')
    assert.ok(meanAsWeb > 2 * meanMarked, `mean ${meanAsWeb} -> ${meanMarked}`)
    const [p95AsWeb, p95Marked] = figure('web p95 response time')
    assert.ok(p95AsWeb > p95Marked, `p95 ${p95AsWeb} -> ${p95Marked}`)

    const names = readTable(stdout, /^name +count +mean ms +max ms +Apdex$/)
    const row = (name) => names.find((cells) => cells[0] === name)
    assert.equal(row('OtherTransaction/Expressjs/GET//events')?.[1], streams)
    assert.equal(row('OtherTransaction/Expressjs/GET//exports/:report')?.[1], String(exports))
    assert.equal(row('OtherTransaction/Expressjs/GET//events')?.[4], '-', 'no Apdex for background')
    for (const name of ['GET//api/users/:id', 'GET//api/users', 'POST//api/orders', 'GET/(not found)']) {
      assert.match(row(`WebTransaction/Expressjs/${name}`)?.[4] ?? '', /^[01]\.\d\d$/, name)
    }
    assert.equal(names.reduce((sum, cells) => sum + Number(cells[1]), 0), Number(sent), 'every request was counted once')
  })
})

/** The cells of the aligned table whose header matches, up to the next blank line; checks the rule and alignment. */
function readTable(stdout, header) {
  const lines = stdout.split('\n')
  const start = lines.findIndex((line) => header.test(line))
  assert.ok(start !== -1, `no table ${header} in:\n${stdout}`)
  assert.match(lines[start + 1], /^-+( +-+)+$/)
  const end = lines.indexOf('', start) === -1 ? lines.length : lines.indexOf('', start)
  const table = lines.slice(start, end)
  assert.equal(new Set(table.map((line) => line.length)).size, 1, 'columns are aligned')
  return table.slice(2).map((line) => line.trim().split(/ {2,}/))
}

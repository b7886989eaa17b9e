'use strict'
// examples/cluster-prometheus.js as is: a real primary and 2 workers on 127.0.0.1; the primary's
// /metrics sums the workers' series exactly (counts and every bucket), and survives a worker dying mid-scrape.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { request, delay } = require('./helpers')
const { parseExposition, total, startCluster, stopCluster, loggedTransactions, openStream, eventually } = require('./fixtures/cluster-example')

const TIMEOUT_MS = 60_000
const WEB_PREFIX = 'WebTransaction/Expressjs/GET/'

describe('examples/cluster-prometheus.js: a primary and 2 workers', { timeout: TIMEOUT_MS }, () => {
  let cluster
  before(async () => {
    cluster = await startCluster()
  })
  after(() => stopCluster(cluster))

  it('sums the workers exactly: counts, every bucket, Apdex zones; the stream in flight while it runs; background never web', async () => {
    const { run, appUrl, metricsUrl } = cluster
    const scrape = async () => {
      const res = await request(metricsUrl)
      assert.equal(res.status, 200, res.body)
      assert.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
      return parseExposition(res.body)
    }
    const stream = await openStream(appUrl('/events'))
    await eventually(async () => total(await scrape(), 'transactions_in_flight', { type: 'background' }) === 1, 'the stream in flight')
    // a new connection each: the primary hands them to the workers in turn
    const paths = [
      ...Array.from({ length: 10 }, (_, i) => `/api/users/${i}`),
      '/api/search', '/api/search', '/api/orders', '/api/orders', '/exports/orders', '/exports/invoices', '/healthz', '/healthz'
    ]
    const responses = await Promise.all(paths.map((p) => request(appUrl(p), { agent: false })))
    assert.deepEqual(responses.map((r) => r.status), paths.map((p) => (p === '/api/orders' ? 503 : 200)))
    stream.close()
    await eventually(() => loggedTransactions(run.stdout()).length === 17, '17 logged transactions')
    const logged = loggedTransactions(run.stdout())
    assert.ok(new Set(logged.map((t) => t.pid)).size === 2, 'both workers served some of the requests')

    const samples = await scrape()
    const web = logged.filter((t) => t.type === 'web')
    assert.equal(web.length, 14)
    assert.equal(total(samples, 'http_server_request_duration_seconds_count'), 14)
    assert.equal(total(samples, 'http_server_request_duration_seconds_count', { route: '/api/users/:id', status_code: '200' }), 10)
    assert.equal(total(samples, 'http_server_request_duration_seconds_count', { route: '/api/orders', status_code: '503' }), 2)
    assert.equal(samples.some((s) => s.name.startsWith('http_server_request_duration_seconds') && /events|exports|healthz/.test(s.labels.route)), false)
    // every bucket of every series is the number of logged transactions (of either worker) at or under its bound
    const buckets = samples.filter((s) => s.name === 'http_server_request_duration_seconds_bucket')
    // 3 series (users, search, orders) of 16 buckets: OpenTelemetry's 14, 4T = 2 (T = 0.5 is one of them), +Inf
    assert.equal(buckets.length, 3 * 16)
    for (const { labels, value } of buckets) {
      const le = labels.le === '+Inf' ? Infinity : Number(labels.le)
      const expected = web.filter((t) => t.name === WEB_PREFIX + labels.route && t.status === labels.status_code && t.duration / 1000 <= le).length
      assert.equal(value, expected, JSON.stringify(labels))
    }
    for (const { labels, value } of samples.filter((s) => s.name === 'background_transaction_duration_seconds_bucket')) {
      const le = labels.le === '+Inf' ? Infinity : Number(labels.le)
      assert.equal(value, logged.filter((t) => t.type === 'background' && t.name === labels.name && t.duration / 1000 <= le).length, JSON.stringify(labels))
    }
    assert.equal(total(samples, 'background_transaction_duration_seconds_count', { name: 'OtherTransaction/Expressjs/GET//exports/:report' }), 2)
    assert.equal(total(samples, 'background_transaction_duration_seconds_count', { name: 'OtherTransaction/Expressjs/GET//events' }), 1)
    const sum = total(samples, 'http_server_request_duration_seconds_sum')
    assert.ok(Math.abs(sum - web.reduce((s, t) => s + t.duration / 1000, 0)) < 1e-9, `sum ${sum}`)
    // Apdex (T = 0.5 s): quick ones satisfy, the 0.8 s searches are tolerated, the 503s frustrate
    assert.deepEqual(
      ['satisfying', 'tolerating', 'frustrating'].map((zone) => total(samples, 'apdex_transactions_total', { zone })),
      [10, 2, 2]
    )
    assert.equal(total(samples, 'transactions_in_flight'), 0)
  })

  it('answers a scrape while a worker dies in the middle of it, and the next scrape serves the live workers', async () => {
    const { run, metricsUrl, pids } = cluster
    const [victim] = pids
    // stopped, the worker is still connected but cannot answer: the scrape waits on it
    process.kill(victim, 'SIGSTOP')
    const scrape = request(metricsUrl)
    await delay(300)
    process.kill(victim, 'SIGKILL')
    const failed = await scrape
    assert.equal(failed.status, 503)
    assert.match(failed.body, /metrics unavailable/)
    await run.waitFor(new RegExp(`^worker ${victim} exited \\(SIGKILL\\)$`, 'm'))
    await run.waitFor(/^worker \d+ started$(?![\s\S]*worker \d+ exited)/m)
    await eventually(async () => {
      const res = await request(metricsUrl)
      return res.status === 200 && /^transactions_in_flight\{type="web"\} 0$/m.test(res.body)
    }, 'a good scrape after the replacement')
    assert.equal(run.child.exitCode, null, 'the primary is still running')
  })
})

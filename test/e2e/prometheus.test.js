'use strict'
// End to end: Debian's real `prometheus` binary, started here with a generated config on a free
// loopback port and a temporary TSDB, scrapes examples/cluster-prometheus.js's primary (2 workers)
// and the same app in this process; its HTTP API must then give the figures the README's PromQL
// promises. Needs the binary: `apt-get install -y --no-install-recommends prometheus`. Under CI=true
// a missing binary fails the run; elsewhere the test is skipped with that message.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const promClient = require('prom-client')
const { ebt, listen, request, delay } = require('../helpers')
const { startCluster, stopCluster, loggedTransactions, openStream, eventually } = require('../fixtures/cluster-example')
const { MISSING, SKIP, startPrometheus } = require('../fixtures/prometheus-server')
const { createPrometheusExporter } = require('express-background-task/prometheus')
const { createApp } = require('../../examples/cluster-prometheus')

const TIMEOUT_MS = 120_000
const APDEX_T = 0.5
if (MISSING !== undefined && process.env.CI !== 'true') console.log(`# skipping the Prometheus end-to-end test: ${MISSING}`)

/** The traffic, sent alike to both targets. Quick users satisfy, 0.8 s searches are tolerated (T = 0.5), 503s frustrate. */
const WARM_UP = ['/api/users/0', '/api/search', '/api/orders', '/exports/orders']
const TRAFFIC = [
  ...Array.from({ length: 12 }, (_, i) => `/api/users/${i + 1}`),
  '/api/search', '/api/search', '/api/search',
  '/api/orders', '/api/orders',
  '/exports/orders', '/exports/invoices',
  '/healthz', '/healthz'
]
const STREAMS = 2
const count = (paths, pattern) => paths.filter((p) => pattern.test(p)).length

describe('a real Prometheus scraping the cluster example and a single process', { timeout: TIMEOUT_MS, skip: SKIP }, () => {
  let cluster
  let single
  let prometheus
  const agent = ebt.createAgent({ apdexT: APDEX_T })
  let exporter

  before(async () => {
    cluster = await startCluster()
    // the same app in this process, its metrics served from a server of their own (scrapes are not transactions)
    const registry = new promClient.Registry()
    exporter = createPrometheusExporter({ registry, agent })
    single = { app: await listen(createApp({ agent })), metrics: await listen(exporter.handler()) }
    const target = (url) => new URL(url).host
    prometheus = await startPrometheus({ cluster: target(cluster.metricsUrl), single: target(single.metrics.url('/metrics')) })
  })

  after(async () => {
    await prometheus?.stop()
    await stopCluster(cluster)
    await single?.app.close()
    await single?.metrics.close()
    exporter?.close()
  })

  const query = (promql) => prometheus.query(promql)
  const byJob = (promql) => prometheus.byJob(promql)

  /** Send `paths` to both targets at once, a new connection each (so the primary spreads them over the workers). */
  async function sendToBoth(paths) {
    const urls = [...paths.map(cluster.appUrl), ...paths.map((p) => single.app.url(p))]
    const responses = await Promise.all(urls.map((url) => request(url, { agent: false })))
    for (const [i, res] of responses.entries()) assert.equal(res.status, /\/api\/orders$/.test(urls[i]) ? 503 : 200, urls[i])
  }

  it('counts what was sent, keeps the background streams out of the web histogram, and agrees on Apdex with metrics()', async () => {
    // warm-up: every series exists in Prometheus before the traffic, so rate() sees all of it
    await sendToBoth(WARM_UP)
    const webWarmUp = count(WARM_UP, /^\/api\//)
    await eventually(async () => {
      const seen = await byJob('sum by (job) (http_server_request_duration_seconds_count)')
      return seen.cluster === webWarmUp && seen.single === webWarmUp
    }, 'the warm-up scraped', 20_000)
    await delay(2500) // a few more samples of the warm-up values

    // streams open while the traffic runs: in flight in both, as background
    const streams = []
    for (let i = 0; i < STREAMS; i++) streams.push(await openStream(cluster.appUrl('/events')), await openStream(single.app.url('/events')))
    await sendToBoth(TRAFFIC)
    await eventually(async () => {
      const inFlight = await byJob('sum by (job) (transactions_in_flight{type="background"})')
      return inFlight.cluster === STREAMS && inFlight.single === STREAMS
    }, 'the open streams in transactions_in_flight', 15_000)
    for (const stream of streams) stream.close()

    const web = webWarmUp + count(TRAFFIC, /^\/api\//)
    const background = count(WARM_UP, /^\/exports\//) + count(TRAFFIC, /^\/exports\//) + STREAMS
    await eventually(async () => {
      const [webSeen, backgroundSeen, inFlight] = await Promise.all([
        byJob('sum by (job) (http_server_request_duration_seconds_count)'),
        byJob('sum by (job) (background_transaction_duration_seconds_count)'),
        byJob('sum by (job) (transactions_in_flight)')
      ])
      return webSeen.cluster === web && webSeen.single === web && backgroundSeen.cluster === background && backgroundSeen.single === background &&
        inFlight.cluster === 0 && inFlight.single === 0
    }, 'every transaction scraped and nothing in flight', 20_000)
    // the workers logged as many as Prometheus counted (and split them between themselves)
    const logged = loggedTransactions(cluster.run.stdout())
    assert.equal(logged.filter((t) => t.type === 'web').length, web)
    assert.equal(logged.filter((t) => t.type === 'background').length, background)
    assert.equal(new Set(logged.map((t) => t.pid)).size, 2)

    // a request marked background is in no web series, of either target
    assert.deepEqual(await query('http_server_request_duration_seconds_count{route=~"/events|/exports/.*|/healthz"}'), [])
    assert.deepEqual(await byJob('sum by (job) (background_transaction_duration_seconds_count{name="OtherTransaction/Expressjs/GET//events"})'), { cluster: STREAMS, single: STREAMS })

    // Apdex from the counters: exact, and what this process's metrics() says of the same traffic
    const apdex = 'sum by (job) (apdex_transactions_total{zone="satisfying"}) + sum by (job) (apdex_transactions_total{zone="tolerating"}) / 2'
    const scores = await byJob(`(${apdex}) / sum by (job) (apdex_transactions_total)`)
    const { satisfying, tolerating, frustrating, score } = agent.metrics().apdex.Apdex
    const users = count([...WARM_UP, ...TRAFFIC], /users/)
    const searches = count([...WARM_UP, ...TRAFFIC], /search/)
    const orders = count([...WARM_UP, ...TRAFFIC], /^\/api\/orders$/)
    assert.deepEqual({ satisfying, tolerating, frustrating }, { satisfying: users, tolerating: searches, frustrating: orders })
    assert.deepEqual(scores, { cluster: score, single: score })

    // the bucket formula (le=T + le=4T) / 2 / count agrees within its known limits: it cannot see
    // errors, so the quick 503s count as satisfying there
    const buckets = await byJob(
      '(sum by (job) (http_server_request_duration_seconds_bucket{le="0.5"}) + sum by (job) (http_server_request_duration_seconds_bucket{le="2"})) / 2' +
      ' / sum by (job) (http_server_request_duration_seconds_count)'
    )
    const bucketScore = (users + orders + searches / 2) / web
    assert.ok(Math.abs(buckets.cluster - bucketScore) < 1e-12 && Math.abs(buckets.single - bucketScore) < 1e-12, `${JSON.stringify(buckets)} vs ${bucketScore}`)

    // the README's dashboard queries, over rate(): p95 of web only stays under the slowest web bucket
    // with data, though the streams and exports (1.5 s and more) ran at the same time
    const p95 = await byJob('histogram_quantile(0.95, sum by (job, le) (rate(http_server_request_duration_seconds_bucket[5m])))')
    for (const job of ['cluster', 'single']) assert.ok(p95[job] > 0 && p95[job] <= 1, `${job} web p95 ${p95[job]}`)
    const backgroundP50 = await byJob('histogram_quantile(0.5, sum by (job, le) (rate(background_transaction_duration_seconds_bucket[5m])))')
    for (const job of ['cluster', 'single']) assert.ok(backgroundP50[job] > 1, `${job} background p50 ${backgroundP50[job]}`)
    // and Apdex over rate(): the traffic after the warm-up (rate() extrapolates, hence the margin)
    const rated = await byJob(
      '(sum by (job) (rate(apdex_transactions_total{zone="satisfying"}[5m])) + sum by (job) (rate(apdex_transactions_total{zone="tolerating"}[5m])) / 2)' +
      ' / sum by (job) (rate(apdex_transactions_total[5m]))'
    )
    const trafficScore = (count(TRAFFIC, /users/) + count(TRAFFIC, /search/) / 2) / count(TRAFFIC, /^\/api\//)
    for (const job of ['cluster', 'single']) assert.ok(Math.abs(rated[job] - trafficScore) < 0.03, `${job} rated Apdex ${rated[job]} vs ${trafficScore}`)
  })
})

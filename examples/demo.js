'use strict'
// `npm start`: what marking long endpoints as background does to web metrics. The same traffic
// (API calls, 404s, slow exports, event streams that clients hold open for 1-3 s) is sent twice to
// the server-sent-events example: once with the long endpoints left as web, once marked background.
// Each run is harvested with `metrics({ reset: true })`, and every figure printed comes from there.
// The live page of express-background-task/dashboard is served first (PORT, default 3000), so the
// runs can be watched; `npm start -- --keep` keeps it open afterwards, under a trickle of traffic.
const http = require('node:http')
const { once } = require('node:events')
const { setTimeout: sleep } = require('node:timers/promises')
const express = require('express')
const { metrics } = require('express-background-task')
const { dashboard } = require('express-background-task/dashboard')
const { createApp } = require('./server-sent-events')

const CONCURRENCY = 8
const STREAMS = 8
const RUNS = [
  { title: 'left as web', markBackground: false },
  { title: 'marked background', markBackground: true }
]

/** A small seeded generator, so both runs (and every `npm start`) send the same mix. */
function random(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The traffic: short requests, shuffled ([method, path, body?]), and how long each stream stays. */
function trafficPlan() {
  const rand = random(42)
  const pick = (values) => values[Math.floor(rand() * values.length)]
  const requests = []
  for (let i = 0; i < 100; i += 1) requests.push(['GET', `/api/users/${1 + Math.floor(rand() * 4)}`]) // id 4 is a 404 of the route
  for (let i = 0; i < 45; i += 1) requests.push(['GET', '/api/users?page=' + (1 + Math.floor(rand() * 3))])
  for (let i = 0; i < 30; i += 1) requests.push(['POST', '/api/orders', { items: [pick(['tea', 'cake', 'jam'])] }])
  for (let i = 0; i < 12; i += 1) requests.push(['GET', pick(['/favicon.ico', '/wp-login.php', '/api/userz', '/.env'])])
  for (const report of ['orders', 'invoices', 'orders', 'invoices']) requests.push(['GET', `/exports/${report}`])
  for (let i = requests.length - 1; i > 0; i -= 1) {
    const j = Math.floor(rand() * (i + 1))
    ;[requests[i], requests[j]] = [requests[j], requests[i]]
  }
  const streams = Array.from({ length: STREAMS }, () => Math.round(1000 + rand() * 2000))
  return { requests, streams }
}

function send(base, client, [method, path, body]) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const headers = payload === undefined ? {} : { 'Content-Type': 'application/json' }
    const req = http.request(base + path, { method, headers, agent: client }, (res) => {
      res.resume()
      res.on('end', resolve)
    })
    req.on('error', reject)
    req.end(payload)
  })
}

/** An event-stream client that stays for `ms`, then hangs up, as a browser tab does when closed. */
async function stream(base, ms) {
  const req = http.get(base + '/events', { agent: false })
  const [res] = await once(req, 'response')
  res.resume()
  await sleep(ms)
  req.destroy()
}

const ended = (snapshot) => (snapshot.timeslices.WebTransaction?.callCount ?? 0) + (snapshot.timeslices['OtherTransaction/all']?.callCount ?? 0)

/** Send the plan to a fresh server; harvest the default agent's metrics once every transaction ended. */
async function run({ markBackground }) {
  const server = createApp({ eventIntervalMs: 100, exportPageMs: 40, markBackground }).listen(0, '127.0.0.1')
  await once(server, 'listening')
  const base = `http://127.0.0.1:${server.address().port}`
  const client = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  const { requests, streams } = trafficPlan()
  const sent = requests.length + streams.length
  metrics({ reset: true }) // start the window with this run
  async function worker() {
    while (requests.length > 0) await send(base, client, requests.pop())
  }
  await Promise.all([
    ...Array.from({ length: CONCURRENCY }, worker),
    ...streams.map((ms, i) => sleep(i * 60).then(() => stream(base, ms)))
  ])
  // A stream's transaction ends when the server sees the client hang up: wait for the last ones.
  for (let waited = 0; ended(metrics()) < sent && waited < 3000; waited += 20) await sleep(20)
  client.destroy()
  server.closeAllConnections()
  server.close()
  return { base, sent, snapshot: metrics({ reset: true }) }
}

/** Print rows of cells with the first column left-aligned and the others right-aligned, under a rule. */
function printTable(header, rows) {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)))
  const line = (cells) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ')
  console.log(line(header))
  console.log(widths.map((width) => '-'.repeat(width)).join('  '))
  for (const row of rows) console.log(line(row))
}

const ms = (seconds) => (seconds === undefined ? '-' : (seconds * 1000).toFixed(1))

/** The comparison: one row per figure, one column per run. */
function printComparison(results) {
  const figure = (label, read) => [label, ...results.map(({ snapshot }) => read(snapshot))]
  const web = (s) => s.timeslices.WebTransaction
  const background = (s) => s.timeslices['OtherTransaction/all']
  printTable(
    ['from metrics()', ...RUNS.map((r) => r.title)],
    [
      figure('web transactions', (s) => String(web(s)?.callCount ?? 0)),
      figure(`web Apdex score (T = ${results[0].snapshot.apdex.Apdex.apdexT} s)`, (s) => s.apdex.Apdex.score.toFixed(2)),
      figure('web mean response time, ms', (s) => ms(web(s).total / web(s).callCount)),
      figure('web p95 response time, ms', (s) => ms(s.percentiles.WebTransaction.p95)),
      figure('background transactions', (s) => String(background(s)?.callCount ?? 0)),
      figure('background mean duration, ms', (s) => ms(background(s) && background(s).total / background(s).callCount))
    ]
  )
}

/** Every transaction name of the marked run, web first, busiest first. */
function printNames(snapshot) {
  const rows = Object.entries(snapshot.timeslices)
    .filter(([name]) => name.includes('/') && name !== 'OtherTransaction/all')
    .sort(([a, x], [b, y]) => Number(a.startsWith('Other')) - Number(b.startsWith('Other')) || y.callCount - x.callCount || a.localeCompare(b))
    .map(([name, stats]) => {
      const apdex = snapshot.apdex[name.replace(/^WebTransaction\//, 'Apdex/')]
      return [name, String(stats.callCount), ms(stats.total / stats.callCount), ms(stats.max), apdex ? apdex.score.toFixed(2) : '-']
    })
  printTable(['name', 'count', 'mean ms', 'max ms', 'Apdex'], rows)
}

/** The dashboard on its own server (no middleware there: opening it adds nothing to the runs' figures). */
async function serveDashboard() {
  const dash = dashboard()
  const app = express()
  app.use('/_background', dash)
  const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1')
  await once(server, 'listening')
  console.log(`dashboard: http://127.0.0.1:${server.address().port}/_background (live while this runs; npm start -- --keep keeps it open)\n`)
  return function stop() {
    dash.close()
    server.closeAllConnections()
    server.close()
  }
}

/** After the runs, with --keep: the marked app under a trickle of the same traffic, until Ctrl-C. */
async function keepTraffic() {
  const server = createApp({ eventIntervalMs: 500, exportPageMs: 60, markBackground: true }).listen(0, '127.0.0.1')
  await once(server, 'listening')
  const base = `http://127.0.0.1:${server.address().port}`
  const client = new http.Agent({ keepAlive: true, maxSockets: 4 })
  console.log('\nkeeping the dashboard open under a trickle of traffic; Ctrl-C to stop')
  for (;;) {
    const { requests, streams } = trafficPlan()
    stream(base, streams[0]).catch(() => {})
    for (const request of requests) {
      await send(base, client, request).catch(() => {})
      await sleep(60)
    }
  }
}

async function main() {
  const stopDashboard = await serveDashboard()
  const results = []
  for (const options of RUNS) results.push(await run(options))
  const [{ sent }] = results
  console.log(`sent the same ${sent} requests twice (${CONCURRENCY} at a time, ${STREAMS} of them event streams held open 1-3 s):`)
  console.log(`once with the streams and exports ${RUNS[0].title}, once ${RUNS[1].title}\n`)
  printComparison(results)
  console.log(`\ntransaction names when ${RUNS[1].title}:\n`)
  printNames(results[1].snapshot)
  for (const [i, { snapshot }] of results.entries()) {
    if (ended(snapshot) === sent) continue
    console.error(`run ${i + 1}: expected ${sent} transactions, metrics counted ${ended(snapshot)}`)
    process.exitCode = 1
  }
  if (process.argv.includes('--keep')) await keepTraffic()
  stopDashboard()
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})

'use strict'
// `npm start`: run the server-sent-events example on a free loopback port, send it a realistic mix
// of traffic (API calls, 404s, slow exports, event streams that clients hold open for 0.5-1.5 s),
// then print every ended transaction grouped by name and type, and exit.
const http = require('node:http')
const { once } = require('node:events')
const { setTimeout: sleep } = require('node:timers/promises')
const { createAgent } = require('express-background-task')
const { createApp } = require('./server-sent-events')

const CONCURRENCY = 8
const STREAMS = 8
const APDEX_T_MS = 500
const TYPE_ORDER = { web: 0, background: 1 }

/** A small seeded generator, so every run sends the same mix. */
function random(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const rand = random(42)
const pick = (values) => values[Math.floor(rand() * values.length)]

/** The short requests, shuffled: [method, path, body?]. */
function trafficPlan() {
  const plan = []
  for (let i = 0; i < 100; i += 1) plan.push(['GET', `/api/users/${1 + Math.floor(rand() * 4)}`]) // id 4 is a 404 of the route
  for (let i = 0; i < 45; i += 1) plan.push(['GET', '/api/users?page=' + (1 + Math.floor(rand() * 3))])
  for (let i = 0; i < 30; i += 1) plan.push(['POST', '/api/orders', { items: [pick(['tea', 'cake', 'jam'])] }])
  for (let i = 0; i < 12; i += 1) plan.push(['GET', pick(['/favicon.ico', '/wp-login.php', '/api/userz', '/.env'])])
  for (const report of ['orders', 'invoices', 'orders', 'invoices']) plan.push(['GET', `/exports/${report}`])
  for (let i = plan.length - 1; i > 0; i -= 1) {
    const j = Math.floor(rand() * (i + 1))
    ;[plan[i], plan[j]] = [plan[j], plan[i]]
  }
  return plan
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

/** Nearest-rank percentile of sorted values. */
const percentile = (sorted, p) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]

/** The table: one row per name and type, web first, busiest first; columns aligned. */
function printTable(records) {
  const groups = new Map()
  for (const tx of records) {
    const key = `${tx.type} ${tx.name}`
    if (!groups.has(key)) groups.set(key, { name: tx.name, type: tx.type, durations: [] })
    groups.get(key).durations.push(tx.duration)
  }
  const rows = [...groups.values()]
    .sort((a, b) => TYPE_ORDER[a.type] - TYPE_ORDER[b.type] || b.durations.length - a.durations.length || a.name.localeCompare(b.name))
    .map(({ name, type, durations }) => {
      durations.sort((a, b) => a - b)
      const mean = durations.reduce((sum, d) => sum + d, 0) / durations.length
      return [name, type, String(durations.length), mean.toFixed(1), percentile(durations, 0.95).toFixed(1)]
    })
  const header = ['name', 'type', 'count', 'mean ms', 'p95 ms']
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)))
  const line = (cells) => cells.map((cell, column) => (column < 2 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ')
  console.log(line(header))
  console.log(widths.map((width) => '-'.repeat(width)).join('  '))
  for (const row of rows) console.log(line(row))
}

/** Web mean and Apdex, as recorded and as they would be had the background transactions stayed web. */
function printPoint(records) {
  const summary = (list) => {
    const mean = list.reduce((sum, tx) => sum + tx.duration, 0) / list.length
    let score = 0
    for (const tx of list) {
      if (tx.error !== undefined || tx.statusCode >= 500) continue
      score += tx.duration <= APDEX_T_MS ? 1 : tx.duration <= 4 * APDEX_T_MS ? 0.5 : 0
    }
    return `mean ${mean.toFixed(1).padStart(6)} ms  Apdex ${(score / list.length).toFixed(2)}`
  }
  const web = records.filter((tx) => tx.type === 'web')
  const lines = [
    [`as recorded (${web.length} web transactions)`, summary(web)],
    [`had the ${records.length - web.length} background ones stayed web`, summary(records)]
  ]
  const width = Math.max(...lines.map(([label]) => label.length))
  console.log(`\nweb response time and Apdex (T = ${APDEX_T_MS / 1000} s):`)
  for (const [label, value] of lines) console.log(`  ${label.padEnd(width)}  ${value}`)
}

async function main() {
  const agent = createAgent()
  const records = []
  agent.onTransactionEnd((tx) => records.push(tx))

  const server = createApp({ agent, eventIntervalMs: 100, exportPageMs: 40 }).listen(0, '127.0.0.1')
  await once(server, 'listening')
  const base = `http://127.0.0.1:${server.address().port}`
  const client = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })

  const plan = trafficPlan()
  const streamMs = Array.from({ length: STREAMS }, () => Math.round(500 + rand() * 1000))
  console.log(`sending ${plan.length + STREAMS} requests to ${base} (${CONCURRENCY} at a time, plus ${STREAMS} event streams of 0.5-1.5 s) ...`)
  console.log()
  async function worker() {
    while (plan.length > 0) await send(base, client, plan.pop())
  }
  const sent = plan.length + STREAMS
  await Promise.all([
    ...Array.from({ length: CONCURRENCY }, worker),
    ...streamMs.map((ms, i) => sleep(i * 60).then(() => stream(base, ms)))
  ])

  // A stream's transaction ends when the server sees the client hang up: wait for the last ones.
  for (let waited = 0; records.length < sent && waited < 3000; waited += 20) await sleep(20)
  client.destroy()
  server.closeAllConnections()
  server.close()

  printTable(records)
  printPoint(records)
  if (records.length !== sent) {
    console.error(`expected ${sent} transactions, recorded ${records.length}`)
    process.exitCode = 1
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})

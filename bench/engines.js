'use strict'
// Benchmark: server CPU time per request of bare Express 5 vs this package's two context engines.
//
//   node bench/engines.js           full run (well under 90 s)
//   node bench/engines.js --quick   a smoke run (under 20 s)
//   add --baselines for two more rows: Express with a bare AsyncLocalStorage.run, and with a bare
//   cls-hooked namespace, per request (what the context mechanism alone costs, without the package)
//
// Each variant is its own server process (cls-hooked installs process-wide async hooks, so sharing
// a process would slow the others), driven by a separate keep-alive load generator process. The
// machine may be shared and noisy, so the measure is the CPU time the server process itself spent
// (process.cpuUsage(), user + system) over a fixed number of requests, not wall-clock throughput.
// Rounds interleave the variants (rotating the order), so slow spells of the machine fall on every
// variant alike; the report takes each variant's median over the rounds and compares it with bare
// Express's median.
const { fork } = require('node:child_process')
const { once } = require('node:events')
const http = require('node:http')
const os = require('node:os')

const VARIANTS = [
  { key: 'bare', label: 'Express 5, no middleware' },
  { key: 'als', label: 'express-background-task, AsyncLocalStorage (default)' },
  { key: 'cls', label: "express-background-task, `context: 'cls-hooked'`" }
]
const BASELINES = [
  { key: 'als-only', label: 'Express 5 + a bare `AsyncLocalStorage.run` per request' },
  { key: 'cls-only', label: 'Express 5 + a bare cls-hooked `ns.run` + `bindEmitter` per request' }
]
const PACKAGE_VARIANTS = new Set(['als', 'cls'])

const QUICK = process.argv.includes('--quick')
const SETTINGS = QUICK
  ? { rounds: 5, requests: 800, warmup: 1000, concurrency: 16 }
  : { rounds: 13, requests: 1200, warmup: 2500, concurrency: 16 }

const role = process.argv[2]
if (role === '--server') runServer(process.argv[3])
else if (role === '--load') runLoadGenerator()
else main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})

// ------------------------------------------------------------------------------------- server

/** The route every variant serves: a few awaits, a setImmediate, a setTimeout 0; half reclassify. */
function runServer(variant) {
  const express = require('express')
  const app = express()
  let setBackgroundTask = function bare() {}
  const counts = { records: 0, background: 0 }
  if (variant === 'als-only') {
    const { AsyncLocalStorage } = require('node:async_hooks')
    const storage = new AsyncLocalStorage()
    app.use(function alsOnly(req, res, next) {
      storage.run({ req }, next)
    })
  } else if (variant === 'cls-only') {
    const namespace = require('cls-hooked').createNamespace('bench')
    app.use(function clsOnly(req, res, next) {
      namespace.bindEmitter(req)
      namespace.bindEmitter(res)
      namespace.run(() => {
        namespace.set('req', req)
        next()
      })
    })
  } else if (PACKAGE_VARIANTS.has(variant)) {
    const ebt = require('express-background-task')
    const agent = ebt.createAgent(variant === 'cls' ? { context: 'cls-hooked' } : {})
    // A listener makes the package build every record, as an exporter would.
    agent.onTransactionEnd(function countRecord(record) {
      counts.records++
      if (record.type === 'background') counts.background++
    })
    setBackgroundTask = ebt.setBackgroundTask
    app.use(agent.middleware())
  }
  const lookup = (id) => Promise.resolve({ id, name: `user ${id}` })
  app.get('/users/:id', async (req, res) => {
    const user = await lookup(req.params.id)
    await new Promise((resolve) => setImmediate(resolve))
    const orders = await lookup(user.id)
    await new Promise((resolve) => setTimeout(resolve, 0))
    if (Number(req.params.id) % 2 === 0) setBackgroundTask()
    res.json({ user, orders })
  })

  // The parent went away (Ctrl-C, a crash): do not linger.
  process.on('disconnect', () => process.exit(0))
  const server = http.createServer(app)
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: server.address().port }))

  let start
  process.on('message', (message) => {
    if (message.type === 'start') {
      globalThis.gc?.()
      counts.records = 0
      counts.background = 0
      start = process.cpuUsage()
      process.send({ type: 'started' })
    } else if (message.type === 'stop') {
      const cpu = process.cpuUsage(start)
      // Records end on 'finish', which may come a tick after the client saw the response.
      setImmediate(() => {
        // Memory that outlives the requests (cls-hooked keeps contexts alive, PITFALLS 7).
        globalThis.gc?.()
        const heapBytes = process.memoryUsage().heapUsed
        process.send({ type: 'stopped', cpuMicros: cpu.user + cpu.system, heapBytes, ...counts })
      })
    } else if (message.type === 'exit') {
      server.closeAllConnections()
      server.close(() => process.exit(0))
    }
  })
}

// ----------------------------------------------------------------------------- load generator

/** Runs `requests` GETs over `concurrency` keep-alive connections; ids are sequential from `firstId`. */
function runLoadGenerator() {
  process.on('disconnect', () => process.exit(0))
  process.on('message', async (message) => {
    if (message.type === 'exit') process.exit(0)
    const { port, requests, concurrency, firstId } = message
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
    let next = 0
    let failures = 0
    const started = process.hrtime.bigint()
    async function loop() {
      while (next < requests) {
        const id = firstId + next++
        const status = await get(agent, port, `/users/${id}`)
        if (status !== 200) failures++
      }
    }
    await Promise.all(Array.from({ length: concurrency }, loop))
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6
    agent.destroy()
    process.send({ type: 'done', elapsedMs, failures })
  })
}

function get(agent, port, path) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode))
    })
    req.on('error', () => resolve(0))
  })
}

// ------------------------------------------------------------------------------------------ main

function request(child, message, replyType) {
  const reply = new Promise((resolve, reject) => {
    function onMessage(m) {
      if (m.type !== replyType) return
      child.off('message', onMessage)
      child.off('exit', onExit)
      resolve(m)
    }
    function onExit(code) {
      reject(new Error(`child exited with ${code} while waiting for ${replyType}`))
    }
    child.on('message', onMessage)
    child.on('exit', onExit)
  })
  child.send(message)
  return reply
}

async function startServer(variant) {
  const child = fork(__filename, ['--server', variant.key], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const [message] = await once(child, 'message')
  return { ...variant, child, port: message.port, samples: [] }
}

let nextId = 0
/** One measurement: `requests` requests against one server, its CPU time read before and after. */
async function measure(server, load, requests) {
  await request(server.child, { type: 'start' }, 'started')
  const firstId = nextId
  nextId += requests
  const done = await request(load, { type: 'run', port: server.port, requests, concurrency: SETTINGS.concurrency, firstId }, 'done')
  const stopped = await request(server.child, { type: 'stop' }, 'stopped')
  if (done.failures > 0) throw new Error(`${server.key}: ${done.failures} requests failed`)
  if (PACKAGE_VARIANTS.has(server.key)) {
    // Sanity: every request recorded once, exactly the even ids reclassified as background.
    let even = 0
    for (let id = firstId; id < firstId + requests; id++) if (id % 2 === 0) even++
    if (stopped.records !== requests || stopped.background !== even) {
      throw new Error(`${server.key}: expected ${requests} records (${even} background), got ${stopped.records} (${stopped.background})`)
    }
  }
  return { cpuPerRequest: stopped.cpuMicros / requests, requestsPerSecond: (requests / done.elapsedMs) * 1000, heapBytes: stopped.heapBytes }
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

async function main() {
  const began = Date.now()
  const { rounds, requests, warmup } = SETTINGS
  const servers = []
  const variants = process.argv.includes('--baselines') ? [...VARIANTS, ...BASELINES] : VARIANTS
  for (const variant of variants) servers.push(await startServer(variant))
  const load = fork(__filename, ['--load'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  try {
    process.stderr.write(`warming up (${warmup} requests each)`)
    for (const server of servers) await measure(server, load, warmup)
    for (let round = 0; round < rounds; round++) {
      process.stderr.write(` | round ${round + 1}/${rounds}`)
      // Interleave, rotating the order so no variant always runs first or last.
      for (let i = 0; i < servers.length; i++) {
        const server = servers[(round + i) % servers.length]
        server.samples.push(await measure(server, load, requests))
      }
      const cpu = servers.map((server) => `${server.key} ${server.samples[round].cpuPerRequest.toFixed(0)}`)
      process.stderr.write(` (${cpu.join(', ')} µs)`)
    }
    process.stderr.write('\n')
  } finally {
    for (const child of [load, ...servers.map((server) => server.child)]) if (child.connected) child.send({ type: 'exit' })
  }
  report(servers, Date.now() - began)
}

function report(servers, elapsedMs) {
  const bare = servers.find((server) => server.key === 'bare')
  const fmt = (n, digits = 1) => n.toFixed(digits)
  const lines = [
    `Node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'cpu'}; ${SETTINGS.rounds} interleaved rounds of ${SETTINGS.requests} requests per variant, ${SETTINGS.concurrency} keep-alive connections; server CPU time (user + system) per request, medians.`,
    '',
    '| Variant | CPU µs / request | vs bare Express | Overhead µs / request | Heap after GC, MB | Requests / s (wall clock, noisy) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |'
  ]
  const summary = {}
  const bareCpu = median(bare.samples.map((s) => s.cpuPerRequest))
  for (const server of servers) {
    const cpu = median(server.samples.map((s) => s.cpuPerRequest))
    const rps = median(server.samples.map((s) => s.requestsPerSecond))
    const ratio = cpu / bareCpu
    const overhead = cpu - bareCpu
    summary[server.key] = { ratio, overhead }
    const vs = server === bare ? '1.00×' : `${fmt(ratio, 2)}×`
    const extra = server === bare ? '—' : `${overhead >= 0 ? '+' : ''}${fmt(overhead)}`
    const heap = server.samples[server.samples.length - 1].heapBytes / 2 ** 20
    lines.push(`| ${server.label} | ${fmt(cpu)} | ${vs} | ${extra} | ${fmt(heap)} | ${Math.round(rps)} |`)
  }
  lines.push('')
  const { als, cls } = summary
  lines.push(
    `Summary: AsyncLocalStorage adds ${fmt(als.overhead)} µs of server CPU per request (${fmt((als.ratio - 1) * 100, 0)}% over bare Express); ` +
      `cls-hooked adds ${fmt(cls.overhead)} µs (${fmt((cls.ratio - 1) * 100, 0)}%), ${fmt(cls.overhead / Math.max(als.overhead, 0.1), 1)}× the cost of the default.`
  )
  console.log(lines.join('\n'))
  console.error(`(ran in ${fmt(elapsedMs / 1000)} s)`)
}

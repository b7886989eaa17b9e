'use strict'
// Micro-benchmark: ns per call of setBackgroundTask() and getTransaction(), inside an active transaction and outside one.
//
//   node bench/micro.js           full run
//   node bench/micro.js --quick   a few seconds
//
// Each engine runs in its own child process (cls-hooked installs process-wide async hooks, and a
// cls-hooked agent adds its namespace to the search every lookup does, so sharing a process would
// slow the default engine). In each child the calls are timed in three places:
//   - outside any transaction (top-level code);
//   - inside `backgroundTask('micro', fn)` (synchronous, the transaction just started);
//   - inside a real request: an Express 5 app on 127.0.0.1 with the package's middleware, one GET
//     whose async handler (after an await and a setImmediate, so the context has propagated as in
//     real code) runs the timed loops — what users hit.
// Per place, every case is warmed up, then timed over interleaved rounds of N calls with
// process.hrtime.bigint(); the table shows the median ns/call over the rounds and the fastest round.
// The baseline row (an empty function in the same loop) is the cost of the loop itself.
//
//   node bench/micro.js --integrations    ns per transaction: the package alone, and with each integration subscribed
//   node bench/micro.js --integrations --callgrind    the same in instructions per transaction (valgrind; deterministic)
//
// Integrations (issue 14): each in its own process, a whole request transaction is run in a loop without a network:
// a request and response of Node's own classes (no socket), through the middleware, `res.end()`
// (the name is fixed) and `finish` (the transaction ends, metrics are counted, the channels publish).
// Rows: the loop with no middleware (what the harness costs), the package alone (nobody subscribed,
// so no record is built and nothing is published), the package with the Prometheus exporter
// (prom-client's default registry), and with the OpenTelemetry integration (a MeterProvider with a
// reader that never exports, no tracing SDK). An integration's cost per transaction is its row minus
// the package-alone row; the README divides it by bare Express's CPU time per request (npm run bench).
const { fork } = require('node:child_process')
const { once } = require('node:events')
const http = require('node:http')
const os = require('node:os')

const QUICK = process.argv.includes('--quick')
const SETTINGS = QUICK ? { calls: 200_000, rounds: 5, warmupRounds: 2 } : { calls: 1_000_000, rounds: 15, warmupRounds: 4 }
const TARGET_NS = 100

const ENGINES = [
  { key: 'als', short: 'default', label: 'AsyncLocalStorage (the default, through the top-level functions)' },
  { key: 'cls', short: 'cls-hooked', label: "cls-hooked (`createAgent({ context: 'cls-hooked' })` and its methods)" }
]
const PLACES = [
  { key: 'outside', label: 'outside a transaction' },
  { key: 'task', label: 'in `backgroundTask()`' },
  { key: 'request', label: 'in a request (middleware)' }
]

// ------------------------------------------------------------------------------------- timing

/**
 * A fresh loop function per case, so every case's call site keeps its own type feedback and stays
 * monomorphic (one shared loop would go megamorphic after a few cases and time the dispatch
 * instead of the call). The source must differ too: V8 caches `new Function` by source, feedback
 * included. Counting the truthy results keeps the optimiser from dropping the calls.
 */
let loopCount = 0
function makeLoop() {
  return new Function(
    'fn',
    'arg',
    'calls',
    `// loop ${++loopCount}
     let hits = 0
     for (let i = 0; i < calls; i++) if (fn(arg)) hits++
     return hits`
  )
}

/** One timed round: ns per call. */
function timeRound(c, calls) {
  const start = process.hrtime.bigint()
  c.loop(c.fn, c.arg, calls)
  return Number(process.hrtime.bigint() - start) / calls
}

/** Warm every case, then time them in interleaved rounds so a slow spell of the machine hits all alike. */
function timeCases(cases) {
  const { calls, rounds, warmupRounds } = SETTINGS
  for (const c of cases) c.loop = makeLoop()
  for (let round = 0; round < warmupRounds; round++) for (const c of cases) timeRound(c, calls)
  const samples = cases.map(() => [])
  for (let round = 0; round < rounds; round++) {
    // Rotate the order too, so no case always runs right after the same one.
    for (let i = 0; i < cases.length; i++) {
      const index = (round + i) % cases.length
      samples[index].push(timeRound(cases[index], calls))
    }
  }
  return cases.map((c, index) => ({ name: c.name, median: median(samples[index]), min: Math.min(...samples[index]) }))
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

// ------------------------------------------------------------------------------ engine (child)

/** Time every case in the three places with one engine; send the rows to the parent. */
async function runEngine(engineKey) {
  const ebt = require('..')
  const api = engineKey === 'cls' ? ebt.createAgent({ context: 'cls-hooked' }) : ebt
  const casesFor = makeCases(api, makeRawStoreRead(engineKey))
  const results = {}

  if (api.getTransaction() !== undefined) throw new Error('a transaction is active at the top level')
  results.outside = timeCases(casesFor(undefined, undefined))

  results.task = api.backgroundTask('micro', function timeInTask() {
    const tx = api.getTransaction()
    if (tx === undefined) throw new Error('no active transaction inside backgroundTask')
    return timeCases(casesFor(undefined, tx))
  })

  results.request = await timeInRequest(api, casesFor)

  // Let go of the IPC channel once sent, so the child exits.
  process.send({ type: 'results', results }, () => process.disconnect())
}

/** The cases of one place, given its request and transaction (undefined where there is none). */
function makeCases(api, rawStoreRead) {
  function empty() {}
  return function casesFor(req, tx) {
    const cases = [
      { name: 'baseline: empty function', fn: empty },
      { name: 'raw context read (the floor)', fn: rawStoreRead },
      { name: '`setBackgroundTask()`', fn: api.setBackgroundTask },
      { name: '`setBackgroundTask(false)`', fn: api.setBackgroundTask, arg: false },
      { name: '`getTransaction()`', fn: api.getTransaction }
    ]
    if (req !== undefined) cases.push({ name: '`getTransaction(req)`', fn: api.getTransaction, arg: req })
    // The handle's own method: the cost without the context lookup.
    if (tx !== undefined) cases.push({ name: '`tx.setBackgroundTask()` (handle)', fn: function handleSet() { return tx.setBackgroundTask() } })
    return cases
  }
}

/**
 * What the package's lookup reads at its core, read directly (through its internal process-wide
 * registry): the shared AsyncLocalStorage, or the namespace. The gap between this row and the
 * API's rows is the package's own work.
 */
function makeRawStoreRead(engineKey) {
  const registry = globalThis[Symbol.for('express-background-task.registry')]
  if (engineKey === 'cls') {
    const ns = registry.clsNamespace
    return function clsRead() {
      return ns.active ? ns.get('transaction') : undefined
    }
  }
  const storage = registry.storage
  return function alsRead() {
    return storage.getStore()
  }
}

/** A real Express app with the middleware; one GET whose handler runs the timed loops. */
async function timeInRequest(api, casesFor) {
  const express = require('express')
  const app = express()
  app.use(api.middleware())
  app.get('/micro', async function microHandler(req, res) {
    // Let the context travel through a promise and a setImmediate first, as in real handlers.
    await null
    await new Promise((resolve) => setImmediate(resolve))
    const tx = api.getTransaction()
    if (tx === undefined || api.getTransaction(req) !== tx) throw new Error('no active transaction in the request')
    res.json(timeCases(casesFor(req, tx)))
  })
  app.use(function reportError(err, req, res, next) {
    res.status(500).json({ error: String(err && err.stack) })
  })
  const server = app.listen(0, '127.0.0.1')
  await once(server, 'listening')
  try {
    const { status, body } = await getJson(server.address().port, '/micro')
    if (status !== 200) throw new Error(`request failed (${status}): ${body.error}`)
    return body
  } finally {
    server.close()
  }
}

function getJson(port, path) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk) => (text += chunk))
        res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }))
      })
      .on('error', reject)
  })
}

// ------------------------------------------------------------------------------------- parent

async function main() {
  const began = Date.now()
  const byEngine = {}
  for (const engine of ENGINES) {
    process.stderr.write(`${engine.key}… `)
    const child = fork(__filename, ['--engine', engine.key, ...process.argv.slice(2)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    let results
    child.on('message', (message) => (results = message.results))
    const [code] = await once(child, 'exit')
    if (results === undefined) throw new Error(`the ${engine.key} child exited with ${code} and no results`)
    byEngine[engine.key] = results
  }
  process.stderr.write('\n')
  report(byEngine, Date.now() - began)
}

function report(byEngine, elapsedMs) {
  const { calls, rounds } = SETTINGS
  const cpu = os.cpus()[0]?.model.trim() ?? 'cpu'
  const lines = [
    `Node ${process.version}, ${os.cpus().length} × ${cpu}; ${rounds} rounds of ${calls.toLocaleString('en')} calls per case after warm-up; ns per call, median (fastest round).`,
    '',
    `| Call | ${ENGINES.flatMap((e) => PLACES.map((p) => `${e.short}, ${p.label}`)).join(' | ')} |`,
    `| --- |${' ---: |'.repeat(ENGINES.length * PLACES.length)}`
  ]
  const names = []
  for (const engine of ENGINES) for (const place of PLACES) for (const row of byEngine[engine.key][place.key]) if (!names.includes(row.name)) names.push(row.name)
  for (const name of names) {
    const cells = []
    for (const engine of ENGINES) {
      for (const place of PLACES) {
        const row = byEngine[engine.key][place.key].find((r) => r.name === name)
        cells.push(row === undefined ? '—' : `${fmt(row.median)} (${fmt(row.min)})`)
      }
    }
    lines.push(`| ${name} | ${cells.join(' | ')} |`)
  }
  lines.push('')
  lines.push(`Engines: ${ENGINES.map((e) => `${e.short} = ${e.label}`).join('; ')}. Each in its own process.`)
  const verdicts = ENGINES.map((engine) => {
    const ns = byEngine[engine.key].request.find((r) => r.name === '`setBackgroundTask()`').median
    const task = byEngine[engine.key].task.find((r) => r.name === '`setBackgroundTask()`').median
    const met = Math.max(ns, task) <= TARGET_NS ? 'met' : 'NOT met'
    return `${engine.short} ${fmt(ns)} ns in a request, ${fmt(task)} ns in a task (${met})`
  })
  lines.push(`Summary: setBackgroundTask() in an active transaction, target ≤ ${TARGET_NS} ns/call: ${verdicts.join('; ')}.`)
  console.log(lines.join('\n'))
  console.error(`(ran in ${(elapsedMs / 1000).toFixed(1)} s)`)
}

function fmt(ns) {
  return ns < 10 ? ns.toFixed(2) : ns.toFixed(1)
}


// ----------------------------------------------------------------------------- integrations

const INTEGRATIONS = [
  { key: 'loop', label: 'the loop, no middleware (harness)' },
  { key: 'package', label: 'the package alone (nobody subscribed)' },
  { key: 'prometheus', label: 'the package + Prometheus exporter' },
  { key: 'opentelemetry', label: 'the package + OpenTelemetry integration' }
]
const TRANSACTIONS = QUICK ? { calls: 20_000, rounds: 5, warmupRounds: 2 } : { calls: 100_000, rounds: 11, warmupRounds: 3 }

/** One child: ns per whole transaction with the given integration. */
function runIntegration(key) {
  const { IncomingMessage, ServerResponse } = require('node:http')
  let middleware = function noMiddleware(req, res, next) { next() }
  if (key !== 'loop') {
    const ebt = require('..')
    if (key === 'prometheus') require('../dist/prometheus').createPrometheusExporter()
    if (key === 'opentelemetry') {
      const { MeterProvider, MetricReader } = require('@opentelemetry/sdk-metrics')
      const api = require('@opentelemetry/api')
      class NeverExport extends MetricReader {
        async onForceFlush() {}
        async onShutdown() {}
      }
      api.metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new NeverExport()] }))
      require('../dist/opentelemetry').instrumentOpenTelemetry()
    }
    middleware = ebt.middleware()
  }
  function next() {}
  const urls = ['/items', '/users', '/orders', '/health']
  let n = 0
  function oneTransaction() {
    const req = new IncomingMessage(null)
    req.method = 'GET'
    req.url = urls[n++ & 3]
    const res = new ServerResponse(req)
    middleware(req, res, next)
    res.statusCode = 200
    res.end()
    // no socket: Node never emits finish by itself here
    res.emit('finish')
    return true
  }
  const loop = makeLoop()
  const count = process.argv.indexOf('--count')
  if (count !== -1) {
    // under callgrind (--callgrind): a fixed number of transactions after a fixed warm-up, nothing timed
    loop(oneTransaction, undefined, CALLGRIND.warmup)
    loop(oneTransaction, undefined, Number(process.argv[count + 1]))
    return
  }
  const { calls, rounds, warmupRounds } = TRANSACTIONS
  const time = () => {
    const start = process.hrtime.bigint()
    loop(oneTransaction, undefined, calls)
    return Number(process.hrtime.bigint() - start) / calls
  }
  for (let round = 0; round < warmupRounds; round++) time()
  const samples = []
  for (let round = 0; round < rounds; round++) samples.push(time())
  process.send({ type: 'results', results: { median: median(samples), min: Math.min(...samples) } }, () => process.disconnect())
}

/**
 * Instructions per transaction (--callgrind): each row's child runs twice under callgrind, with
 * CALLGRIND.short and CALLGRIND.long transactions after the same warm-up; the difference of the
 * totals over the difference of the counts is what one more transaction costs, start-up excluded.
 */
const CALLGRIND = { warmup: 20_000, short: 5_000, long: 25_000 }

async function instructionsPerTransaction(key) {
  const { execFile } = require('node:child_process')
  const fs = require('node:fs')
  const path = require('node:path')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebt-micro-callgrind-'))
  try {
    const totals = await Promise.all(
      [CALLGRIND.short, CALLGRIND.long].map(
        (count) =>
          new Promise((resolve, reject) => {
            const out = path.join(dir, `callgrind.out.${count}`)
            const args = ['--tool=callgrind', `--callgrind-out-file=${out}`, process.execPath, '--single-threaded', __filename, '--integration', key, '--count', String(count)]
            execFile('valgrind', args, { maxBuffer: 1 << 24 }, (err) => {
              if (err) return reject(err)
              resolve(Number(/^summary:\s+(\d+)/m.exec(fs.readFileSync(out, 'utf8'))[1]))
            })
          })
      )
    )
    return (totals[1] - totals[0]) / (CALLGRIND.long - CALLGRIND.short)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

async function mainIntegrations() {
  if (process.argv.includes('--callgrind')) {
    const rows = await Promise.all(INTEGRATIONS.map(async (integration) => ({ ...integration, ir: await instructionsPerTransaction(integration.key) })))
    const alone = rows.find((row) => row.key === 'package').ir
    const lines = [
      `Node ${process.version} --single-threaded; callgrind instructions per transaction: (Ir of ${CALLGRIND.long} − Ir of ${CALLGRIND.short} transactions) ÷ ${CALLGRIND.long - CALLGRIND.short}, after ${CALLGRIND.warmup} of warm-up.`,
      '',
      '| Transaction (GET, no socket) | k Ir / transaction | over the package alone |',
      '| --- | ---: | ---: |'
    ]
    for (const row of rows) {
      const over = row.key === 'prometheus' || row.key === 'opentelemetry' ? `+${((row.ir - alone) / 1000).toFixed(2)}` : '–'
      lines.push(`| ${row.label} | ${(row.ir / 1000).toFixed(2)} | ${over} |`)
    }
    console.log(lines.join('\n'))
    return
  }
  const rows = []
  for (const integration of INTEGRATIONS) {
    process.stderr.write(`${integration.key}… `)
    const child = fork(__filename, ['--integration', integration.key, ...process.argv.slice(2)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    let results
    child.on('message', (message) => (results = message.results))
    const [code] = await once(child, 'exit')
    if (results === undefined) throw new Error(`the ${integration.key} child exited with ${code} and no results`)
    rows.push({ ...integration, ...results })
  }
  process.stderr.write('\n')
  const alone = rows.find((row) => row.key === 'package').median
  const { calls, rounds } = TRANSACTIONS
  const lines = [
    `Node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'cpu'}; ${rounds} rounds of ${calls.toLocaleString('en')} transactions per row after warm-up, each row its own process; ns per transaction, median (fastest round).`,
    '',
    '| Transaction (GET, no socket) | ns / transaction | over the package alone |',
    '| --- | ---: | ---: |'
  ]
  for (const row of rows) {
    const over = row.key === 'prometheus' || row.key === 'opentelemetry' ? `+${fmt(row.median - alone)}` : '–'
    lines.push(`| ${row.label} | ${fmt(row.median)} (${fmt(row.min)}) | ${over} |`)
  }
  console.log(lines.join('\n'))
}

// Last, so every module-level binding above is initialised.
if (process.argv[2] === '--engine') runEngine(process.argv[3]).catch(fail)
else if (process.argv[2] === '--integration') runIntegration(process.argv[3])
else if (process.argv.includes('--integrations')) mainIntegrations().catch(fail)
else main().catch(fail)

function fail(err) {
  console.error(err)
  process.exitCode = 1
}

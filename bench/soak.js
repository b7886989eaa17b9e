'use strict'
// Soak: 200 000 requests through an Express 5 app with the package, heap after forced GC at start, checkpoints and end.
//
//   node bench/soak.js                    200 000 requests per variant
//   node bench/soak.js --quick            20 000 requests per variant
//   node bench/soak.js --requests 500000
//   node bench/soak.js --variants cls --snapshots /tmp/dir   one variant, heap snapshots at every reading
//
// Variants: bare Express (the control), the package with the default engine (top-level API), and
// with `createAgent({ context: 'cls-hooked' })`. Each is its own server process (cls-hooked installs
// process-wide async hooks) run with --expose-gc, loaded from a separate process over keep-alive
// connections. The app mixes a synchronous route and an async one (awaits, a setImmediate, a
// setTimeout, every fourth one a `backgroundTask()` inside the request); both read the transaction
// and reclassify a third of the requests. After a warm-up, the server forces GC (several passes,
// with a turn of the event loop between them so finalizers and pending closes run) and reports its
// heap used, at the start, every checkpoint and the end.
//
// Verdict: "flat" when the heap grew by less than 1 MB over the run. The smallest thing a request
// could leave behind is one object — a Transaction is ~200 bytes, a cls-hooked context ~50, even
// a boxed number 16 — so at 200 000 requests a leak of one object per request is at least 3 MB,
// while the bare Express control shows what GC noise looks like (lazily compiled code, inline
// caches, pooled parsers): a few hundred KB at most. 1 MB over 200 000 requests is 5 bytes per
// request; with --quick (20 000) it is 50, so the quick run only catches leaks of 50+ bytes. For
// scale: a raw cls-hooked `ns.run` that stores a promise in its context (cls-hooked's known leak)
// grows by ~290 bytes per request in this harness. What stays reachable at every reading, in both
// engines, is one ended Transaction per open keep-alive connection (its socket's idle timer was
// re-armed inside that request); the next request on the connection or its close lets it go.
const { fork } = require('node:child_process')
const http = require('node:http')
const os = require('node:os')
const v8 = require('node:v8')
const { request } = require('./ipc')

const VARIANTS = [
  { key: 'bare', label: 'Express 5, no middleware (control)' },
  { key: 'als', label: 'express-background-task, AsyncLocalStorage (default)' },
  { key: 'cls', label: "express-background-task, `context: 'cls-hooked'`" }
]
const PACKAGE_VARIANTS = new Set(['als', 'cls'])
const FLAT_BYTES = 2 ** 20
const WARMUP = 5_000
const CONCURRENCY = 16

// ------------------------------------------------------------------------------------- server

/** The app every variant serves; with the package, the routes read the transaction and reclassify. */
function runServer(variantKey) {
  const express = require('express')
  const app = express()
  const counts = { records: 0, background: 0, tasks: 0 }
  // The control calls the same code paths with stand-ins that do nothing.
  let api = {
    setBackgroundTask: function noBackgroundTask() {
      return false
    },
    getTransaction: function noTransaction() {
      return undefined
    },
    backgroundTask: function plainTask(name, fn) {
      return fn()
    }
  }
  if (PACKAGE_VARIANTS.has(variantKey)) {
    const ebt = require('..')
    api = variantKey === 'cls' ? ebt.createAgent({ context: 'cls-hooked' }) : ebt
    // A listener makes the package build every record, as an exporter would; it keeps none.
    api.onTransactionEnd(function countRecord(record) {
      counts.records++
      if (record.type === 'background') counts.background++
      if (record.name.startsWith('OtherTransaction/Nodejs/soak-')) counts.tasks++
    })
    app.use(api.middleware())
  }

  const lookup = (id) => Promise.resolve({ id, name: `user ${id}` })
  app.get('/sync/:id', function syncRoute(req, res) {
    const id = Number(req.params.id)
    api.setBackgroundTask(id % 3 === 0)
    const tx = api.getTransaction()
    res.json({ id, type: tx === undefined ? null : tx.type })
  })
  app.get('/async/:id', async function asyncRoute(req, res) {
    const id = Number(req.params.id)
    const user = await lookup(id)
    await new Promise((resolve) => setImmediate(resolve))
    // A task inside the request: its own transaction, a promise chain in its context.
    if (id % 4 === 1) {
      await api.backgroundTask('soak-refresh', async function refresh() {
        await lookup(id)
        await new Promise((resolve) => setTimeout(resolve, 0))
      })
    }
    await new Promise((resolve) => setTimeout(resolve, 0))
    api.setBackgroundTask(id % 3 === 0)
    const tx = api.getTransaction(req)
    res.json({ user, type: tx === undefined ? null : tx.type })
  })

  process.on('disconnect', () => process.exit(0))
  const server = http.createServer(app)
  // Longer than any GC pause of ours, so the load generator's sockets stay open between phases.
  server.keepAliveTimeout = 120_000
  server.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: server.address().port }))

  process.on('message', async function onMessage(message) {
    if (message.type === 'heap') {
      const heapUsed = await settledHeapUsed()
      if (message.snapshot) v8.writeHeapSnapshot(message.snapshot)
      process.send({ type: 'heap', heapUsed, rss: process.memoryUsage().rss, ...counts })
    } else if (message.type === 'exit') {
      server.closeAllConnections()
      server.close(() => process.exit(0))
    }
  })
}

/** Heap used after GC has had every chance: several full collections, a turn of the loop between each. */
async function settledHeapUsed() {
  for (let pass = 0; pass < 5; pass++) {
    globalThis.gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().heapUsed
}

// ----------------------------------------------------------------------------- load generator

/** Sends `count` GETs from id `firstId` on, over `CONCURRENCY` keep-alive connections kept across runs. */
function runLoadGenerator() {
  process.on('disconnect', () => process.exit(0))
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  process.on('message', async function onMessage(message) {
    if (message.type === 'exit') {
      agent.destroy()
      process.exit(0)
    }
    const { port, firstId, count } = message
    let next = 0
    let failures = 0
    async function worker() {
      while (next < count) {
        const id = firstId + next++
        // Even ids take the synchronous route, odd ones the async route.
        const status = await get(agent, port, `/${id % 2 === 0 ? 'sync' : 'async'}/${id}`)
        if (status !== 200) failures++
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
    process.send({ type: 'done', failures })
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

/** What the listener must have counted after ids 0..sent-1: every request and task, once. */
function expectedCounts(sent) {
  const expected = { records: 0, background: 0, tasks: 0 }
  for (let id = 0; id < sent; id++) {
    expected.records++
    if (id % 3 === 0) expected.background++
    if (id % 4 === 1) {
      expected.records++
      expected.background++
      expected.tasks++
    }
  }
  return expected
}

function checkCounts(variant, heap, sent) {
  if (!PACKAGE_VARIANTS.has(variant.key)) return
  const expected = expectedCounts(sent)
  for (const key of Object.keys(expected)) {
    if (heap[key] !== expected[key]) throw new Error(`${variant.key}: expected ${expected[key]} ${key} after ${sent} requests, got ${heap[key]}`)
  }
}

/** One variant: warm-up, heap at the start, a checkpoint every `interval` requests, heap at the end. */
async function soak(variant, requests, interval, snapshotDir) {
  const server = fork(__filename, ['--server', variant.key], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const load = fork(__filename, ['--load'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  try {
    const { port } = await request(server, undefined, 'listening')
    let sent = 0
    async function send(count) {
      const done = await request(load, { type: 'run', port, firstId: sent, count }, 'done')
      if (done.failures > 0) throw new Error(`${variant.key}: ${done.failures} requests failed`)
      sent += count
    }
    async function readHeap(tag) {
      const snapshot = snapshotDir === undefined ? undefined : `${snapshotDir}/${variant.key}-${tag}.heapsnapshot`
      const heap = await request(server, { type: 'heap', snapshot }, 'heap')
      checkCounts(variant, heap, sent)
      return heap
    }

    await send(WARMUP)
    const start = await readHeap('start')
    const began = Date.now()
    const checkpoints = []
    for (let done = 0; done < requests; ) {
      const count = Math.min(interval, requests - done)
      await send(count)
      done += count
      const heap = await readHeap(done < requests ? `at-${done}` : 'end')
      checkpoints.push({ requests: done, heapUsed: heap.heapUsed, rss: heap.rss })
      process.stderr.write(` ${variant.key} ${done}: ${mb(heap.heapUsed)} MB`)
    }
    const seconds = (Date.now() - began) / 1000
    const end = checkpoints[checkpoints.length - 1]
    return { ...variant, requests, start: start.heapUsed, end: end.heapUsed, rss: end.rss, checkpoints, seconds }
  } finally {
    for (const child of [load, server]) if (child.connected) child.send({ type: 'exit' })
  }
}

/** Noise or not: see the threshold's reasoning at the top. */
function verdictOf(growth) {
  return Math.abs(growth) < FLAT_BYTES ? 'flat' : growth > 0 ? 'GROWS' : 'shrinks'
}

function mb(bytes) {
  return (bytes / 2 ** 20).toFixed(2)
}

function parseArgs(argv) {
  const quick = argv.includes('--quick')
  const at = argv.indexOf('--requests')
  const requests = at >= 0 ? Number(argv[at + 1]) : quick ? 20_000 : 200_000
  if (!Number.isInteger(requests) || requests <= 0) throw new Error(`--requests needs a positive integer, got ${argv[at + 1]}`)
  const snapAt = argv.indexOf('--snapshots')
  const variantsAt = argv.indexOf('--variants')
  const keys = variantsAt >= 0 ? argv[variantsAt + 1].split(',') : VARIANTS.map((v) => v.key)
  const variants = VARIANTS.filter((v) => keys.includes(v.key))
  if (variants.length !== keys.length) throw new Error(`--variants takes a comma-separated list of ${VARIANTS.map((v) => v.key).join(', ')}`)
  return {
    requests,
    interval: Math.min(50_000, Math.ceil(requests / 4)),
    variants,
    snapshotDir: snapAt >= 0 ? argv[snapAt + 1] : undefined
  }
}

async function main() {
  const began = Date.now()
  const { requests, interval, variants, snapshotDir } = parseArgs(process.argv.slice(2))
  const results = []
  for (const variant of variants) {
    process.stderr.write(`${variant.key}: warm-up ${WARMUP}…`)
    results.push(await soak(variant, requests, interval, snapshotDir))
    process.stderr.write(` (${results[results.length - 1].seconds.toFixed(0)} s)\n`)
  }
  report(results, interval, Date.now() - began)
}

function report(results, interval, elapsedMs) {
  const cpu = os.cpus()[0]?.model.trim() ?? 'cpu'
  const control = results.find((r) => r.key === 'bare')
  const lines = [
    `Node ${process.version}, ${os.cpus().length} × ${cpu}; ${WARMUP} warm-up requests, then ${results[0].requests.toLocaleString('en')} per variant over ${CONCURRENCY} keep-alive connections; heap used after forced GC, checkpoint every ${interval.toLocaleString('en')}.`,
    '',
    '| Variant | Requests | Heap start, MB | Heap end, MB | Growth, KB | Bytes / request | Checkpoints, MB | RSS end, MB | Soak time, s | Verdict |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |'
  ]
  for (const r of results) {
    const growth = r.end - r.start
    const verdict = verdictOf(growth)
    const checkpoints = r.checkpoints.map((c) => mb(c.heapUsed)).join(' → ')
    lines.push(
      `| ${r.label} | ${r.requests.toLocaleString('en')} | ${mb(r.start)} | ${mb(r.end)} | ${(growth / 1024).toFixed(0)} | ${(growth / r.requests).toFixed(3)} | ${checkpoints} | ${mb(r.rss)} | ${r.seconds.toFixed(0)} | ${verdict} |`
    )
  }
  lines.push('')
  const summary = results
    .filter((r) => r !== control)
    .map((r) => {
      const growth = r.end - r.start
      return `${r.key === 'als' ? 'default' : 'cls-hooked'} ${(growth / r.requests).toFixed(3)} B/request (${verdictOf(growth)})`
    })
  const controlNote = control === undefined ? '' : `; bare Express control ${((control.end - control.start) / control.requests).toFixed(3)} B/request`
  lines.push(`Summary: heap growth over ${results[0].requests.toLocaleString('en')} requests, flat = under ${FLAT_BYTES / 2 ** 20} MB in all: ${summary.join(', ')}${controlNote}.`)
  console.log(lines.join('\n'))
  console.error(`(ran in ${(elapsedMs / 1000).toFixed(1)} s)`)
}

// Last, so every module-level binding above is initialised.
const role = process.argv[2]
if (role === '--server') runServer(process.argv[3])
else if (role === '--load') runLoadGenerator()
else
  main().catch((err) => {
    console.error(err)
    process.exitCode = 1
  })

'use strict'
// Long-lived connections: heap and RSS per open server-sent-event stream, with the package and without, and after they close.
//
//   npm run bench:streams                        10 000 streams per variant, twice each (about a minute)
//   npm run bench:streams -- --streams 2000      fewer
//   options: --node <binary>   --variants bare,package,package-background   --rounds <n>   --json <file>
//
// Each variant is an Express 5 server process of its own (run with --expose-gc) with one route,
// GET /events: it answers `text/event-stream`, writes a first event, and then one event every 5 s
// from a timer of its own, as an SSE endpoint does; the timer is cleared when the stream closes.
// A client process opens the streams over loopback, in batches, and waits for every stream's
// first event. The server then collects garbage (several passes, with turns of the event loop
// between them) and reads its heap used and RSS; the client closes every stream, the server waits
// for every `close`, collects again and reads again. Rounds repeat that on the same process: a
// heap that does not come back to where it was after the streams close is a leak.
//
// Per open stream = (heap with the streams open − heap before they opened) ÷ streams. The package's
// figure minus bare Express's is what the package keeps per open stream: its transaction, what the
// context holds (the timer's async context) and the carried keys on the request and response.
// `package-background` marks each stream as a background task (`req.newrelic.setBackgroundTask`),
// as a long poll or a stream should be, so it stays out of Apdex.
//
// File descriptors: each process needs one per stream plus some; both raise their soft limit to
// the hard one (`ulimit -n`) when started. If the hard limit is too low, the run stops and says so:
// raise it (e.g. `ulimit -Hn 65536` as root, or LimitNOFILE= in a unit) or pass fewer --streams.
const { spawn } = require('node:child_process')
const http = require('node:http')
const path = require('node:path')
const fs = require('node:fs')
const { parseArgs } = require('node:util')

const ROLE = process.argv[2]
const FD_SPARE = 200
const EVENT_INTERVAL_MS = 5_000
const BATCH = 250
const TIME_LIMIT_MS = 10 * 60_000

const VARIANTS = {
  bare: 'Express 5, no middleware (control)',
  package: 'express-background-task (default engine)',
  'package-background': 'express-background-task, each stream marked background'
}

if (ROLE === '--server') runServer(process.argv[3])
else if (ROLE === '--client') runClient()
else
  main().catch((err) => {
    console.error(err?.stack ?? err)
    process.exitCode = 1
  })

// ------------------------------------------------------------------------------------------ server

function runServer(variant) {
  const express = require('express')
  const app = express()
  let ebt
  if (variant !== 'bare') {
    ebt = require('..')
    app.use(ebt.middleware())
  }
  const open = new Set()
  let closedCount = 0
  app.get('/events', function events(req, res) {
    if (variant === 'package-background') req.newrelic.setBackgroundTask = true
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
    res.write('retry: 10000\n\ndata: hello\n\n')
    let n = 0
    const timer = setInterval(function tick() {
      res.write(`data: ${++n}\n\n`)
    }, EVENT_INTERVAL_MS)
    open.add(res)
    res.on('close', function closed() {
      clearInterval(timer)
      open.delete(res)
      closedCount++
      if (waiting !== undefined && open.size === 0) waiting()
    })
  })
  let waiting
  const server = http.createServer(app)
  server.headersTimeout = 0
  server.requestTimeout = 0
  server.listen(0, '127.0.0.1', 8192, () => process.send({ type: 'listening', port: server.address().port }))
  process.on('disconnect', () => process.exit(0))
  process.on('message', async function onMessage(message) {
    if (message.type === 'measure') {
      process.send({ type: 'measured', open: open.size, closed: closedCount, ...(await measureMemory()), metrics: countMetrics(ebt) })
    } else if (message.type === 'wait-closed') {
      if (open.size > 0) await new Promise((resolve) => (waiting = resolve))
      waiting = undefined
      process.send({ type: 'closed', open: open.size })
    }
  })
}

/** Heap used and RSS after GC: several passes with turns of the event loop between them. */
async function measureMemory() {
  for (let i = 0; i < 6; i++) {
    global.gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  const { heapUsed, rss } = process.memoryUsage()
  return { heapUsed, rss }
}

function countMetrics(ebt) {
  if (ebt === undefined) return undefined
  const { timeslices } = ebt.metrics()
  return { web: timeslices.WebTransaction?.callCount ?? 0, background: timeslices['OtherTransaction/all']?.callCount ?? 0 }
}

// ------------------------------------------------------------------------------------------ client

function runClient() {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity })
  let requests = []
  process.on('disconnect', () => process.exit(0))
  process.on('message', async function onMessage(message) {
    try {
      if (message.type === 'open') {
        requests = []
        for (let done = 0; done < message.streams; done += BATCH) {
          const batch = Array.from({ length: Math.min(BATCH, message.streams - done) }, () => openStream(agent, message.port))
          requests.push(...(await Promise.all(batch)))
        }
        process.send({ type: 'opened', streams: requests.length })
      } else if (message.type === 'close') {
        for (const req of requests) req.destroy()
        requests = []
        process.send({ type: 'closing' })
      }
    } catch (err) {
      process.send({ type: 'error', error: String(err?.stack ?? err) })
    }
  })
  process.send({ type: 'ready' })
}

/** One stream, resolved with its request once the first event arrived. */
function openStream(agent, port) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/events', agent }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`))
      res.once('data', () => resolve(req))
      res.on('error', () => {})
    })
    req.on('error', (err) => (err.code === 'ECONNRESET' ? undefined : reject(err)))
  })
}

// ------------------------------------------------------------------------------------------ parent

function startChild(node, args, fds) {
  // Raise the soft limit of open files to the hard one in the child's own shell, then exec Node.
  const quoted = [node, '--expose-gc', __filename, ...args].map((arg) => `'${arg.replace(/'/g, "'\\''")}'`).join(' ')
  const child = spawn('sh', ['-c', `ulimit -n "$(ulimit -Hn)" && [ "$(ulimit -n)" = unlimited -o "$(ulimit -n)" -ge ${fds} ] || { echo "open files: hard limit $(ulimit -Hn) < ${fds}" >&2; exit 3; }; exec ${quoted}`], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  child.exited = new Promise((resolve) => child.once('exit', resolve))
  return child
}

function reply(child, message, type) {
  return new Promise((resolve, reject) => {
    function onMessage(answer) {
      if (answer.type === 'error') return done(reject, new Error(answer.error))
      if (answer.type === type) done(resolve, answer)
    }
    function onExit(code) {
      done(reject, new Error(`child exited (${code}) while waiting for ${type}${code === 3 ? ': not enough file descriptors, see the top of bench/streams.js' : ''}`))
    }
    function done(settle, value) {
      child.off('message', onMessage)
      child.off('exit', onExit)
      settle(value)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
    if (message !== undefined) child.send(message)
  })
}

async function measureVariant(options, variant) {
  const fds = options.streams + FD_SPARE
  const server = startChild(options.node, ['--server', variant], fds)
  const client = startChild(options.node, ['--client'], fds)
  try {
    const [{ port }] = await Promise.all([reply(server, undefined, 'listening'), reply(client, undefined, 'ready')])
    // Warm the route up (JIT, pools), then the baseline.
    await reply(client, { type: 'open', streams: 500, port }, 'opened')
    await reply(client, { type: 'close' }, 'closing')
    await reply(server, { type: 'wait-closed' }, 'closed')
    const before = await reply(server, { type: 'measure' }, 'measured')
    const rounds = []
    for (let round = 0; round < options.rounds; round++) {
      const began = Date.now()
      await reply(client, { type: 'open', streams: options.streams, port }, 'opened')
      const opened = await reply(server, { type: 'measure' }, 'measured')
      if (opened.open !== options.streams) throw new Error(`${variant}: ${opened.open} streams open on the server, expected ${options.streams}`)
      await reply(client, { type: 'close' }, 'closing')
      await reply(server, { type: 'wait-closed' }, 'closed')
      const closed = await reply(server, { type: 'measure' }, 'measured')
      rounds.push({ opened, closed, seconds: (Date.now() - began) / 1000 })
      console.error(
        `${variant} round ${round + 1}: +${perStream(opened.heapUsed - before.heapUsed, options.streams)} B heap, ` +
          `+${perStream(opened.rss - before.rss, options.streams)} B RSS per open stream; after close ${signed(closed.heapUsed - before.heapUsed)} B heap`
      )
    }
    return { variant, before, rounds }
  } finally {
    for (const child of [client, server]) if (child.exitCode === null) child.kill('SIGKILL')
  }
}

function perStream(bytes, streams) {
  return Math.round(bytes / streams)
}

function signed(n) {
  return `${n >= 0 ? '+' : '−'}${Math.abs(Math.round(n))}`
}

async function main() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      node: { type: 'string', default: process.execPath },
      streams: { type: 'string', default: '10000' },
      rounds: { type: 'string', default: '2' },
      variants: { type: 'string', default: Object.keys(VARIANTS).join(',') },
      json: { type: 'string' }
    }
  })
  const options = { node: values.node, streams: Number(values.streams), rounds: Number(values.rounds), variants: values.variants.split(',') }
  for (const variant of options.variants) if (!(variant in VARIANTS)) throw new Error(`unknown variant ${variant}; known: ${Object.keys(VARIANTS).join(', ')}`)
  if (!fs.existsSync(path.join(__dirname, '..', 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first')
  const deadline = setTimeout(() => {
    console.error(`streams: over ${TIME_LIMIT_MS / 60_000} minutes, stopped`)
    process.exit(1)
  }, TIME_LIMIT_MS)
  deadline.unref()
  const version = require('node:child_process').spawnSync(options.node, ['-p', 'process.version'], { encoding: 'utf8' }).stdout.trim()
  const results = []
  for (const variant of options.variants) results.push(await measureVariant(options, variant))
  if (values.json) fs.writeFileSync(values.json, JSON.stringify({ node: version, ...options, results }, null, 2))

  const n = options.streams
  const bare = results.find((result) => result.variant === 'bare')
  // The median round would need more rounds; the last round is the steady one (the first may still grow pools).
  const last = (result) => result.rounds[result.rounds.length - 1]
  const heapPer = (result) => (last(result).opened.heapUsed - result.before.heapUsed) / n
  const rssPer = (result) => (last(result).opened.rss - result.before.rss) / n
  const lines = [
    `node ${version}; ${n} concurrent SSE streams over loopback, ${options.rounds} rounds per server process; heap after GC; the last round shown`,
    '',
    '| Variant | Heap per open stream, B | over bare, B | RSS per open stream, B | Heap after close vs before, KB (each round) | Metrics counted |',
    '| --- | ---: | ---: | ---: | --- | --- |'
  ]
  for (const result of results) {
    const over = bare !== undefined && result !== bare ? Math.round(heapPer(result) - heapPer(bare)).toString() : '–'
    const after = result.rounds.map((round) => signed((round.closed.heapUsed - result.before.heapUsed) / 1024)).join(' / ')
    const metrics = last(result).closed.metrics
    lines.push(
      `| ${VARIANTS[result.variant]} | ${Math.round(heapPer(result))} | ${over} | ${Math.round(rssPer(result))} | ${after} | ` +
        `${metrics === undefined ? '–' : `${metrics.web} web, ${metrics.background} background`} |`
    )
  }
  console.log(lines.join('\n'))
}

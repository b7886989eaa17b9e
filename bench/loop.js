'use strict'
// A socketless request loop for instruction counts (bench/instructions.js --socketless): one
// variant of bench/server.js served by Node's real HTTP server (parser, IncomingMessage,
// ServerResponse, keep-alive), over an in-memory duplex instead of a socket, one request at a time.
//
//   node bench/loop.js <variant> <route> <warmup> <requests>
//
// With no client process and no kernel in between, every run makes the same calls in the same
// order, so the counts repeat (over real sockets, how many requests one turn of the event loop
// picks up depends on timing). Under callgrind, `--zero-before=uv_os_getpriority` and
// `--dump-before=uv_os_gethostname` count exactly the measured requests: os.getPriority() is
// called right before them, os.hostname() right after.
const { spawn } = require('node:child_process')
const os = require('node:os')
const { Duplex } = require('node:stream')
const { createVariantApp, addRoutes } = require('./server')

const [variant, route, warmup, requests] = process.argv.slice(2)
if (!variant || !route || !(Number(warmup) >= 0) || !(Number(requests) > 0)) {
  console.error('usage: node bench/loop.js <variant> <sync|async> <warmup> <requests>')
  process.exit(2)
}

const handles = createVariantApp(variant)
// after the variant's setup, as bench/server.js does (OpenTelemetry hooks http as it loads)
const http = require('node:http')
const counts = addRoutes(handles)
const server = http.createServer(handles.app)
/** Requests served after switching instrumentation on, before the count starts. */
const SETTLE = 1000
const REQUEST = Buffer.from(`GET /${route} HTTP/1.1\r\nHost: bench\r\n\r\n`)

/** One keep-alive connection: what the server writes is collected until a whole response is in. */
function connect() {
  let received = ''
  let done
  const socket = new Duplex({
    read() {},
    write(chunk, encoding, callback) {
      received += chunk.toString('latin1')
      const headEnd = received.indexOf('\r\n\r\n')
      if (headEnd !== -1) {
        const length = Number(/content-length: *(\d+)/i.exec(received.slice(0, headEnd))?.[1])
        if (received.length >= headEnd + 4 + length) {
          received = ''
          // after the server's own finish and close handlers of this response
          setImmediate(done)
        }
      }
      callback()
    }
  })
  server.emit('connection', socket)
  return function send() {
    return new Promise((resolve) => {
      done = resolve
      socket.push(REQUEST)
    })
  }
}

async function run() {
  const send = connect()
  const serve = async (count) => {
    for (let i = 0; i < count; i++) await send()
  }
  await serve(Number(warmup))
  // a full GC, then warm up again (a GC clears inline caches and ages code), so none falls into the count by chance
  if (typeof global.gc === 'function') {
    global.gc()
    await serve(Number(warmup))
  }
  // EBT_LOOP_CALLGRIND=1 (run with --instr-atstart=no): the warm-up ran uninstrumented, at a fraction of the cost
  if (process.env.EBT_LOOP_CALLGRIND) await instrumentationOn()
  // settle again after what the two steps above disturbed (a child process, a write to stdout: new shapes of
  // emitters and streams deoptimize functions the requests use too)
  await serve(SETTLE)
  // EBT_LOOP_MARK=1: mark the counted part in the output of --trace-opt / --trace-deopt (_rawDebug: no stream involved)
  if (process.env.EBT_LOOP_MARK) process._rawDebug('-- counted requests start')
  // the CPU clock is read outside the counted calls
  const cpu = process.cpuUsage()
  os.getPriority()
  await serve(Number(requests))
  os.hostname()
  const { user, system } = process.cpuUsage(cpu)
  if (process.env.EBT_LOOP_MARK) process._rawDebug('-- counted requests end')
  // after the count: what was served, so a variant that lost its context or its transactions shows it
  const report = await handles.report()
  // CPU time per counted request (user + system, µs): for side-by-side runs outside callgrind
  console.error(JSON.stringify({ variant, route, cpuPerRequest: (user + system) / Number(requests), ...counts, ...report }))
  process.exit(counts.misses === 0 ? 0 : 1)
}

/** Switch callgrind's instrumentation on: callgrind_control reaches this process while its event loop waits. */
function instrumentationOn() {
  return new Promise((resolve, reject) => {
    const control = spawn('callgrind_control', ['-i', 'on', String(process.pid)], { stdio: 'ignore' })
    control.on('error', reject)
    control.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`callgrind_control -i on exited with ${code}`))))
  })
}

run().catch((err) => {
  console.error(err?.stack ?? err)
  process.exit(1)
})

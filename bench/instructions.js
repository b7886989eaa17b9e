'use strict'
// Instruction counts per request (valgrind --tool=callgrind) of bench/server.js variants: deterministic where CPU time is not.
//
//   npm run bench:instructions                               bare, bare ALS, both floors and the package, both routes
//   npm run bench:instructions -- --only package,floor --route sync --requests 2000 --warmup 1500
//   npm run bench:instructions -- --socketless --warmup 10000 --only bare,floor-state,package
//                              (bench/loop.js: no sockets, no client process; the counts repeat to a few
//                              hundred instructions per request, split into GC, JIT and the rest)
//   options: --node <binary>   --only <variant,...>   --route sync|async|sync,async
//            --requests <n measured>   --warmup <n before counting>   --connections <n in flight>
//            --node-flags "<flags>"  (default --single-threaded --expose-gc: no JIT or GC threads, whose
//                              work would land in the counts at random, and a full GC before the second half
//                              of the warm-up, so that no major GC falls into the counted requests by chance)   --jobs <servers measured at once>
//            --keep <dir>      keep the callgrind.out files there (for callgrind_annotate)
//
// Each variant's server runs under callgrind with instrumentation off; this process sends the
// warm-up requests over keep-alive connections, switches counting on (callgrind_control -i on),
// sends the measured requests, dumps and reads the total. Instructions (Ir) per request are the
// same from run to run within about 0.5% whatever else the machine does, where CPU time moves by
// ±15%: use these to decide, and the paired CPU-time runs (npm run bench) to report.
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')

const { values } = parseArgs({
  options: {
    node: { type: 'string', default: process.execPath },
    only: { type: 'string', default: 'bare,als,floor,floor-state,package' },
    route: { type: 'string', default: 'sync,async' },
    requests: { type: 'string', default: '2000' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '1' },
    'node-flags': { type: 'string' },
    jobs: { type: 'string', default: '2' },
    keep: { type: 'string' },
    socketless: { type: 'boolean', default: false }
  }
})
// --socketless adds: no GC work scheduled by time (the memory reducer, minor GC tasks) and no
// incremental marking, whose barriers would slow the requests it overlaps. Under load callgrind runs
// slower in wall time, and those would move the count of the rest by up to 40 k per request.
values['node-flags'] ??= values.socketless
  ? '--single-threaded --expose-gc --no-memory-reducer --no-minor-gc-task --no-incremental-marking'
  : '--single-threaded --expose-gc'
const SETTINGS = {
  requests: Number(values.requests),
  // the socketless loop needs more: V8 still tiers functions up after a few thousand requests
  warmup: Number(values.warmup ?? (values.socketless ? 10000 : 1500)),
  connections: Number(values.connections)
}

/**
 * A variant is given as `floor~nocount` for the variant `floor` with EBT_BENCH_EXPERIMENT=nocount;
 * bench/server.js reads the spec and sets it. One exported in the shell does not count here.
 */
const ONLY_THE_SPECS_EXPERIMENT = { EBT_BENCH_EXPERIMENT: '' }

main().catch((err) => {
  console.error(err?.stack ?? err)
  process.exitCode = 1
})

async function main() {
  if (spawnSync('valgrind', ['--version']).status !== 0) throw new Error('valgrind is not installed')
  const version = spawnSync(values.node, ['-p', 'process.version'], { encoding: 'utf8' }).stdout.trim()
  const variants = values.only.split(',').filter(Boolean)
  const routes = values.route.split(',').filter(Boolean)
  const rows = routes.flatMap((route) => variants.map((variant) => ({ variant, route, ir: 0 })))
  // Counts do not depend on what else runs, so servers are measured side by side.
  let next = 0
  async function worker() {
    while (next < rows.length) {
      const row = rows[next++]
      Object.assign(row, await measure(row.variant, row.route))
      console.error(`${row.variant} /${row.route}: ${(row.ir / 1000).toFixed(1)} k Ir/request${row.rest === undefined ? '' : `, rest ${(row.rest / 1000).toFixed(1)} k`}`)
    }
  }
  await Promise.all(Array.from({ length: Number(values.jobs) }, worker))
  const k = (n) => (n / 1000).toFixed(1)
  if (values.socketless) {
    // the rest is what repeats: the ratio and the difference are taken on it
    const base = (route) => rows.find((row) => row.variant === 'bare' && row.route === route)?.rest
    console.log(`node ${version} ${values['node-flags']}; callgrind Ir per request, socketless loop (bench/loop.js), ${SETTINGS.requests} requests after ${SETTINGS.warmup} + ${SETTINGS.warmup} of warm-up around a full GC`)
    console.log('')
    console.log('| Variant | Route | k Ir / request | GC | JIT | rest | rest − bare | rest × bare |')
    console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |')
    for (const row of rows) {
      const bare = base(row.route)
      console.log(`| ${row.variant} | ${row.route} | ${k(row.ir)} | ${k(row.gc)} | ${k(row.jit)} | ${k(row.rest)} | ${bare ? k(row.rest - bare) : '–'} | ${bare ? (row.rest / bare).toFixed(3) : '–'} |`)
    }
    return
  }
  const base = (route) => rows.find((row) => row.variant === 'bare' && row.route === route)?.ir
  console.log(`node ${version} ${values['node-flags']}; callgrind Ir per request, ${SETTINGS.requests} requests after ${SETTINGS.warmup} of warm-up, ${SETTINGS.connections} keep-alive connections`)
  console.log('')
  console.log('| Variant | Route | k Ir / request | × bare |')
  console.log('| --- | --- | ---: | ---: |')
  for (const row of rows) {
    const bare = base(row.route)
    console.log(`| ${row.variant} | ${row.route} | ${k(row.ir)} | ${bare ? (row.ir / bare).toFixed(3) : '–'} |`)
  }
}

async function measure(variant, route) {
  return values.socketless ? measureSocketless(variant, route) : measureServer(variant, route)
}

/**
 * `--socketless`: bench/loop.js under callgrind, uninstrumented through the warm-up; counted from
 * os.getPriority() to os.hostname() around the measured requests, and split into the GC's share
 * (inclusive cost of Heap::CollectGarbage), the optimising compilers' and deoptimiser's (JIT), and
 * the rest, which repeats from run to run to within a few hundred instructions per request.
 */
async function measureSocketless(variant, route) {
  const dir = values.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ebt-callgrind-'))
  fs.mkdirSync(dir, { recursive: true })
  const out = path.join(dir, `callgrind.out.${variant.replace('~', '-')}.${route}.socketless`)
  const env = { ...process.env, ...ONLY_THE_SPECS_EXPERIMENT, EBT_LOOP_CALLGRIND: '1' }
  const args = [
    '--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file',
    '--zero-before=uv_os_getpriority', '--dump-before=uv_os_gethostname', `--callgrind-out-file=${out}`,
    values.node, ...values['node-flags'].split(' ').filter(Boolean),
    path.join(__dirname, 'loop.js'), variant, route, String(SETTINGS.warmup), String(SETTINGS.requests)
  ]
  try {
    const result = await new Promise((resolve, reject) => {
      const child = spawn('valgrind', args, { stdio: ['ignore', 'ignore', 'pipe'], env })
      let stderr = ''
      child.stderr.on('data', (chunk) => (stderr += chunk))
      child.on('error', reject)
      child.on('exit', (code) => resolve({ code, stderr }))
    })
    const dump = fs.readdirSync(dir).filter((file) => file.startsWith(`${path.basename(out)}.`)).sort().pop()
    if (result.code !== 0 || dump === undefined) throw new Error(`loop ${variant} ${route} failed (${result.code}): ${result.stderr.slice(-2000)}`)
    return splitIr(path.join(dir, dump))
  } finally {
    if (values.keep === undefined) fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** Functions whose inclusive cost is the GC's, and the JIT's (compiling, deoptimising); the largest of each family counts. */
const SHARES = {
  gc: [/^v8::internal::Heap::CollectGarbage\(/],
  jit: [/^v8::internal::Compiler::CompileOptimized\(/, /^v8::internal::Runtime_CompileLazy\(/, /^v8::internal::Runtime_CompileBaseline\(/, /^v8::internal::Runtime_InstallBaselineCode\(/, /^v8::internal::Runtime_NotifyDeoptimized\(/, /^v8::internal::Deoptimizer::New\(/]
}

/** Ir per request in a dump: total, and its GC, JIT and other parts. */
function splitIr(file) {
  const annotated = spawnSync('callgrind_annotate', ['--inclusive=yes', '--threshold=100', file], { encoding: 'utf8', maxBuffer: 1 << 28 })
  if (annotated.status !== 0) throw new Error(`callgrind_annotate ${file}: ${annotated.stderr}`)
  const total = Number(/^\s*([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS/m.exec(annotated.stdout)?.[1].replaceAll(',', ''))
  // each function's inclusive count, read once
  const functions = []
  for (const line of annotated.stdout.split('\n')) {
    const match = /^\s*([\d,]+) \([^)]*\)\s+[^:]*:(.*)$/.exec(line)
    if (match) functions.push({ ir: Number(match[1].replaceAll(',', '')), name: match[2] })
  }
  const share = { gc: 0, jit: 0 }
  for (const [key, patterns] of Object.entries(SHARES)) {
    for (const pattern of patterns) share[key] += Math.max(0, ...functions.filter((fn) => pattern.test(fn.name)).map((fn) => fn.ir))
  }
  const per = (n) => n / SETTINGS.requests
  return { ir: per(total), gc: per(share.gc), jit: per(share.jit), rest: per(total - share.gc - share.jit) }
}

async function measureServer(variant, route) {
  const dir = values.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ebt-callgrind-'))
  const env = { ...process.env, ...ONLY_THE_SPECS_EXPERIMENT }
  fs.mkdirSync(dir, { recursive: true })
  const out = path.join(dir, `callgrind.out.${variant.replace('~', '-')}.${route}`)
  const child = spawn(
    'valgrind',
    ['--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', `--callgrind-out-file=${out}`, values.node, ...values['node-flags'].split(' ').filter(Boolean), path.join(__dirname, 'server.js'), variant],
    { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env }
  )
  let stderr = ''
  child.stderr.on('data', (chunk) => (stderr += chunk))
  try {
    const port = await new Promise((resolve, reject) => {
      child.once('message', (message) => resolve(message.port))
      child.once('exit', (code) => reject(new Error(`server ${variant} exited (${code}): ${stderr.slice(-2000)}`)))
    })
    const agent = new http.Agent({ keepAlive: true, maxSockets: SETTINGS.connections })
    await drive(agent, port, route, SETTINGS.warmup)
    await new Promise((resolve) => {
      child.on('message', function onMessage(message) {
        if (message.type !== 'collected') return
        child.off('message', onMessage)
        resolve()
      })
      child.send({ type: 'gc' })
    })
    // A full GC clears inline caches and ages code: warm up again after it, so none of that is counted.
    await drive(agent, port, route, SETTINGS.warmup)
    control(child.pid, '-i', 'on')
    await drive(agent, port, route, SETTINGS.requests)
    control(child.pid, '-d')
    control(child.pid, '-i', 'off')
    agent.destroy()
    return { ir: totalIr(out) }
  } finally {
    child.kill('SIGKILL')
    if (values.keep === undefined) fs.rmSync(dir, { recursive: true, force: true })
  }
}

function control(pid, ...args) {
  const result = spawnSync('callgrind_control', [...args, String(pid)], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`callgrind_control ${args.join(' ')}: ${result.stderr || result.stdout}`)
}

/** `count` GET requests, `SETTINGS.connections` in flight at a time. */
async function drive(agent, port, route, count) {
  let sent = 0
  async function lane() {
    while (sent < count) {
      sent++
      await get(agent, port, `/${route}`)
    }
  }
  await Promise.all(Array.from({ length: SETTINGS.connections }, lane))
}

function get(agent, port, urlPath) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent }, (res) => {
      res.resume()
      res.on('end', resolve)
    })
    req.on('error', reject)
  })
}

/** The summed Ir of every dump in the file (a dump is made per callgrind_control -d; parts may follow). */
function totalIr(out) {
  let total = 0
  const files = fs.readdirSync(path.dirname(out)).filter((name) => name.startsWith(path.basename(out)))
  for (const name of files) {
    const text = fs.readFileSync(path.join(path.dirname(out), name), 'utf8')
    const match = /^summary:\s+(\d+)/m.exec(text) ?? /^totals:\s+(\d+)/m.exec(text)
    if (match) total += Number(match[1])
  }
  if (total === 0) throw new Error(`no counts in ${out}`)
  return total / SETTINGS.requests
}

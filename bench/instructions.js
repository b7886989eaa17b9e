'use strict'
// Instruction counts per request (valgrind --tool=callgrind) of bench/server.js variants: deterministic where CPU time is not.
//
//   npm run bench:instructions                               bare, bare ALS, both floors and the package, both routes
//   npm run bench:instructions -- --only package,floor --route sync --requests 2000 --warmup 1500
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
    warmup: { type: 'string', default: '1500' },
    connections: { type: 'string', default: '1' },
    'node-flags': { type: 'string', default: '--single-threaded --expose-gc' },
    jobs: { type: 'string', default: '2' },
    keep: { type: 'string' }
  }
})
const SETTINGS = {
  requests: Number(values.requests),
  warmup: Number(values.warmup),
  connections: Number(values.connections)
}

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
      row.ir = await measure(row.variant, row.route)
      console.error(`${row.variant} /${row.route}: ${(row.ir / 1000).toFixed(1)} k Ir/request`)
    }
  }
  await Promise.all(Array.from({ length: Number(values.jobs) }, worker))
  const base = (route) => rows.find((row) => row.variant === 'bare' && row.route === route)?.ir
  console.log(`node ${version} ${values['node-flags']}; callgrind Ir per request, ${SETTINGS.requests} requests after ${SETTINGS.warmup} of warm-up, ${SETTINGS.connections} keep-alive connections`)
  console.log('')
  console.log('| Variant | Route | k Ir / request | × bare |')
  console.log('| --- | --- | ---: | ---: |')
  for (const row of rows) {
    const bare = base(row.route)
    console.log(`| ${row.variant} | ${row.route} | ${(row.ir / 1000).toFixed(1)} | ${bare ? (row.ir / bare).toFixed(3) : '–'} |`)
  }
}

async function measure(variant, route) {
  const dir = values.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ebt-callgrind-'))
  // `floor~nocount`: the variant `floor` with EBT_BENCH_EXPERIMENT=nocount (experiments a setup reads)
  const [name, experiment = ''] = variant.split('~')
  const env = { ...process.env, EBT_BENCH_EXPERIMENT: experiment }
  fs.mkdirSync(dir, { recursive: true })
  const out = path.join(dir, `callgrind.out.${variant.replace('~', '-')}.${route}`)
  const child = spawn(
    'valgrind',
    ['--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', `--callgrind-out-file=${out}`, values.node, ...values['node-flags'].split(' ').filter(Boolean), path.join(__dirname, 'server.js'), name],
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
    return totalIr(out)
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

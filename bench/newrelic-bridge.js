'use strict'
// What bridgeNewRelic() adds per request on top of the New Relic agent and this package, counted in
// CPU instructions (valgrind's callgrind) rather than CPU time (`npm run bench` rows package-newrelic /
// package-newrelic-bridge measure CPU time). Caveat, measured: the agent's own periodic work (its
// timers) runs per second of wall time, and under valgrind on a loaded machine a window's wall time
// varies, so windows of one arm still differ by up to ±20%; read the median difference against that
// range (a difference inside it is not resolved).
//
//   node bench/newrelic-bridge.js [--windows 12] [--requests 300] [--warmup 3000] [--mix mixed|web]
//
// One server runs under callgrind with `node --single-threaded` (no concurrent compiler or GC
// threads): Express 5 + the package's middleware under agent 13, connected to the local HTTPS
// collector of the tests with harvests an hour apart (no harvest, no reconnect during the run).
// --mix mixed marks half the requests background; --mix web none (New Relic then does the same work
// with and without the bridge, and the difference is the bridge's own bookkeeping). This process
// sends the requests one at a time over a keep-alive connection (not counted). After a warmup that
// runs both ways, the bridge is started and stopped in the same process between windows (ABBA
// order); per window the counters are zeroed (`callgrind_control -z`), `--requests` requests are
// served and the instructions read (`callgrind_control -e`), after a full GC (`--expose-gc`) so no
// major collection left over from the window before lands in it. Same process, same heap, same JIT
// state: what differs between windows is the bridge. Medians per arm. Needs valgrind.
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')
const { startCollector } = require('../test/fixtures/newrelic-collector')

const NEW_RELIC_ENV = {
  NEW_RELIC_LICENSE_KEY: '0000000000000000000000000000000000000000',
  NEW_RELIC_APP_NAME: 'express-background-task bridge bench',
  NEW_RELIC_NO_CONFIG_FILE: 'true',
  NEW_RELIC_LOG_ENABLED: 'false'
}
/** Server-side settings of the collector's connect answer: no harvest during a run. */
const HARVEST_AN_HOUR_APART = {
  data_report_period: 3600,
  event_harvest_config: { report_period_ms: 3_600_000, harvest_limits: { analytic_event_data: 10_000, custom_event_data: 10_000, error_event_data: 100, span_event_data: 2000, log_event_data: 10_000 } }
}

// ------------------------------------------------------------------------------------- the server

function runServer() {
  require('newrelic')
  const express = require('express')
  const ebt = require('express-background-task')
  const { bridgeNewRelic } = require('express-background-task/newrelic')
  let bridge
  const app = express()
  // before the middleware: the switch itself is no transaction
  app.get('/__bridge/:state', function toggle(req, res) {
    if (req.params.state === 'on' && bridge === undefined) {
      bridge = bridgeNewRelic()
      if (!bridge.active) throw new Error(`the bridge is inactive: ${bridge.reason}`)
    } else if (req.params.state === 'off' && bridge !== undefined) {
      bridge.stop()
      bridge = undefined
    }
    res.send(req.params.state)
  })
  // a full collection before each window, so a major GC left over from the last one does not land in it
  app.get('/__gc', function collect(req, res) {
    globalThis.gc()
    res.send('collected')
  })
  app.use(ebt.middleware())
  app.get('/web/:id', function web(req, res) {
    res.send('web')
  })
  app.get('/background/:id', function background(req, res) {
    ebt.setBackgroundTask()
    res.send('background')
  })
  const server = app.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`))
  process.on('SIGTERM', () => process.exit(0))
}

// ------------------------------------------------------------------------------------- the driver

function get(port, agent, urlPath) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: urlPath, agent }, (res) => {
      res.resume()
      res.on('end', resolve)
    }).on('error', reject)
  })
}

/** callgrind_control on the server; resolves its output. */
function control(pid, flag) {
  const run = spawnSync('callgrind_control', [flag, String(pid)], { encoding: 'utf8' })
  if (run.status !== 0) throw new Error(`callgrind_control ${flag} failed: ${run.stderr}`)
  return run.stdout
}

/** Instructions since the last zero, summed over the server's threads. */
function instructions(pid) {
  let total = 0
  for (const match of control(pid, '-e').matchAll(/^\s*Th \d+\s+([\d,]+)\s*$/gm)) total += Number(match[1].replaceAll(',', ''))
  return total
}

async function main() {
  const { values } = parseArgs({
    options: {
      windows: { type: 'string', default: '12' },
      requests: { type: 'string', default: '300' },
      warmup: { type: 'string', default: '3000' },
      mix: { type: 'string', default: 'mixed' }
    }
  })
  const [windows, requests, warmup] = [values.windows, values.requests, values.warmup].map(Number)
  const mix = values.mix
  if (mix !== 'mixed' && mix !== 'web') throw new Error(`--mix is mixed or web, got ${mix}`)
  if (spawnSync('valgrind', ['--version']).status !== 0) throw new Error('valgrind is not installed')
  const collector = await startCollector({ connectSettings: HARVEST_AN_HOUR_APART })
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebt-nr-bench-'))
  const child = spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${path.join(dir, 'callgrind.out')}`, process.execPath, '--single-threaded', '--expose-gc', __filename, '--server'], {
    cwd: path.join(__dirname, '..'),
    env: { ...process.env, ...NEW_RELIC_ENV, ...collector.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000) })
  try {
    const port = await new Promise((resolve, reject) => {
      let stdout = ''
      child.stdout.setEncoding('utf8').on('data', (chunk) => {
        stdout += chunk
        const match = /listening (\d+)/.exec(stdout)
        if (match !== null) resolve(Number(match[1]))
      })
      child.on('exit', (code) => reject(new Error(`the server exited (${code}):\n${stderr}`)))
    })
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const send = async (count) => {
      for (let i = 0; i < count; i++) await get(port, agent, `/${mix === 'web' || i % 2 === 0 ? 'web' : 'background'}/${i}`)
    }
    console.log(`callgrind, node ${process.version} --single-threaded, newrelic ${require('newrelic/package.json').version}, express ${require('express/package.json').version}; ${warmup} warmup requests (both ways), then ${windows} windows of ${requests} requests (ABBA), requests ${mix === 'web' ? 'all web' : 'half marked background'}`)
    for (let done = 0; done < warmup; done += 500) {
      await get(port, agent, `/__bridge/${(done / 500) % 2 === 0 ? 'on' : 'off'}`)
      await send(Math.min(500, warmup - done))
    }
    const perRequest = { off: [], on: [] }
    for (let window = 0; window < windows; window++) {
      const state = [0, 3].includes(window % 4) ? 'off' : 'on'
      await get(port, agent, `/__bridge/${state}`)
      await send(20) // settle: transactions of the other state end
      await get(port, agent, '/__gc')
      control(child.pid, '-z')
      await send(requests)
      const value = instructions(child.pid) / requests
      perRequest[state].push(value)
      console.log(`  window ${String(window + 1).padStart(2)} bridge ${state.padEnd(3)} ${Math.round(value)} instructions/request`)
    }
    agent.destroy()
    const median = (list) => {
      const sorted = [...list].sort((a, b) => a - b)
      const middle = sorted.length / 2
      return sorted.length % 2 === 1 ? sorted[Math.floor(middle)] : (sorted[middle - 1] + sorted[middle]) / 2
    }
    const off = median(perRequest.off)
    const on = median(perRequest.on)
    const spread = (list) => `${Math.round(Math.min(...list)).toLocaleString('en')}–${Math.round(Math.max(...list)).toLocaleString('en')}`
    console.log('\n| Arm | Instructions / request (median) | range over windows | vs agent + package |')
    console.log('| --- | ---: | ---: | ---: |')
    console.log(`| agent 13 + express-background-task | ${Math.round(off).toLocaleString('en')} | ${spread(perRequest.off)} | 1.000 |`)
    console.log(`| agent 13 + express-background-task + bridgeNewRelic() | ${Math.round(on).toLocaleString('en')} | ${spread(perRequest.on)} | ${(on / off).toFixed(3)} |`)
    console.log(`\nthe bridge adds ${Math.round(on - off).toLocaleString('en')} instructions per request: ${(((on - off) / off) * 100).toFixed(2)}% of the agent + package`)
  } finally {
    child.kill('SIGTERM')
    await collector.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[2] === '--server') runServer()
else main().catch((err) => {
  console.error(err)
  process.exit(1)
})

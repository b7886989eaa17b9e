'use strict'
// What bridgeNewRelic() adds per request on top of the New Relic agent and this package, counted in
// CPU instructions (valgrind's callgrind), which the load of a shared machine does not move the way it
// moves CPU time (`npm run bench` rows package-newrelic / package-newrelic-bridge measure CPU time).
//
//   node bench/newrelic-bridge.js [--requests 1000] [--warmup 4000] [--runs 1] [--arms bare,agent,bridge] [--mix mixed|web]
//
// Per arm, the server (Express 5 + the package's middleware under agent 13, connected to the local
// HTTPS collector of the tests with harvests an hour apart, so no harvest and no reconnect falls in a
// run; --mix mixed marks half the requests background, --mix web none: then New Relic does the same
// work in both arms and the difference is the bridge's own bookkeeping) runs under callgrind
// with `node --single-threaded` (no concurrent compiler or GC threads), twice: after the same warmup it
// serves 0 more requests, then `--requests` more, one at a time over a keep-alive connection from this
// process (not counted). Instructions per request = (Ir(warmup + requests) - Ir(warmup)) / requests:
// startup and warmup cancel. Arms: bare Express 5 (no agent, no package), the agent + the package, and
// the same + the bridge. Needs valgrind.
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')
const { startCollector } = require('../test/fixtures/newrelic-collector')

const ARMS = [
  { key: 'bare', label: 'bare Express 5 (no agent, no package)' },
  { key: 'agent', label: 'agent 13 + express-background-task' },
  { key: 'bridge', label: 'agent 13 + express-background-task + bridgeNewRelic()' }
]
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

function runServer(arm) {
  if (arm !== 'bare') require('newrelic')
  const express = require('express')
  const app = express()
  let ebt
  if (arm !== 'bare') {
    ebt = require('express-background-task')
    if (arm === 'bridge') {
      const bridge = require('express-background-task/newrelic').bridgeNewRelic()
      if (!bridge.active) throw new Error(`the bridge is inactive: ${bridge.reason}`)
    }
    app.use(ebt.middleware())
  }
  app.get('/web/:id', function web(req, res) {
    res.send('web')
  })
  app.get('/background/:id', function background(req, res) {
    ebt?.setBackgroundTask()
    res.send('background')
  })
  const server = app.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`))
  process.on('SIGTERM', () => process.exit(0))
}

// ------------------------------------------------------------------------------------- the driver

/** Send `count` requests, one at a time, alternating web and background (mix `mixed`) or all web. */
async function send(port, agent, count, mix) {
  for (let i = 0; i < count; i++) {
    const route = mix === 'web' || i % 2 === 0 ? 'web' : 'background'
    await new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: `/${route}/${i}`, agent }, (res) => {
        res.resume()
        res.on('end', resolve)
      }).on('error', reject)
    })
  }
}

/** One server under callgrind: warmup, then `requests` more; resolves the instructions it executed in total. */
async function countInstructions({ arm, warmup, requests, mix, collector }) {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ebt-nr-bench-')), 'callgrind.out')
  const child = spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, process.execPath, '--single-threaded', __filename, '--server', arm], {
    cwd: path.join(__dirname, '..'),
    env: { ...process.env, ...NEW_RELIC_ENV, ...collector.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000) })
  const port = await new Promise((resolve, reject) => {
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      stdout += chunk
      const match = /listening (\d+)/.exec(stdout)
      if (match !== null) resolve(Number(match[1]))
    })
    child.on('exit', (code) => reject(new Error(`the ${arm} server exited (${code}):\n${stderr}`)))
  })
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  await send(port, agent, warmup + requests, mix)
  agent.destroy()
  const exited = new Promise((resolve) => child.on('exit', resolve))
  child.kill('SIGTERM')
  await exited
  const summary = /^(?:summary|totals): (\d+)/m.exec(fs.readFileSync(out, 'utf8'))
  fs.rmSync(path.dirname(out), { recursive: true, force: true })
  if (summary === null) throw new Error(`no callgrind summary for ${arm}:\n${stderr}`)
  return Number(summary[1])
}

async function main() {
  const { values } = parseArgs({ options: { requests: { type: 'string', default: '1000' }, warmup: { type: 'string', default: '4000' }, runs: { type: 'string', default: '1' }, arms: { type: 'string', default: 'bare,agent,bridge' }, mix: { type: 'string', default: 'mixed' } } })
  const requests = Number(values.requests)
  const warmup = Number(values.warmup)
  const runs = Number(values.runs)
  if (spawnSync('valgrind', ['--version']).status !== 0) throw new Error('valgrind is not installed')
  const mix = values.mix
  if (mix !== 'mixed' && mix !== 'web') throw new Error(`--mix is mixed or web, got ${mix}`)
  const collector = await startCollector({ connectSettings: HARVEST_AN_HOUR_APART })
  console.log(`callgrind, node ${process.version} --single-threaded, newrelic ${require('newrelic/package.json').version}, express ${require('express/package.json').version}; ${warmup} warmup + ${requests} measured requests per run, ${runs} run(s) per arm, requests ${mix === 'web' ? 'all web' : 'half marked background'}`)
  const perRequest = {}
  for (let run = 0; run < runs; run++) {
    for (const arm of ARMS.filter((arm) => values.arms.split(',').includes(arm.key))) {
      const [base, loaded] = await Promise.all([0, requests].map((extra) => countInstructions({ arm: arm.key, warmup, requests: extra, mix, collector })))
      const value = (loaded - base) / requests
      ;(perRequest[arm.key] ??= []).push(value)
      console.log(`  run ${run + 1} ${arm.key.padEnd(6)} ${Math.round(value)} instructions/request`)
    }
  }
  const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]
  await collector.close()
  if (perRequest.agent === undefined || perRequest.bridge === undefined) return
  const agent = median(perRequest.agent)
  const bridge = median(perRequest.bridge)
  console.log('\n| Arm | Instructions / request | vs agent + package |')
  console.log('| --- | ---: | ---: |')
  for (const arm of ARMS.filter((arm) => perRequest[arm.key] !== undefined)) {
    const value = median(perRequest[arm.key])
    const vs = arm.key === 'bare' ? '' : arm.key === 'agent' ? '1.000' : (value / agent).toFixed(3)
    console.log(`| ${arm.label} | ${Math.round(value).toLocaleString('en')} | ${vs} |`)
  }
  console.log(`\nthe bridge adds ${Math.round(bridge - agent).toLocaleString('en')} instructions per request: ${(((bridge - agent) / agent) * 100).toFixed(2)}% of the agent + package`)
}

if (process.argv[2] === '--server') runServer(process.argv[3])
else main().catch((err) => {
  console.error(err)
  process.exit(1)
})

'use strict'
// Packaging: the packed tarball, installed in a fresh project without express, works from require, import and tsc.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.resolve(__dirname, '..')
const PACKAGE = 'express-background-task'
const TIMEOUT_MS = 120_000

/** Every export (SPEC's Public API, and the metrics name cap and overflow names), with the `typeof` it must have under both loaders. */
const EXPORTS = {
  middleware: 'function',
  setBackgroundTask: 'function',
  getTransaction: 'function',
  backgroundTask: 'function',
  onTransactionEnd: 'function',
  metrics: 'function',
  createAgent: 'function',
  errorHandler: 'function',
  uninstall: 'function',
  ErrorCode: 'object',
  ChannelName: 'object',
  TransactionType: 'object',
  MAX_TRANSACTION_NAMES: 'number',
  OVERFLOW_NAME: 'object'
}

/**
 * The environment of child processes: without what `npm test` exports for its own package
 * (npm_package_*, npm_config_local_prefix, a prefix) and without node:test's or NODE_PATH's
 * influence, so the children see only the temporary project.
 */
function childEnv() {
  const env = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_(package|lifecycle|command)/i.test(key)) continue
    if (/^npm_config_(local_prefix|prefix|global)$/i.test(key)) continue
    if (key === 'NODE_TEST_CONTEXT' || key === 'NODE_PATH' || key === 'NODE_OPTIONS') continue
    env[key] = value
  }
  return env
}

/** Run a command; resolves { stdout, stderr }, rejects with both attached so failures explain themselves. */
function run(file, args, cwd) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, env: childEnv(), timeout: TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024, shell: process.platform === 'win32' && file === 'npm' }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`
        reject(err)
      } else {
        resolve({ stdout, stderr })
      }
    })
  })
}

/** Run a script file of the temporary project with node; it asserts itself and prints `ok` last. */
async function runScript(project, name, source) {
  fs.writeFileSync(path.join(project, name), source)
  const { stdout } = await run(process.execPath, [name], project)
  assert.equal(stdout.trim().split('\n').pop(), 'ok', `${name} did not finish: ${stdout}`)
  return stdout
}

const CJS_SCRIPT = `'use strict'
const assert = require('node:assert/strict')
const ebt = require(${JSON.stringify(PACKAGE)})
const expected = ${JSON.stringify(EXPORTS)}
for (const [name, type] of Object.entries(expected)) assert.equal(typeof ebt[name], type, name)
assert.deepEqual(Object.keys(ebt).sort(), Object.keys(expected).sort())
assert.deepEqual({ ...ebt.TransactionType }, { WEB: 'web', BACKGROUND: 'background' })
for (const code of Object.values(ebt.ErrorCode)) assert.match(code, /^ERR_EBT_[A-Z_]+$/)
// The installed copy is the one in this project, and nothing but the entry points is reachable.
assert.ok(require.resolve(${JSON.stringify(PACKAGE)}).startsWith(__dirname + require('node:path').sep), require.resolve(${JSON.stringify(PACKAGE)}))
assert.equal(require(${JSON.stringify(PACKAGE + '/package.json')}).name, ${JSON.stringify(PACKAGE)})
assert.throws(() => require(${JSON.stringify(PACKAGE + '/dist/agent.js')}), { code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' })
// A working agent, not only the right shapes.
assert.throws(() => ebt.createAgent({ apdext: 1 }), { name: 'TypeError', code: ebt.ErrorCode.UNKNOWN_OPTION })
assert.equal(ebt.backgroundTask('sync', () => 42), 42)
assert.equal(ebt.setBackgroundTask(), false)
console.log('ok')
`

const ESM_SCRIPT = `import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import * as ns from ${JSON.stringify(PACKAGE)}
import {
  middleware, setBackgroundTask, getTransaction, backgroundTask, onTransactionEnd, metrics, createAgent,
  errorHandler, uninstall, ErrorCode, ChannelName, TransactionType, MAX_TRANSACTION_NAMES, OVERFLOW_NAME
} from ${JSON.stringify(PACKAGE)}

const expected = ${JSON.stringify(EXPORTS)}
const named = { middleware, setBackgroundTask, getTransaction, backgroundTask, onTransactionEnd, metrics, createAgent, errorHandler, uninstall, ErrorCode, ChannelName, TransactionType, MAX_TRANSACTION_NAMES, OVERFLOW_NAME }
const cjs = createRequire(import.meta.url)(${JSON.stringify(PACKAGE)})
for (const [name, type] of Object.entries(expected)) {
  assert.equal(typeof named[name], type, name)
  assert.equal(typeof ns[name], type, 'namespace ' + name)
  // One instance for both loaders: the very same objects, so one default agent and one registry.
  assert.equal(named[name], cjs[name], 'import and require differ for ' + name)
  assert.equal(ns[name], cjs[name], 'namespace and require differ for ' + name)
}
assert.deepEqual(Object.keys(ns).filter((key) => key !== 'default').sort(), Object.keys(expected).sort())
const resolved = import.meta.resolve(${JSON.stringify(PACKAGE)})
assert.ok(resolved.endsWith('/node_modules/${PACKAGE}/dist/index.mjs'), resolved)
// A listener added through import sees a task run through require: the same default agent.
const seen = []
const stop = onTransactionEnd((record) => seen.push(record.name))
cjs.backgroundTask('from-require', () => undefined)
await backgroundTask('from-import', async () => undefined, { group: 'Esm' })
stop()
assert.deepEqual(seen, ['OtherTransaction/Nodejs/from-require', 'OtherTransaction/Esm/from-import'])
// and one set of metrics
assert.equal(metrics().timeslices['OtherTransaction/all'].callCount, 2)
assert.equal(cjs.metrics({ reset: true }).timeslices['OtherTransaction/Esm/from-import'].callCount, 1)
console.log('ok')
`

const HTTP_SCRIPT = `'use strict'
// No express: a plain node:http server calls the middleware, then answers.
const assert = require('node:assert/strict')
const http = require('node:http')
const { once } = require('node:events')
const ebt = require(${JSON.stringify(PACKAGE)})

assert.throws(() => require.resolve('express'), { code: 'MODULE_NOT_FOUND' })

async function main() {
  const records = []
  ebt.onTransactionEnd((record) => records.push(record))
  const handle = ebt.middleware()
  const server = http.createServer((req, res) => {
    if (req.url === '/ignored') req.newrelic = { ignoreTransaction: 'on' }
    handle(req, res, async (err) => {
      assert.equal(err, undefined)
      await new Promise((resolve) => setImmediate(resolve))
      const tx = ebt.getTransaction(req)
      assert.equal(ebt.getTransaction(), tx)
      if (req.url === '/report') {
        assert.equal(ebt.setBackgroundTask(), true)
        tx.addAttribute('report', 'monthly')
        const value = await ebt.backgroundTask('render', async () => {
          await new Promise((resolve) => setTimeout(resolve, 1))
          return 7
        })
        assert.equal(value, 7)
        assert.equal(ebt.getTransaction(), tx)
      }
      res.statusCode = 201
      res.end('done')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  for (const route of ['/ignored', '/report', '/plain?id=1']) {
    const res = await new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: route, agent: false }, resolve).on('error', reject)
    })
    res.resume()
    await once(res, 'end')
    assert.equal(res.statusCode, 201)
  }
  for (let i = 0; i < 100 && records.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  server.close()
  const summary = records.map((r) => [r.type, r.name, r.statusCode, r.aborted])
  assert.deepEqual(summary, [
    ['background', 'OtherTransaction/Nodejs/render', undefined, undefined],
    ['background', 'OtherTransaction/Connect/GET//', 201, false],
    ['web', 'WebTransaction/Connect/GET//', 201, false]
  ])
  assert.deepEqual(records[1].attributes, { report: 'monthly' })
  assert.equal(Object.isFrozen(records[1]), true)
  console.log('ok')
}
main().catch((err) => { console.error(err); process.exit(1) })
`

const TYPES_CJS = `import http from 'node:http'
import { backgroundTask, createAgent, getTransaction, middleware, setBackgroundTask, type TransactionRecord } from '${PACKAGE}'
const handle = middleware()
http.createServer((req, res) => {
  req.newrelic = { setBackgroundTask: 'on' }
  handle(req, res, () => res.end(getTransaction(req)?.name ?? ''))
})
const n: Promise<number> = backgroundTask('x', async () => 1)
const applied: boolean = setBackgroundTask(false)
createAgent({ context: 'cls-hooked', apdexT: 1 }).onTransactionEnd((record: TransactionRecord) => record.duration)
// @ts-expect-error -- typo of apdexT
createAgent({ apdext: 1 })
export { n, applied }
`

const TYPES_ESM = `import http from 'node:http'
import { backgroundTask, createAgent, getTransaction, middleware, type Agent } from '${PACKAGE}'
const agent: Agent = createAgent()
http.createServer((req, res) => {
  req.newrelic = { ignoreTransaction: true }
  middleware()(req, res, () => res.end(getTransaction(req)?.type ?? ''))
})
export const n: Promise<string> = backgroundTask('x', async () => 'done')
// @ts-expect-error -- an unknown context engine
createAgent({ context: 'als' })
export { agent }
`

const PEER_MISSING_SCRIPT = `'use strict'
// prom-client is not installed: the subpath says so on require and on import, with the fix.
const assert = require('node:assert/strict')
const expected = { name: 'TypeError', code: 'ERR_EBT_PEER_MISSING', message: /express-background-task\\/prometheus needs the package prom-client.*npm install prom-client/ }
assert.throws(() => require.resolve('prom-client'), { code: 'MODULE_NOT_FOUND' })
assert.throws(() => require(${JSON.stringify(PACKAGE + '/prometheus')}), expected)
import(${JSON.stringify(PACKAGE + '/prometheus')}).then(
  () => assert.fail('import succeeded without prom-client'),
  (err) => {
    assert.throws(() => { throw err }, expected)
    // the root entry does not need it
    assert.equal(typeof require(${JSON.stringify(PACKAGE)}).middleware, 'function')
    console.log('ok')
  }
)
`

const NEWRELIC_MISSING_SCRIPT = `'use strict'
// newrelic is not installed: the subpath says so on require and on import, with the fix.
const assert = require('node:assert/strict')
const expected = { name: 'TypeError', code: 'ERR_EBT_PEER_MISSING', message: /express-background-task\\/newrelic needs the package newrelic.*npm install newrelic/ }
assert.throws(() => require.resolve('newrelic'), { code: 'MODULE_NOT_FOUND' })
assert.throws(() => require(${JSON.stringify(PACKAGE + '/newrelic')}), expected)
import(${JSON.stringify(PACKAGE + '/newrelic')}).then(
  () => assert.fail('import succeeded without newrelic'),
  (err) => {
    assert.throws(() => { throw err }, expected)
    console.log('ok')
  }
)
`

const PROMETHEUS_SCRIPT = `import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import * as ns from ${JSON.stringify(PACKAGE + '/prometheus')}
import { createPrometheusExporter } from ${JSON.stringify(PACKAGE + '/prometheus')}
import { backgroundTask } from ${JSON.stringify(PACKAGE)}

const require = createRequire(import.meta.url)
const cjs = require(${JSON.stringify(PACKAGE + '/prometheus')})
const promClient = require('prom-client')
// one instance for both loaders
assert.equal(createPrometheusExporter, cjs.createPrometheusExporter)
assert.deepEqual(Object.keys(ns).filter((key) => key !== 'default').sort(), Object.keys(cjs).sort())
assert.ok(import.meta.resolve(${JSON.stringify(PACKAGE + '/prometheus')}).endsWith('/node_modules/${PACKAGE}/dist/prometheus/index.mjs'))
const registry = new promClient.Registry()
const exporter = createPrometheusExporter({ registry })
backgroundTask('packed', () => undefined)
assert.match(await registry.metrics(), /^background_transaction_duration_seconds_count\\{name="OtherTransaction\\/Nodejs\\/packed"\\} 1$/m)
assert.throws(() => cjs.createPrometheusExporter({ registry }), { code: 'ERR_EBT_ALREADY_REGISTERED' })
exporter.close()
console.log('ok')
`

const PEER_MISSING_CJS = `'use strict'
const assert = require('node:assert/strict')
assert.throws(() => require.resolve('@opentelemetry/api'), { code: 'MODULE_NOT_FOUND' })
const expected = { name: 'TypeError', code: 'ERR_EBT_PEER_MISSING', message: /express-background-task\\/opentelemetry needs the package @opentelemetry\\/api.*npm install @opentelemetry\\/api/ }
assert.throws(() => require(${JSON.stringify(PACKAGE + '/opentelemetry')}), expected)
// The root never loads an integration.
assert.equal(typeof require(${JSON.stringify(PACKAGE)}).middleware, 'function')
console.log('ok')
`

// A static import, as users write it. (A dynamic import() would do too, but Node 20 also reports a
// CommonJS module's evaluation error as uncaught after rejecting the import(), so it cannot be caught.)
const PEER_MISSING_ESM = `import ${JSON.stringify(PACKAGE + '/opentelemetry')}
console.log('imported without its peer')
`

const DASHBOARD_SCRIPT = `import assert from 'node:assert/strict'
import http from 'node:http'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import * as ns from ${JSON.stringify(PACKAGE + '/dashboard')}
import { dashboard } from ${JSON.stringify(PACKAGE + '/dashboard')}
import { backgroundTask } from ${JSON.stringify(PACKAGE)}

const require = createRequire(import.meta.url)
const cjs = require(${JSON.stringify(PACKAGE + '/dashboard')})
// one instance for both loaders, no peer needed (express is not installed here)
assert.equal(dashboard, cjs.dashboard)
assert.deepEqual(Object.keys(ns).filter((key) => key !== 'default').sort(), Object.keys(cjs).sort())
assert.ok(import.meta.resolve(${JSON.stringify(PACKAGE + '/dashboard')}).endsWith('/node_modules/${PACKAGE}/dist/dashboard/index.mjs'))
const dash = dashboard()
const server = http.createServer(dash).listen(0, '127.0.0.1')
await once(server, 'listening')
const base = 'http://127.0.0.1:' + server.address().port
// the page and the files it refers to are in the tarball
const page = await (await fetch(base + '/')).text()
assert.match(page, /<script src="\\/dashboard\\.js" defer>/)
for (const [file, type] of [['/dashboard.js', /^text\\/javascript/], ['/dashboard.css', /^text\\/css/]]) {
  const res = await fetch(base + file)
  assert.equal(res.status, 200, file)
  assert.match(res.headers.get('content-type'), type)
  assert.ok((await res.text()).length > 1000, file)
}
backgroundTask('packed', () => undefined)
assert.equal(dash.view(1, Date.now() + 1000).background.count, 1)
dash.close()
server.close()
console.log('ok')
`

describe('packed tarball', { timeout: TIMEOUT_MS }, () => {
  let work
  let project
  let packed

  before(async () => {
    assert.ok(fs.existsSync(path.join(ROOT, 'dist', 'index.js')), 'run `npm run build` first')
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'ebt-package-'))
    // --ignore-scripts: dist/ is already built; `prepare` would rebuild it under the feet of
    // test files running in parallel.
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], ROOT)
    packed = JSON.parse(stdout)[0]
    project = path.join(work, 'project')
    fs.mkdirSync(project)
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'ebt-consumer', version: '1.0.0', private: true }))
    await run('npm', [
      'install', '--no-audit', '--no-fund', '--prefer-offline', '--no-package-lock', '--ignore-scripts',
      '--prefix', project, path.join(work, packed.filename)
    ], project)
  })

  after(() => {
    if (work !== undefined) fs.rmSync(work, { recursive: true, force: true })
  })

  it('holds the built entries and the README, not the sources or the tests', () => {
    const files = packed.files.map((file) => file.path)
    for (const file of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/index.d.mts',
      'dist/prometheus/index.js', 'dist/prometheus/index.mjs', 'dist/prometheus/index.d.ts', 'dist/prometheus/index.d.mts',
      'dist/newrelic/index.js', 'dist/newrelic/index.mjs', 'dist/newrelic/index.d.ts', 'dist/newrelic/index.d.mts',
      'dist/dashboard/index.js', 'dist/dashboard/index.mjs', 'dist/dashboard/index.d.ts', 'dist/dashboard/index.d.mts',
      'dist/dashboard/assets/index.html', 'dist/dashboard/assets/dashboard.js', 'dist/dashboard/assets/dashboard.css']) {
      assert.ok(files.includes(file), `${file} missing from the tarball`)
    }
    const stray = files.filter((file) => /^(lib|test|bench|examples|node_modules|\.tmp)\//.test(file) || file.endsWith('.tsbuildinfo'))
    assert.deepEqual(stray, [])
    assert.equal(packed.name, PACKAGE)
  })

  it('installs its dependencies and not express (an optional peer)', () => {
    const modules = path.join(project, 'node_modules')
    assert.ok(fs.existsSync(path.join(modules, PACKAGE, 'dist', 'index.mjs')))
    assert.ok(fs.existsSync(path.join(modules, 'debug', 'package.json')))
    assert.ok(fs.existsSync(path.join(modules, 'cls-hooked', 'package.json')))
    assert.equal(fs.existsSync(path.join(modules, 'express')), false)
  })

  it('require() gives every public export with the right type', async () => {
    await runScript(project, 'check.cjs', CJS_SCRIPT)
  })

  it('import gives the same exports, the very objects require() gives', async () => {
    await runScript(project, 'check.mjs', ESM_SCRIPT)
  })

  it('records a request through a plain http server, with no express installed', async () => {
    await runScript(project, 'http.cjs', HTTP_SCRIPT)
  })

  it('ships express-background-task/opentelemetry, which throws ERR_EBT_PEER_MISSING from require and import without its peer', async () => {
    const files = packed.files.map((file) => file.path)
    for (const file of ['dist/opentelemetry/index.js', 'dist/opentelemetry/index.mjs', 'dist/opentelemetry/index.d.ts', 'dist/opentelemetry/index.d.mts']) {
      assert.ok(files.includes(file), `${file} missing from the tarball`)
    }
    await runScript(project, 'otel-missing.cjs', PEER_MISSING_CJS)
    fs.writeFileSync(path.join(project, 'otel-missing.mjs'), PEER_MISSING_ESM)
    const failed = await run(process.execPath, ['otel-missing.mjs'], project).then(() => undefined, (err) => err)
    assert.ok(failed !== undefined, 'the import did not throw')
    assert.match(failed.message, /code: 'ERR_EBT_PEER_MISSING'/)
    assert.match(failed.message, /npm install @opentelemetry\/api/)
  })

  it('its typings compile for CommonJS and ESM consumers without the dev dependencies', async () => {
    // Only @types/node is given (from this repo), as a user would have it; nothing else of ours.
    fs.writeFileSync(path.join(project, 'consumer.ts'), TYPES_CJS)
    fs.writeFileSync(path.join(project, 'consumer.mts'), TYPES_ESM)
    fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'Node16',
        moduleResolution: 'Node16',
        strict: true,
        noEmit: true,
        esModuleInterop: true,
        skipLibCheck: false,
        typeRoots: [path.join(ROOT, 'node_modules', '@types')],
        types: ['node']
      },
      files: ['consumer.ts', 'consumer.mts']
    }))
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
    // Fails (rejects with tsc's output) on any type error; lists the files it compiled.
    const { stdout } = await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--listFiles'], project)
    const listed = stdout.split('\n').map((file) => path.relative(project, file))
    const ours = path.join('node_modules', PACKAGE, 'dist')
    assert.ok(listed.includes(path.join(ours, 'index.d.ts')), 'require resolves dist/index.d.ts')
    assert.ok(listed.includes(path.join(ours, 'index.d.mts')), 'import resolves dist/index.d.mts')
  })

  it('express-background-task/dashboard works from import and require without express, and serves its page and files from the tarball', async () => {
    await runScript(project, 'dashboard.mjs', DASHBOARD_SCRIPT)
  })

  it('express-background-task/prometheus without prom-client (an optional peer) fails require and import with ERR_EBT_PEER_MISSING', async () => {
    assert.equal(fs.existsSync(path.join(project, 'node_modules', 'prom-client')), false)
    await runScript(project, 'peer-missing.cjs', PEER_MISSING_SCRIPT)
  })

  it('express-background-task/newrelic without newrelic (an optional peer) fails require and import with ERR_EBT_PEER_MISSING', async () => {
    await runScript(project, 'newrelic-missing.cjs', NEWRELIC_MISSING_SCRIPT)
  })

  // Last: it installs prom-client into the project.
  it('express-background-task/prometheus with prom-client installed works from import and require, one instance', async () => {
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--no-package-lock', '--ignore-scripts', '--prefix', project, 'prom-client@^15'], project)
    await runScript(project, 'prometheus.mjs', PROMETHEUS_SCRIPT)
  })
})

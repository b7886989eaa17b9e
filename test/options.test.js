'use strict'
// SPEC "AgentOptions" and PITFALLS 15: every misconfiguration is a TypeError with a code and a
// message that says what was received; app.use(middleware) uncalled; listeners; ErrorCode;
// SPEC "Debugging": the debug namespaces, read from a child process's stderr.
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { execFile } = require('node:child_process')
const { inspect } = require('node:util')
const { ebt, FRAMEWORKS, ENGINES, recordingAgent, listen, request } = require('./helpers')

const { ErrorCode } = ebt

/** Assert `fn` throws a TypeError with `code`, whose message contains every string in `mentions`. */
function assertOptionError(fn, code, ...mentions) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof TypeError, `${err} is a TypeError`)
    assert.equal(err.name, 'TypeError')
    assert.equal(err.code, code)
    assert.ok(Object.values(ErrorCode).includes(err.code), `${err.code} is listed in ErrorCode`)
    for (const mention of mentions) assert.ok(err.message.includes(mention), `${JSON.stringify(err.message)} mentions ${mention}`)
    return true
  })
}

describe('ErrorCode', () => {
  it('lists every code the package throws', () => {
    assert.deepEqual(Object.values(ErrorCode).sort(), [
      'ERR_EBT_ALREADY_REGISTERED',
      'ERR_EBT_APDEX_T',
      'ERR_EBT_CONTEXT',
      'ERR_EBT_LISTENER',
      'ERR_EBT_MIDDLEWARE_NOT_CALLED',
      'ERR_EBT_OPTIONS_TYPE',
      'ERR_EBT_PEER_MISSING',
      'ERR_EBT_TASK_FUNCTION',
      'ERR_EBT_TASK_GROUP',
      'ERR_EBT_TASK_NAME',
      'ERR_EBT_UNKNOWN_OPTION'
    ])
    for (const [key, code] of Object.entries(ErrorCode)) assert.match(code, /^ERR_EBT_[A-Z_]+$/, key)
  })
})

describe('createAgent options', () => {
  it('accepts no options, an empty object, and every valid value', () => {
    assert.ok(ebt.createAgent())
    assert.ok(ebt.createAgent(undefined))
    assert.ok(ebt.createAgent({}))
    for (const apdexT of [0.5, 0.001, 2, 10, Number.MIN_VALUE]) assert.ok(ebt.createAgent({ apdexT }))
    for (const engine of ENGINES) assert.ok(ebt.createAgent(engine.options()))
    assert.ok(ebt.createAgent({ context: 'async-local-storage', apdexT: 1 }))
  })

  it('accepts a cls-hooked namespace the app already uses as context', () => {
    const cls = require('cls-hooked')
    const namespace = cls.getNamespace('ebt-options-test') ?? cls.createNamespace('ebt-options-test')
    assert.ok(ebt.createAgent({ context: namespace }))
  })

  it('accepts an Object.create(null) options object', () => {
    const options = Object.create(null)
    options.apdexT = 1
    options.context = 'cls-hooked'
    assert.ok(ebt.createAgent(options))
    const typo = Object.create(null)
    typo.apdext = 1
    assertOptionError(() => ebt.createAgent(typo), ErrorCode.UNKNOWN_OPTION, 'apdext')
  })

  it('counts a key whose value is undefined as absent, also an unknown key', () => {
    assert.ok(ebt.createAgent({ apdexT: undefined, context: undefined }))
    assert.ok(ebt.createAgent({ apdext: undefined }))
    assert.ok(ebt.createAgent({ apdexT: undefined, somethingElse: undefined }))
  })

  it('an unknown key (a typo like apdext) throws ERR_EBT_UNKNOWN_OPTION naming it and the allowed keys', () => {
    assertOptionError(() => ebt.createAgent({ apdext: 0.5 }), ErrorCode.UNKNOWN_OPTION, "'apdext'", 'apdexT', 'context')
    assertOptionError(() => ebt.createAgent({ apdexT: 0.5, Context: 'cls-hooked' }), ErrorCode.UNKNOWN_OPTION, "'Context'")
    assertOptionError(() => ebt.createAgent({ metrics: null }), ErrorCode.UNKNOWN_OPTION, "'metrics'")
  })

  it('a wrong apdexT throws ERR_EBT_APDEX_T showing the value received', () => {
    const bad = ['0.5', 0, -0, -1, NaN, Infinity, -Infinity, null, true, {}, [], 1n]
    for (const apdexT of bad) {
      assertOptionError(() => ebt.createAgent({ apdexT }), ErrorCode.APDEX_T, inspect(apdexT))
    }
  })

  it("a bad context throws ERR_EBT_CONTEXT showing the value received ('als', 42, an object that is not a namespace)", () => {
    for (const context of ['als', 'ALS', 'cls', 'Cls-Hooked', 'AsyncLocalStorage', '', 42, true, null]) {
      assertOptionError(() => ebt.createAgent({ context }), ErrorCode.CONTEXT, inspect(context), "'async-local-storage'", "'cls-hooked'")
    }
    assertOptionError(() => ebt.createAgent({ context: {} }), ErrorCode.CONTEXT, 'namespace', 'createContext', 'enter')
    assertOptionError(() => ebt.createAgent({ context: { get() {}, set() {} } }), ErrorCode.CONTEXT, 'createContext', 'enter', 'exit')
    assertOptionError(() => ebt.createAgent({ context: new Map() }), ErrorCode.CONTEXT, 'namespace')
    assertOptionError(() => ebt.createAgent({ context: () => {} }), ErrorCode.CONTEXT)
  })

  it('options that are not an object throw ERR_EBT_OPTIONS_TYPE (a string, an array, null, a number)', () => {
    for (const options of ['cls-hooked', ['apdexT'], null, 42, true]) {
      assertOptionError(() => ebt.createAgent(options), ErrorCode.OPTIONS_TYPE, inspect(options))
    }
  })

  it('the first error wins and nothing is half-built: a later valid call still works', () => {
    assertOptionError(() => ebt.createAgent({ apdexT: -1, context: 'als' }), ErrorCode.CONTEXT)
    const { agent } = recordingAgent({})
    assert.equal(typeof agent.middleware(), 'function')
  })
})

describe('middleware options', () => {
  for (const [label, factory] of [
    ['agent.middleware', (options) => ebt.createAgent().middleware(options)],
    ['top-level middleware', (options) => ebt.middleware(options)]
  ]) {
    it(`${label}: none, {} and undefined values are accepted; an unknown key or a non-object throws`, () => {
      assert.equal(typeof factory(), 'function')
      assert.equal(typeof factory({}), 'function')
      assert.equal(typeof factory(Object.create(null)), 'function')
      assert.equal(typeof factory({ foo: undefined }), 'function')
      assertOptionError(() => factory({ foo: 1 }), ErrorCode.UNKNOWN_OPTION, "'foo'")
      assertOptionError(() => factory({ apdexT: 1 }), ErrorCode.UNKNOWN_OPTION, "'apdexT'")
      assertOptionError(() => factory('fast'), ErrorCode.OPTIONS_TYPE, "'fast'")
      assertOptionError(() => factory(null), ErrorCode.OPTIONS_TYPE, 'null')
      assertOptionError(() => factory([]), ErrorCode.OPTIONS_TYPE)
    })
  }
})

describe('a factory mounted without calling it', () => {
  const agent = ebt.createAgent()
  const MOUNTS = {
    'app.use(middleware)': (app) => app.use(ebt.middleware),
    'app.use(agent.middleware)': (app) => app.use(agent.middleware),
    'app.use(errorHandler)': (app) => app.use(ebt.errorHandler),
    'app.use(agent.errorHandler)': (app) => app.use(agent.errorHandler)
  }
  for (const framework of Object.keys(FRAMEWORKS)) {
    for (const [mount, use] of Object.entries(MOUNTS)) {
      it(`${mount} (${framework}): every request gets ERR_EBT_MIDDLEWARE_NOT_CALLED`, async () => {
        const app = FRAMEWORKS[framework]()()
        const errors = []
        use(app)
        app.use(function route(req, res) {
          res.end('reached the route')
        })
        app.use(function captureErrors(err, req, res, next) { // eslint-disable-line no-unused-vars
          errors.push(err)
          res.statusCode = 500
          res.end(err.code)
        })
        const server = await listen(app)
        try {
          const first = await request(server.url('/'))
          const second = await request(server.url('/again'))
          assert.deepEqual([first.status, first.body], [500, ErrorCode.MIDDLEWARE_NOT_CALLED])
          assert.deepEqual([second.status, second.body], [500, ErrorCode.MIDDLEWARE_NOT_CALLED])
        } finally {
          await server.close()
        }
        assert.equal(errors.length, 2)
        assert.ok(errors[0] instanceof TypeError)
        const factory = mount.includes('errorHandler') ? 'errorHandler' : 'middleware'
        assert.match(errors[0].message, new RegExp(`app\\.use\\(${factory}\\(\\)\\)`))
      })
    }
  }

  it('a direct call with something that is not a request is an options error, not this one', () => {
    assertOptionError(() => ebt.middleware({ method: 'GET' }), ErrorCode.UNKNOWN_OPTION, "'method'")
  })
})

describe('onTransactionEnd', () => {
  it('a listener that is not a function throws ERR_EBT_LISTENER showing what was received', () => {
    const agent = ebt.createAgent()
    for (const listener of ['x', undefined, null, 42, {}, Promise.resolve()]) {
      assertOptionError(() => agent.onTransactionEnd(listener), ErrorCode.LISTENER, inspect(listener))
      assertOptionError(() => ebt.onTransactionEnd(listener), ErrorCode.LISTENER)
    }
    assertOptionError(() => ebt.onTransactionEnd('x'), ErrorCode.LISTENER, "'x'")
  })

  it('returns an unsubscribe function; a throwing listener breaks neither the request nor the other listeners', async () => {
    const agent = ebt.createAgent()
    const seen = []
    const unsubscribeThrowing = agent.onTransactionEnd(() => {
      throw new Error('listener fails')
    })
    const unsubscribe = agent.onTransactionEnd((record) => seen.push(record.name))
    agent.backgroundTask('one', () => {})
    unsubscribeThrowing()
    unsubscribeThrowing() // idempotent
    agent.backgroundTask('two', () => {})
    unsubscribe()
    agent.backgroundTask('three', () => {})
    assert.deepEqual(seen, ['OtherTransaction/Nodejs/one', 'OtherTransaction/Nodejs/two'])
  })
})

/** Run the debug fixture in a child process with `env`; resolves { code, stdout, stderr }. */
function runDebugFixture(env) {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(__dirname, 'fixtures', 'debug-app.js')],
      { env: { ...process.env, DEBUG_COLORS: 'no', ...env }, timeout: 20_000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr })
    )
  })
}

describe('debug namespaces (SPEC "Debugging")', () => {
  it('DEBUG=express-background-task:* logs under express-background-task:agent, :context, :flags and :transaction', async () => {
    const { code, stdout, stderr } = await runDebugFixture({ DEBUG: 'express-background-task:*' })
    assert.equal(code, 0, stderr)
    assert.equal(stdout, 'done\n')
    const lines = stderr.split('\n').filter(Boolean)
    const namespaces = new Set(lines.map((line) => /express-background-task:[a-z]+/.exec(line)?.[0]).filter(Boolean))
    for (const namespace of ['agent', 'context', 'flags', 'transaction']) {
      assert.ok(namespaces.has(`express-background-task:${namespace}`), `${namespace} in:\n${stderr}`)
    }
    const has = (namespace, pattern) =>
      lines.some((line) => line.includes(`express-background-task:${namespace} `) && pattern.test(line))
    assert.ok(has('agent', /create agent with engine async-local-storage/), stderr)
    assert.ok(has('agent', /create agent with engine cls-hooked/), stderr)
    assert.ok(has('agent', /start transaction/), stderr)
    assert.ok(has('agent', /catch a throwing transaction listener/), stderr)
    assert.ok(has('flags', /unparseable value 'yes'/), stderr)
    assert.ok(has('transaction', /unparseable flag 'maybe'/), stderr)
    assert.ok(has('transaction', /no active transaction/), stderr)
    assert.ok(!/\/users\/7/.test(stderr), 'raw URLs are not logged')
  })

  it('one namespace can be chosen alone, and nothing is logged without DEBUG', async () => {
    const flagsOnly = await runDebugFixture({ DEBUG: 'express-background-task:flags' })
    assert.equal(flagsOnly.code, 0, flagsOnly.stderr)
    const lines = flagsOnly.stderr.split('\n').filter(Boolean)
    assert.ok(lines.length > 0)
    for (const line of lines) assert.match(line, /express-background-task:flags /)
    const quiet = await runDebugFixture({ DEBUG: '' })
    assert.equal(quiet.code, 0, quiet.stderr)
    assert.equal(quiet.stderr, '')
  })
})

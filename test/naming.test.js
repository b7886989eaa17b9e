'use strict'
// Transaction naming (SPEC "Naming", PITFALLS 11-14): route templates joined through mounted routers
// and sub-apps on Express 5 and 4, also when an error handler answers; RegExp/array/splat routes;
// (not found); middleware mounts; case-insensitive matching; Express 4 mount templates read back
// from their regexps; late loading; Connect mount paths; custom names; background prefixes.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { execFile } = require('node:child_process')
const fc = require('fast-check')
const { ebt, FRAMEWORKS, ENGINES, recordingAgent, listen, request } = require('./helpers')

const EXPRESS_MAJORS = ['express 5', 'express 4']
const FIXTURES = path.join(__dirname, 'fixtures')
const LATE_LOAD_FIXTURE = path.join(FIXTURES, 'naming-late-load.js')

/** Sends requests one at a time and returns the record each one ended with. */
function namer(server, waitFor) {
  let sent = 0
  return async function recordOf(url, { method = 'GET', body, headers } = {}) {
    const index = sent++
    const response = await request(server.url(url), { method, body, headers })
    const records = await waitFor(index + 1)
    return { ...records[index], response }
  }
}

/** The record is named `<prefix>/<group>/<METHOD>/<template>`, and its `path` and `method` say the same. */
function assertNamed(record, method, template, { group = 'Expressjs', prefix = 'WebTransaction' } = {}) {
  assert.equal(record.name, `${prefix}/${group}/${method}/${template}`)
  assert.equal(record.path, template)
  assert.equal(record.method, method)
}

/** Every template in this file is free of digits, and every URL value carries some: none may reach a name. */
function assertNoDigits(record) {
  assert.doesNotMatch(record.name, /\d/, `a raw URL value reached the name ${record.name}`)
  assert.doesNotMatch(record.path, /\d/)
}

const ok = (label) =>
  function answer(req, res) {
    res.send(label)
  }
function throws() {
  throw new Error('boom')
}
function forwards(req, res, next) {
  next(new Error('forwarded'))
}

/** One Express app with every naming situation, for the Express major `framework`. */
function buildExpressApp(framework, agent) {
  const express = FRAMEWORKS[framework]()
  const major5 = framework === 'express 5'
  const app = express()
  app.set('env', 'test')
  app.use(agent.middleware())

  // URL rewrites on the way, at the top and inside a mounted router
  app.use(function rewrite(req, res, next) {
    if (req.url.startsWith('/old-users/')) req.url = `/users/${req.url.slice('/old-users/'.length)}`
    next()
  })
  app.use(function health(req, res, next) {
    if (req.path === '/health') res.send('healthy')
    else next()
  })
  app.get('/', ok('root'))
  app.get('/users/:id', ok('user'))
  app.post('/users/:id', ok('created'))
  app.put('/users/:id', ok('replaced'))
  app.delete('/users/:id', ok('deleted'))
  // one route, several methods: its requests share one route object, which keeps names by method
  app
    .route('/orders/:id')
    .get(ok('order'))
    .post(function postOrder(req, res) {
      if (req.query.later === 'yes') agent.setBackgroundTask()
      res.send('posted')
    })

  // app.use('/org/:orgId', router) + router.get('/users/:id'), with mergeParams
  const org = express.Router({ mergeParams: true })
  org.use(function rewriteInRouter(req, res, next) {
    if (req.url.startsWith('/u/')) req.url = `/users/${req.url.slice('/u/'.length)}`
    next()
  })
  org.get('/', ok('org'))
  org.get('/users/:id', (req, res) => res.json(req.params))
  org.get('/boom/:id', throws)
  org.get('/forward/:id', forwards)
  if (major5) {
    org.get('/async/:id', async () => {
      await new Promise((resolve) => setImmediate(resolve))
      throw new Error('rejected')
    })
  }
  app.use('/org/:orgId', org)

  // three deep, with an error handler inside the innermost router
  const a = express.Router({ mergeParams: true })
  const b = express.Router({ mergeParams: true })
  const c = express.Router({ mergeParams: true })
  c.get('/z/:z', (req, res) => res.json(req.params))
  c.get('/boom/:z', throws)
  c.use(function innerErrors(err, req, res, next) {
    res.status(502).send('inner error')
  })
  b.use('/c/:cid', c)
  a.use('/b/:bid', b)
  app.use('/a/:aid', a)

  // the same router at the root and at two paths
  const shared = express.Router()
  shared.get('/items/:item', ok('item'))
  app.use(shared)
  app.use('/legacy', shared)
  app.use('/tenants/:tenant', shared)

  // a sub-app, with a router inside it; and a sub-app inside a router
  const sub = express()
  sub.get('/items/:item', ok('sub item'))
  sub.get('/boom/:item', throws)
  const inner = express.Router()
  inner.get('/deep/:d', ok('sub deep'))
  inner.get('/boom/:d', throws)
  sub.use('/inner/:x', inner)
  app.use('/sub/:tenant', sub)
  const holder = express.Router()
  const held = express()
  held.get('/deep/:d', ok('held deep'))
  held.get('/forward/:d', forwards)
  holder.use('/app/:appId', held)
  app.use('/holder/:h', holder)

  // req.route.path as an array, a RegExp, a splat; a splat route inside a router
  app.get(['/alias/:a', '/other-alias/:b'], ok('alias'))
  app.get(/^\/regex\/(\d+)$/, ok('regex'))
  app.get(major5 ? '/splat/*splat' : '/splat/*', ok('splat'))
  const catchAll = express.Router()
  catchAll.get(major5 ? '/*rest' : '*', ok('caught'))
  app.use('/catch', catchAll)

  // 404 inside a mounted router
  const known = express.Router()
  known.get('/known', ok('known'))
  app.use('/nf/:x', known)

  // answered by a middleware without a route
  app.use('/api', ok('api'))
  app.use('/static', express.static(FIXTURES))
  app.use('/files/:bucket', ok('file'))
  app.use('/failing/:f', forwards)

  // mount templates: Express 4 keeps only regexps for these
  const mounts = major5
    ? {
        '/Opt{/:part}': ['/opt', '/OPT/p1/rest2'],
        '/dl/:name.:ext': ['/dl/report3.json/x4'],
        '/MiXeD/Case-Lit': ['/mixed/case-lit/q5', '/MIXED/CASE-LIT'],
        '/pre-:code': ['/pre-c6/x'],
        '/Tree/*path': ['/tree/a7/b8']
      }
    : {
        '/Opt/:part?': ['/opt', '/OPT/p1/rest2'],
        '/dl/:name.:ext': ['/dl/report3.json/x4'],
        '/MiXeD/Case-Lit': ['/mixed/case-lit/q5', '/MIXED/CASE-LIT'],
        '/pre-:code': ['/pre-c6/x'],
        '/Tree/:path*': ['/tree/a7/b8'],
        '/Num/:n(\\d+)': ['/NUM/42/x']
      }
  for (const template of Object.keys(mounts)) app.use(template, ok(template))
  app.use(/\/rx\/\d+/, ok('regexp mount'))
  app.use(['/Arr-A/:x', '/Arr-B/:y'], ok('array mount'))
  app.use(['/Mix-A/:m', /\/mix-rx\/\d+/], ok('mixed array mount'))
  const arraySub = express()
  arraySub.get('/x/:id', ok('array sub-app'))
  app.use(['/Sa-One/:p', '/Sa-Two/:q'], arraySub)
  // Express 4 turns `/(` into a group it does not capture, which the regexp reader does not know: probed
  if (!major5) app.use('/Probed/:code/(\\d+)', ok('probed'))

  app.use(function appErrors(err, req, res, next) {
    res.status(500).send('error')
  })
  return { app, mounts }
}

for (const engine of ENGINES) {
  for (const framework of EXPRESS_MAJORS) {
    const major5 = framework === 'express 5'

    describe(`naming on ${framework} (${engine.name})`, () => {
      let server
      let recordOf
      let mounts

      before(async () => {
        const { agent, waitFor } = recordingAgent(engine.options())
        const built = buildExpressApp(framework, agent)
        mounts = built.mounts
        server = await listen(built.app)
        recordOf = namer(server, waitFor)
      })
      after(() => server.close())

      it('names a route by its template; ids and query strings never reach the name (PITFALLS 11)', async () => {
        const record = await recordOf('/users/12345?token=678&page=9')
        assertNamed(record, 'GET', '/users/:id')
        assertNoDigits(record)
        assertNamed(await recordOf('/'), 'GET', '/')
      })

      it('records the request method, also POST, PUT and DELETE', async () => {
        for (const method of ['POST', 'PUT', 'DELETE']) {
          const record = await recordOf('/users/42', { method, body: method === 'DELETE' ? undefined : '{}' })
          assert.equal(record.statusCode, 200)
          assertNamed(record, method, '/users/:id')
        }
      })

      it('names each request of a route with several methods by its own method and type, in any order', async () => {
        const background = { prefix: 'OtherTransaction' }
        for (const [method, query, options] of [
          ['GET', '', {}],
          ['POST', '', {}],
          ['POST', '?later=yes', background],
          ['GET', '', {}],
          ['POST', '?later=yes', background],
          ['POST', '', {}],
          ['GET', '', {}]
        ]) {
          const record = await recordOf(`/orders/3${query}`, { method, body: method === 'POST' ? '{}' : undefined })
          assert.equal(record.statusCode, 200)
          assertNamed(record, method, '/orders/:id', options)
        }
      })

      it('joins the templates of mounted routers; mergeParams changes nothing (PITFALLS 11, 14)', async () => {
        const record = await recordOf('/org/77/users/88')
        assert.deepEqual(JSON.parse(record.response.body), { orgId: '77', id: '88' })
        assertNamed(record, 'GET', '/org/:orgId/users/:id')
        assertNoDigits(record)
        // a route '/' inside a router mounted at /org/:orgId is the mount itself
        assertNamed(await recordOf('/org/77'), 'GET', '/org/:orgId')
        assertNamed(await recordOf('/org/77/'), 'GET', '/org/:orgId')
      })

      it('names by the route that answered when a middleware rewrote the URL', async () => {
        assertNamed(await recordOf('/old-users/5'), 'GET', '/users/:id')
        const record = await recordOf('/org/6/u/7')
        assert.deepEqual(JSON.parse(record.response.body), { orgId: '6', id: '7' })
        assertNamed(record, 'GET', '/org/:orgId/users/:id')
      })

      it('joins routers nested three deep (PITFALLS 14)', async () => {
        const record = await recordOf('/a/1/b/2/c/3/z/4')
        assert.deepEqual(JSON.parse(record.response.body), { aid: '1', bid: '2', cid: '3', z: '4' })
        assertNamed(record, 'GET', '/a/:aid/b/:bid/c/:cid/z/:z')
        assertNoDigits(record)
      })

      it('names the same router by the mount each request went through (PITFALLS 14)', async () => {
        assertNamed(await recordOf('/items/5'), 'GET', '/items/:item')
        assertNamed(await recordOf('/legacy/items/5'), 'GET', '/legacy/items/:item')
        assertNamed(await recordOf('/tenants/acme9/items/5'), 'GET', '/tenants/:tenant/items/:item')
        assertNamed(await recordOf('/legacy/items/6'), 'GET', '/legacy/items/:item')
      })

      it('joins the mount of a sub-app, of a router inside it, and of a sub-app inside a router', async () => {
        assertNamed(await recordOf('/sub/t1/items/2'), 'GET', '/sub/:tenant/items/:item')
        assertNamed(await recordOf('/sub/t1/inner/x2/deep/3'), 'GET', '/sub/:tenant/inner/:x/deep/:d')
        assertNamed(await recordOf('/holder/h1/app/a2/deep/3'), 'GET', '/holder/:h/app/:appId/deep/:d')
      })

      it('keeps the full joined template when an error handler answers (PITFALLS 12)', async () => {
        const cases = [
          ['/org/12/boom/34', 500, '/org/:orgId/boom/:id'], // sync throw, app-level handler
          ['/org/12/forward/34', 500, '/org/:orgId/forward/:id'], // next(err)
          ['/a/1/b/2/c/3/boom/4', 502, '/a/:aid/b/:bid/c/:cid/boom/:z'], // handler inside the innermost router
          ['/sub/t1/boom/2', 500, '/sub/:tenant/boom/:item'], // thrown in a sub-app, answered by its parent
          ['/holder/h1/app/a2/forward/3', 500, '/holder/:h/app/:appId/forward/:d'] // sub-app inside a router
        ]
        if (major5) cases.push(['/org/12/async/34', 500, '/org/:orgId/async/:id']) // rejected async handler
        for (const [url, status, template] of cases) {
          const record = await recordOf(url)
          assert.equal(record.statusCode, status, url)
          assertNamed(record, 'GET', template)
          assertNoDigits(record)
        }
      })

      // Known limits of naming without patching Express: when an error handler outside
      // a sub-app answers, Express has already restored `req.app`, so routers inside that sub-app cannot
      // be walked; and nothing records which middleware without a route passed an error on.
      it('joins a router inside a sub-app when an error handler of the parent answers', { todo: 'the sub-app is out of reach once Express left it; named /sub/:tenant/boom/:d' }, async () => {
        const record = await recordOf('/sub/t1/inner/x2/boom/3')
        assert.equal(record.statusCode, 500)
        assertNoDigits(record)
        assertNamed(record, 'GET', '/sub/:tenant/inner/:x/boom/:d')
      })

      it('names by its mount a middleware without a route whose error an outer handler answers', { todo: 'nothing shows which middleware failed; named GET// after the error handler' }, async () => {
        const record = await recordOf('/failing/f1')
        assert.equal(record.statusCode, 500)
        assertNoDigits(record)
        assertNamed(record, 'GET', '/failing/:f')
      })

      it('names array, RegExp and splat routes (PITFALLS 13)', async () => {
        assertNamed(await recordOf('/alias/1'), 'GET', '/alias/:a,/other-alias/:b')
        assertNamed(await recordOf('/other-alias/2'), 'GET', '/alias/:a,/other-alias/:b')
        assertNamed(await recordOf('/regex/345'), 'GET', String(/^\/regex\/(\d+)$/))
        const splat = major5 ? '/splat/*splat' : '/splat/*'
        const record = await recordOf('/splat/1/2/3')
        assertNamed(record, 'GET', splat)
        assertNoDigits(record)
        assertNamed(await recordOf('/catch/any/9'), 'GET', major5 ? '/catch/*rest' : '/catch/*')
      })

      it('names an unmatched request (not found), at the top and inside a mounted router (PITFALLS 13)', async () => {
        for (const url of ['/nothing/here/1', '/nf/7/unknown', '/org/7/users']) {
          const record = await recordOf(url)
          assert.equal(record.statusCode, 404, url)
          assert.equal(record.name, 'WebTransaction/Expressjs/GET/(not found)')
          assert.equal(record.path, '(not found)')
        }
      })

      it('names a middleware that answered without a route by its mount template', async () => {
        // a root middleware
        const health = await recordOf('/health?probe=1')
        assert.equal(health.response.body, 'healthy')
        assertNamed(health, 'GET', '/')
        assertNamed(await recordOf('/api'), 'GET', '/api')
        assertNamed(await recordOf('/api/v2/things/3?x=4'), 'GET', '/api')
        const file = await recordOf('/static/naming-late-load.js')
        assert.equal(file.statusCode, 200)
        assert.match(file.response.body, /lateAgent/)
        assertNamed(file, 'GET', '/static')
        const record = await recordOf('/files/bucket7/key8')
        assertNamed(record, 'GET', '/files/:bucket')
        assertNoDigits(record)
      })

      it('names by the template as registered, whatever the URL casing', async () => {
        const record = await recordOf('/ORG/1/USERS/2')
        assert.equal(record.statusCode, 200)
        assertNamed(record, 'GET', '/org/:orgId/users/:id')
        assertNamed(await recordOf('/Legacy/ITEMS/3'), 'GET', '/legacy/items/:item')
        assertNamed(await recordOf('/SUB/t1/Items/2'), 'GET', '/sub/:tenant/items/:item')
      })

      it('names mounts with params, optional params, extensions, splats and mixed-case literals', async () => {
        for (const [template, urls] of Object.entries(mounts)) {
          for (const url of urls) {
            const record = await recordOf(url)
            assert.equal(record.response.body, template, url)
            assertNamed(record, 'GET', template)
            assertNoDigits(record)
          }
        }
      })

      it('names a RegExp mount by the RegExp and an array mount by its alternatives joined by `,`, as routes (issue 9)', async () => {
        const regexp = await recordOf('/rx/123/tail')
        assertNamed(regexp, 'GET', String(/\/rx\/\d+/))
        assertNoDigits(regexp)
        // one name whichever alternative matched, as New Relic names array mounts and as array routes are named
        for (const url of ['/arr-b/7', '/ARR-A/8/more']) {
          const record = await recordOf(url)
          assert.equal(record.response.body, 'array mount')
          assertNamed(record, 'GET', '/Arr-A/:x,/Arr-B/:y')
        }
        // strings and a RegExp in one array
        for (const url of ['/mix-a/1', '/mix-rx/23/x']) {
          const record = await recordOf(url)
          assert.equal(record.response.body, 'mixed array mount')
          assertNamed(record, 'GET', `/Mix-A/:m,${String(/\/mix-rx\/\d+/)}`)
          assertNoDigits(record)
        }
        // a sub-app mounted at an array
        for (const url of ['/sa-one/p1/x/2', '/SA-TWO/q3/x/4']) {
          const record = await recordOf(url)
          assert.equal(record.response.body, 'array sub-app')
          assertNamed(record, 'GET', '/Sa-One/:p,/Sa-Two/:q/x/:id')
          assertNoDigits(record)
        }
      })

      if (!major5) {
        it('infers a mount template it cannot read by probing, spelled as registered', async () => {
          const record = await recordOf('/PROBED/b5/66/rest')
          assert.equal(record.response.body, 'probed')
          assertNamed(record, 'GET', '/Probed/:code/*')
          assertNoDigits(record)
          // and again, with other values and casing
          assertNamed(await recordOf('/probed/a1/2'), 'GET', '/Probed/:code/*')
        })
      }

      it('never lets a random id, value or query string reach a name (property)', async () => {
        const value = fc
          .tuple(fc.stringMatching(/^[A-Za-z_~-]{0,6}$/), fc.integer({ min: 0, max: 1e9 }))
          .map(([letters, number]) => `${letters}${number}`)
        const casing = (literal) => fc.constantFrom(literal, literal.toUpperCase(), literal[0].toUpperCase() + literal.slice(1))
        const shapes = [
          [(v) => `/org/${v[0]}/users/${v[1]}`, '/org/:orgId/users/:id'],
          [(v) => `/a/${v[0]}/b/${v[1]}/c/${v[2]}/z/${v[0]}`, '/a/:aid/b/:bid/c/:cid/z/:z'],
          [(v) => `/tenants/${v[0]}/items/${v[1]}`, '/tenants/:tenant/items/:item'],
          [(v) => `/sub/${v[2]}/inner/${v[1]}/deep/${v[0]}`, '/sub/:tenant/inner/:x/deep/:d'],
          [(v) => `/files/${v[1]}/${v[2]}`, '/files/:bucket']
        ]
        await fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 0, max: shapes.length - 1 }),
            fc.array(value, { minLength: 3, maxLength: 3 }),
            fc.option(fc.tuple(value, value), { nil: undefined }),
            casing('org'),
            async (shape, values, query, org) => {
              const [build, template] = shapes[shape]
              let url = build(values.map(encodeURIComponent))
              if (shape === 0) url = url.replace('/org/', `/${org}/`)
              if (query !== undefined) url += `?q=${encodeURIComponent(query[0])}&n=${encodeURIComponent(query[1])}`
              const record = await recordOf(url)
              assert.equal(record.statusCode, 200, url)
              assertNamed(record, 'GET', template)
              assertNoDigits(record)
            }
          ),
          { numRuns: 25 }
        )
      })
    })
  }

  describe(`naming of Express 4 mount templates, read from their regexps (${engine.name})`, () => {
    it('reads back random templates with params, optional params, .:ext and mixed-case literals (property)', async () => {
      const express = FRAMEWORKS['express 4']()
      const { agent, waitFor } = recordingAgent(engine.options())
      let current = null
      // a plain dispatcher in front, so each run can mount a new app
      const server = await listen((req, res) => current(req, res))
      const recordOf = namer(server, waitFor)
      const literal = fc.stringMatching(/^[A-Za-z][A-Za-z_-]{0,6}$/)
      const valueOf = fc.tuple(fc.stringMatching(/^[a-z]{0,3}$/), fc.nat(9999)).map(([letters, n]) => `${letters}${n}`)
      const part = fc.oneof(
        literal.map((text) => ({ kind: 'literal', text })),
        fc.constant({ kind: 'param' }),
        fc.constant({ kind: 'ext' })
      )
      try {
        await fc.assert(
          fc.asyncProperty(
            fc.array(part, { minLength: 1, maxLength: 4 }),
            fc.boolean(),
            fc.boolean(),
            fc.array(valueOf, { minLength: 10, maxLength: 10 }),
            fc.array(fc.boolean(), { minLength: 10, maxLength: 10 }),
            fc.boolean(),
            async (parts, optionalLast, optionalGiven, values, upper, tail) => {
              let template = ''
              let url = ''
              let key = 0
              const name = () => `p${String.fromCharCode(97 + key++)}`
              parts.forEach((piece, i) => {
                if (piece.kind === 'literal') {
                  template += `/${piece.text}`
                  url += `/${upper[i] ? piece.text.toUpperCase() : piece.text.toLowerCase()}`
                } else if (piece.kind === 'param') {
                  template += `/:${name()}`
                  url += `/${values[i]}`
                } else {
                  template += `/:${name()}.:${name()}`
                  url += `/${values[i]}.${values[i + 5]}`
                }
              })
              if (optionalLast) {
                template += `/:${name()}?`
                if (optionalGiven) url += `/${values[9]}`
              }
              if (tail) url += '/rest1'
              const app = express()
              app.use(agent.middleware())
              app.use(template, ok('mounted'))
              current = app
              const record = await recordOf(url)
              assert.equal(record.response.body, 'mounted', `${template} ${url}`)
              assertNamed(record, 'GET', template)
              assertNoDigits(record)
            }
          ),
          { numRuns: 30 }
        )
      } finally {
        await server.close()
      }
    })

    it('probes a template it cannot read, and still names by the template, not the URL', async () => {
      const express = FRAMEWORKS['express 4']()
      const { agent, waitFor } = recordingAgent(engine.options())
      const app = express()
      app.use(agent.middleware())
      app.use('/Shop/:shop/Code/(\\d+)', ok('probed'))
      // path-to-regexp 0.1 closes a custom pattern at its first `)`: the template it makes is not the one written
      app.use('/Broken/:code((a|b)\\d)', ok('broken'))
      app.use('/Lit-Only/:id(\\d+)', ok('custom'))
      const server = await listen(app)
      const recordOf = namer(server, waitFor)
      try {
        for (const url of ['/shop/s1/code/2', '/SHOP/s3/CODE/4/more5']) {
          const record = await recordOf(url)
          assert.equal(record.response.body, 'probed')
          assertNamed(record, 'GET', '/Shop/:shop/Code/*')
          assertNoDigits(record)
        }
        const broken = await recordOf('/BROKEN/b6')
        assert.equal(broken.response.body, 'broken')
        assertNamed(broken, 'GET', '/Broken/*')
        assertNoDigits(broken)
        // a custom parameter pattern is read back as written
        assertNamed(await recordOf('/lit-only/77'), 'GET', '/Lit-Only/:id(\\d+)')
      } finally {
        await server.close()
      }
    })
  })

  for (const framework of EXPRESS_MAJORS) {
    const major5 = framework === 'express 5'
    const splat = major5 ? '/*splat' : '*'

    describe(`naming what answered, as Express matched it (issue 9, ${framework}, ${engine.name})`, () => {
      let server
      let recordOf

      before(async () => {
        const express = FRAMEWORKS[framework]()
        const { agent, waitFor } = recordingAgent(engine.options())
        const app = express()
        app.use(agent.middleware())
        // a locale prefix taken off req.url before the mounts (PITFALLS 21)
        app.use(function locale(req, res, next) {
          req.url = req.url.replace(/^\/(en|de)(?=\/|$)/, '')
          next()
        })
        // answers, then calls next(): later layers that match never answered
        app.use(function cache(req, res, next) {
          if (req.path.startsWith('/cached/')) res.send('cached')
          next()
        })
        app.use('/test', function answerThenNext(req, res, next) {
          res.send('ok')
          next()
        })
        app.use('/cache', function answerThenNext(req, res, next) {
          res.send('from cache')
          next()
        })
        function unlessAnswered(req, res) {
          if (!res.headersSent) res.send('late')
        }
        app.get('/cached/:key', unlessAnswered)
        app.get('/cache/:key', unlessAnswered)
        app.get('/test/:id', unlessAnswered)

        const api = express.Router()
        api.get('/users/:id', ok('api user'))
        const admin = express.Router()
        admin.get('/users/:id', ok('admin user'))
        app.use('/api', api)
        app.use('/admin', admin)
        const sub = express()
        sub.get('/items/:item', ok('sub item'))
        app.use('/sub/:tenant', sub)
        app.use('/files/:bucket', ok('file'))

        // a router used as a route handler, inside a mount and at the top
        const inner = express.Router()
        inner.get('/test', ok('inner test'))
        inner.get('/deep/:id', ok('inner deep'))
        inner.use('/mw/:m', ok('inner middleware'))
        const outer = express.Router()
        outer.get(splat, inner)
        app.use('/outer', outer)
        const top = express.Router()
        top.get('/top-test/:id', ok('top test'))
        app.get(splat, top)
        server = await listen(app)
        recordOf = namer(server, waitFor)
      })
      after(() => server.close())

      it('names a middleware that answered and then called next() by its mount, not by a later route (item 2)', async () => {
        for (const url of ['/test', '/test/1', '/test?x=2']) {
          const record = await recordOf(url)
          assert.equal(record.response.body, 'ok', url)
          assertNamed(record, 'GET', '/test')
        }
        // a later route matched but never answered: New Relic names it by the middleware too (checked in naming-instrumented)
        const cache = await recordOf('/cache/k1')
        assert.equal(cache.response.body, 'from cache')
        assertNamed(cache, 'GET', '/cache')
        const root = await recordOf('/cached/k2')
        assert.equal(root.response.body, 'cached')
        assertNamed(root, 'GET', '/')
      })

      it('names by the path Express matched after req.url was rewritten before the mounts (item 3)', async () => {
        const cases = [
          ['/en/api/users/2', 'api user', '/api/users/:id'],
          ['/de/admin/users/3', 'admin user', '/admin/users/:id'],
          ['/api/users/4', 'api user', '/api/users/:id'],
          ['/en/sub/t5/items/6', 'sub item', '/sub/:tenant/items/:item'],
          ['/de/files/b7/k8', 'file', '/files/:bucket']
        ]
        for (const [url, body, template] of cases) {
          const record = await recordOf(url)
          assert.equal(record.response.body, body, url)
          assertNamed(record, 'GET', template)
          assertNoDigits(record)
        }
      })

      it('keeps the mount of a router used as a route handler (item 5)', async () => {
        const cases = [
          ['/outer/test', 'inner test', '/outer/test'],
          ['/outer/deep/1', 'inner deep', '/outer/deep/:id'],
          ['/top-test/3', 'top test', '/top-test/:id']
        ]
        for (const [url, body, template] of cases) {
          const record = await recordOf(url)
          assert.equal(record.response.body, body, url)
          assertNamed(record, 'GET', template)
          assertNoDigits(record)
        }
      })


      // Known limit: `req.route` stays the outer route while the inner router's middleware answers
      it('names a middleware inside a router used as a route handler by its mount', { todo: `named by the outer route, /outer${major5 ? '/*splat' : '/*'}` }, async () => {
        const record = await recordOf('/outer/mw/m1/rest')
        assert.equal(record.response.body, 'inner middleware')
        assertNamed(record, 'GET', '/outer/mw/:m')
      })
    })

    it(`never throws into the response when naming meets a hostile request or odd layers (item 6, ${framework}, ${engine.name})`, async () => {
      const express = FRAMEWORKS[framework]()
      const { agent, waitFor } = recordingAgent(engine.options())
      const app = express()
      app.use(agent.middleware())
      // a layer Express skips (it never matches) whose handle cannot be read: a walk that reaches it fails
      const odd = { name: 'odd', route: undefined, match: () => false, get handle() { throw new Error('odd layer') } }
      app.use(function first(req, res, next) {
        next()
      })
      ;(major5 ? app.router : app._router).stack.push(odd)
      const router = express.Router()
      router.get('/hostile/:id', function hostileUrl(req, res) {
        Object.defineProperty(req, 'url', { configurable: true, get() { throw new Error('hostile url') } })
        res.send('hostile')
      })
      router.get('/late/:id', ok('late'))
      app.use('/r/:r', router)
      app.use('/after/:a', ok('after'))
      const server = await listen(app)
      const recordOf = namer(server, waitFor)
      try {
        const cases = [
          ['/r/1/hostile/2', 'hostile', '(unknown)'],
          ['/r/3/late/4', 'late', '(unknown)'],
          // a middleware's mount is found without reading the odd layer's handle
          ['/after/5/x', 'after', '/after/:a']
        ]
        for (const [url, body, template] of cases) {
          const record = await recordOf(url)
          assert.equal(record.statusCode, 200, url)
          assert.equal(record.response.body, body)
          assertNamed(record, 'GET', template)
        }
      } finally {
        await server.close()
      }
    })
  }

  describe(`naming when the package comes after the routes, or sits in a sub-app (${engine.name})`, () => {
    for (const framework of EXPRESS_MAJORS) {
      it(`names routes registered before the agent existed (${framework})`, async () => {
        const express = FRAMEWORKS[framework]()
        // every route exists before any agent does
        const routes = express.Router()
        const org = express.Router({ mergeParams: true })
        org.get('/users/:id', ok('user'))
        routes.use('/org/:orgId', org)
        routes.get('/items/:item', ok('item'))
        const app = express()
        let late = null
        app.use(function placeholder(req, res, next) {
          late(req, res, next)
        })
        app.get('/direct/:id', ok('direct'))
        app.use('/files/:bucket', ok('file'))
        app.use(routes)

        // the agents are made after: one app mounts its middleware before a router of the old routes,
        // the other reaches it through the placeholder registered first
        const early = recordingAgent(engine.options())
        const placeheld = recordingAgent(engine.options())
        late = placeheld.agent.middleware()
        const mountedFirst = express()
        mountedFirst.use(early.agent.middleware())
        mountedFirst.use(routes)
        const first = await listen(mountedFirst)
        const second = await listen(app)
        try {
          const recordOfFirst = namer(first, early.waitFor)
          assertNamed(await recordOfFirst('/org/1/users/2'), 'GET', '/org/:orgId/users/:id')
          assertNamed(await recordOfFirst('/items/3'), 'GET', '/items/:item')
          const recordOfSecond = namer(second, placeheld.waitFor)
          assertNamed(await recordOfSecond('/direct/4'), 'GET', '/direct/:id')
          assertNamed(await recordOfSecond('/files/b5/k6'), 'GET', '/files/:bucket')
          assertNamed(await recordOfSecond('/ORG/7/users/8'), 'GET', '/org/:orgId/users/:id')
        } finally {
          await first.close()
          await second.close()
        }
      })
    }

    for (const framework of EXPRESS_MAJORS) {
      it(`names requests when the middleware is mounted only inside a sub-app (${framework})`, async () => {
        const express = FRAMEWORKS[framework]()
        const { agent, waitFor } = recordingAgent(engine.options())
        const app = express()
        const sub = express()
        sub.use(agent.middleware())
        const router = express.Router()
        router.get('/items/:item', ok('item'))
        sub.use('/shelf/:shelf', router)
        sub.use('/raw/:kind', ok('raw'))
        app.use('/sub/:tenant', sub)
        const server = await listen(app)
        const recordOf = namer(server, waitFor)
        try {
          assertNamed(await recordOf('/sub/t1/shelf/s2/items/3'), 'GET', '/sub/:tenant/shelf/:shelf/items/:item')
          assertNamed(await recordOf('/sub/t1/raw/k2/x'), 'GET', '/sub/:tenant/raw/:kind')
        } finally {
          await server.close()
        }
      })
    }

    it('names routes of apps built before the package was required (child process)', async () => {
      const stdout = await new Promise((resolve, reject) => {
        execFile(process.execPath, [LATE_LOAD_FIXTURE, engine.name], { cwd: path.join(__dirname, '..') }, (err, out, errOut) => {
          if (err) reject(new Error(`${err.message}\n${errOut}`))
          else resolve(out)
        })
      })
      const records = stdout.trim().split('\n').map((line) => JSON.parse(line))
      const expected = [
        'WebTransaction/Expressjs/GET//org/:orgId/users/:id',
        'WebTransaction/Expressjs/GET//org/:orgId/boom/:id',
        'WebTransaction/Expressjs/GET//items/:item',
        'WebTransaction/Expressjs/GET//files/:bucket',
        'WebTransaction/Expressjs/GET/(not found)'
      ]
      assert.deepEqual(records, [
        ...expected.map((name) => ({ framework: 'express 5', name, path: name.split('GET/')[1] })),
        ...expected.map((name) => ({ framework: 'express 4', name, path: name.split('GET/')[1] }))
      ])
    })
  })

  describe(`naming on connect (${engine.name})`, () => {
    let server
    let recordOf

    before(async () => {
      const connect = FRAMEWORKS.connect()
      const { agent, waitFor } = recordingAgent(engine.options())
      const app = connect()
      app.use(agent.middleware())
      app.use('/Api/V', (req, res) => res.end('api'))
      app.use('/Stream', (req, res) => {
        ebt.setBackgroundTask()
        res.end('stream')
      })
      app.use('/pass', (req, res, next) => next())
      app.use((req, res, next) => {
        if (req.url === '/') res.end('root')
        else next()
      })
      server = await listen(app)
      recordOf = namer(server, waitFor)
    })
    after(() => server.close())

    it('names by the mount path as registered, whatever the URL casing', async () => {
      for (const url of ['/Api/V', '/api/v', '/API/V/users/42?x=1', '/api/V/', '/aPi/v.json']) {
        const record = await recordOf(url)
        assert.equal(record.response.body, 'api', url)
        assertNamed(record, 'GET', '/Api/V', { group: 'Connect' })
        assertNoDigits(record)
      }
      assertNamed(await recordOf('/api/v/7', { method: 'POST', body: 'x' }), 'POST', '/Api/V', { group: 'Connect' })
    })

    it('names a root middleware GET// and an unanswered request (not found)', async () => {
      assertNamed(await recordOf('/'), 'GET', '/', { group: 'Connect' })
      for (const url of ['/missing/7', '/pass/8?y=9']) {
        const record = await recordOf(url)
        assert.equal(record.statusCode, 404)
        assert.equal(record.name, 'WebTransaction/Connect/GET/(not found)')
        assert.equal(record.path, '(not found)')
      }
    })

    it('never throws into the response when naming meets a hostile request or odd layers (issue 9 item 6)', async () => {
      const connect = FRAMEWORKS.connect()
      const { agent, waitFor } = recordingAgent(engine.options())
      const app = connect()
      app.use(agent.middleware())
      app.use('/Hostile', (req, res) => {
        Object.defineProperty(req, 'url', { configurable: true, get() { throw new Error('hostile url') } })
        res.end('hostile')
      })
      const inner = connect()
      inner.use('/In', (req, res) => res.end('inner'))
      app.use('/Outer', inner)
      // layers Connect never reaches (everything before them answers), pushed by hand
      app.stack.push(null, { route: 42, handle() {} })
      const server = await listen(app)
      const recordOfOdd = namer(server, waitFor)
      try {
        const hostile = await recordOfOdd('/hostile/1')
        assert.equal(hostile.response.body, 'hostile')
        assertNamed(hostile, 'GET', '(unknown)', { group: 'Connect' })
        // a nested app's mount is not in the outer stack: the lookup passes the odd layers
        const nested = await recordOfOdd('/Outer/In/2')
        assert.equal(nested.response.body, 'inner')
        assertNamed(nested, 'GET', '/Outer/In', { group: 'Connect' })
        // a layer whose route cannot be read: naming fails, the response does not
        Object.defineProperty(app.stack, app.stack.length, { enumerable: true, configurable: true, get() { throw new Error('odd layer') } })
        const failing = await recordOfOdd('/Outer/In/3')
        assert.equal(failing.response.body, 'inner')
        assertNamed(failing, 'GET', '(unknown)', { group: 'Connect' })
      } finally {
        await server.close()
      }
    })

    it('keeps group and name when reclassified', async () => {
      const record = await recordOf('/stream/12')
      assert.equal(record.type, 'background')
      assertNamed(record, 'GET', '/Stream', { group: 'Connect', prefix: 'OtherTransaction' })
    })

    it('never lets a random value or URL casing reach a name (property)', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('/Api/V', '/api/v', '/API/V', '/aPI/v'),
          fc.array(fc.nat(99999), { maxLength: 3 }),
          fc.option(fc.nat(99999), { nil: undefined }),
          async (mount, rest, query) => {
            const url = mount + rest.map((n) => `/${n}`).join('') + (query === undefined ? '' : `?q=${query}`)
            const record = await recordOf(url)
            assertNamed(record, 'GET', '/Api/V', { group: 'Connect' })
          }
        ),
        { numRuns: 20 }
      )
    })
  })

  describe(`custom names and reclassified names (${engine.name})`, () => {
    for (const framework of Object.keys(FRAMEWORKS)) {
      const connect = framework === 'connect'
      const group = connect ? 'Connect' : 'Expressjs'

      it(`setName gives {Web|Other}Transaction/Custom/<name>; reclassifying keeps the name (${framework})`, async () => {
        const lib = FRAMEWORKS[framework]()
        const { agent, waitFor } = recordingAgent(engine.options())
        const app = lib()
        app.use(agent.middleware())
        const named = (background) =>
          function checkout(req, res) {
            const tx = ebt.getTransaction(req)
            tx.setName('checkout')
            if (background) assert.equal(ebt.setBackgroundTask(), true)
            assert.equal(tx.name, `${background ? 'Other' : 'Web'}Transaction/Custom/checkout`)
            res.end('ok')
          }
        function reclassified(req, res) {
          req.newrelic = { setBackgroundTask: 'on' }
          res.end('events')
        }
        function backAndForth(req, res) {
          ebt.setBackgroundTask()
          ebt.getTransaction(req).setBackgroundTask(false)
          res.end('web again')
        }
        if (connect) {
          app.use('/Checkout', named(false))
          app.use('/Background-Checkout', named(true))
          app.use('/Events', reclassified)
          app.use('/Web-Again', backAndForth)
        } else {
          const router = lib.Router()
          router.post('/checkout/:cart', named(false))
          router.post('/background-checkout/:cart', named(true))
          router.get('/events/:channel', reclassified)
          router.get('/web-again/:id', backAndForth)
          app.use('/shop/:shopId', router)
        }
        const server = await listen(app)
        const recordOf = namer(server, waitFor)
        try {
          const prefix = connect ? '' : '/shop/1'
          const post = connect ? {} : { method: 'POST', body: 'x' }
          const web = await recordOf(`${prefix}/checkout/2`, post)
          assert.equal(web.type, 'web')
          assert.equal(web.name, 'WebTransaction/Custom/checkout')
          assert.equal(web.method, connect ? 'GET' : 'POST')
          // the record's path stays the route template under a custom name
          assert.equal(web.path, connect ? '/Checkout' : '/shop/:shopId/checkout/:cart')
          const other = await recordOf(`${prefix}/background-checkout/4`, post)
          assert.equal(other.type, 'background')
          assert.equal(other.name, 'OtherTransaction/Custom/checkout')
          const events = await recordOf(`${prefix}/events/7?since=8`)
          assert.equal(events.type, 'background')
          assertNamed(events, 'GET', connect ? '/Events' : '/shop/:shopId/events/:channel', { group, prefix: 'OtherTransaction' })
          assertNoDigits(events)
          const again = await recordOf(`${prefix}/web-again/10`)
          assert.equal(again.type, 'web')
          assertNamed(again, 'GET', connect ? '/Web-Again' : '/shop/:shopId/web-again/:id', { group })
          assertNoDigits(again)
        } finally {
          await server.close()
        }
      })
    }

    it('names a top-level catch-all route by its template, with a leading slash', async () => {
      for (const framework of EXPRESS_MAJORS) {
        const express = FRAMEWORKS[framework]()
        const { agent, waitFor } = recordingAgent(engine.options())
        const app = express()
        app.use(agent.middleware())
        app.get('/known/:id', ok('known'))
        const template = framework === 'express 5' ? '/*splat' : '*'
        app.get(template, (req, res) => res.status(404).send('catch-all'))
        const server = await listen(app)
        const recordOf = namer(server, waitFor)
        try {
          assertNamed(await recordOf('/known/1'), 'GET', '/known/:id')
          const record = await recordOf('/anything/2?x=3')
          assert.equal(record.statusCode, 404)
          assertNamed(record, 'GET', framework === 'express 5' ? '/*splat' : '/*')
          assertNoDigits(record)
        } finally {
          await server.close()
        }
      }
    })
  })
}

'use strict'
// SPEC "The req.newrelic flags" (PITFALLS 15): every way of setting each flag, on Express 5,
// Express 4 and Connect, with both context engines; last write wins between flags and the helper;
// value parsing against a reference parser (fast-check); junk never throws and is reported.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fc = require('fast-check')
const { ebt, FRAMEWORKS, ENGINES, delay } = require('./helpers')
const { startScenarioApp } = require('./fixtures/scenario-app')
const { captureDebug } = require('./fixtures/capture-debug')

const FLAG_NAMES = ['setBackgroundTask', 'ignoreTransaction', 'suppressApdexMetric']

/** The reference parser the package must agree with: SPEC "Values". */
function referenceParse(value) {
  if (value === true || value === false) return value
  if (typeof value === 'number') {
    if (value === 1) return true
    if (value === 0) return false
    return undefined
  }
  if (typeof value === 'string') {
    const lower = value.toLowerCase()
    if (lower === 'on' || lower === 'true' || lower === '1') return true
    if (lower === 'off' || lower === 'false' || lower === '0') return false
  }
  return undefined
}

/** A few hops through the event loop, so a write happens "later in the chain". */
async function settle() {
  await Promise.resolve()
  await new Promise((resolve) => setImmediate(resolve))
  await delay(1)
}

const TRUE_FORMS = [true, 'on', 'true', '1', 'ON', 'True', 'TRUE', 'oN', 1]
const FALSE_FORMS = [false, 'off', 'false', '0', 'OFF', 'Off', 'FALSE', 'fAlSe', 0, -0]
const JUNK = [
  ['yes', 'yes'],
  ["''", ''],
  ['null', null],
  ['undefined', undefined],
  ['{}', {}],
  ['[]', []],
  ['[true]', [true]],
  ['2', 2],
  ['-1', -1],
  ['0.5', 0.5],
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['1n', 1n],
  ['Symbol()', Symbol('flag')],
  ['a function', function flag() { return true }],
  ["' true'", ' true'],
  ["'true '", 'true '],
  ["'no'", 'no'],
  ['new Boolean(true)', new Boolean(true)], // eslint-disable-line no-new-wrappers
  ['new String("on")', new String('on')], // eslint-disable-line no-new-wrappers
  ['a Date', new Date(0)],
  ['an object with toString', { toString: () => 'true' }],
  ['a proxy whose traps throw', new Proxy({}, { get() { throw new Error('trap') }, ownKeys() { throw new Error('trap') } })],
  ['an object whose inspect throws', { [Symbol.for('nodejs.util.inspect.custom')]() { throw new Error('inspect') } }]
]

/** Asserts the outcome of a flag set to true, from the records of the request. */
const EXPECT_ON = {
  setBackgroundTask(records) {
    assert.equal(records.length, 1)
    assert.equal(records[0].type, 'background')
    assert.match(records[0].name, /^OtherTransaction\/(Expressjs|Connect)\/GET\/\/t$/)
    assert.equal(records[0].suppressApdexMetric, false)
  },
  ignoreTransaction(records) {
    assert.deepEqual(records, [])
  },
  suppressApdexMetric(records) {
    assert.equal(records.length, 1)
    assert.equal(records[0].type, 'web')
    assert.equal(records[0].suppressApdexMetric, true)
  }
}

/** Asserts a request whose flags are off (or were turned back off). */
function expectPlainWeb(records) {
  assert.equal(records.length, 1)
  assert.equal(records[0].type, 'web')
  assert.match(records[0].name, /^WebTransaction\/(Expressjs|Connect)\/GET\/\/t$/)
  assert.equal(records[0].suppressApdexMetric, false)
}

/** Every way SPEC allows to set a flag; each returns a scenario that sets `flag` to `value`. */
const WAYS = {
  'in a proxy-facing layer before the app': (flag, value) => ({
    outer(req) {
      req.newrelic[flag] = value
    }
  }),
  'in an upstream middleware mounted before it': (flag, value) => ({
    before(req) {
      req.newrelic[flag] = value
    }
  }),
  'in the route, after awaits': (flag, value) => ({
    async handler(req) {
      await settle()
      req.newrelic[flag] = value
    }
  }),
  'in a timer callback and an EventEmitter listener of the request': (flag, value) => ({
    handler(req, res) {
      return new Promise((resolve) => {
        setTimeout(() => {
          res.once('custom', () => {
            req.newrelic[flag] = value
            resolve()
          })
          res.emit('custom')
        }, 1)
      })
    }
  }),
  'by replacing req.newrelic upstream': (flag, value) => ({
    before(req) {
      req.newrelic = { [flag]: value }
    }
  }),
  'by replacing req.newrelic in the route, after awaits': (flag, value) => ({
    async handler(req) {
      await settle()
      const flags = { [flag]: value }
      req.newrelic = flags
      assert.equal(req.newrelic, flags)
    }
  }),
  'through a kept reference to an object that replaced req.newrelic upstream': (flag, value) => {
    let kept
    return {
      before(req) {
        kept = {}
        req.newrelic = kept
      },
      async handler(req) {
        await settle()
        kept[flag] = value
        assert.equal(req.newrelic, kept)
        assert.equal(req.newrelic[flag], value)
      }
    }
  },
  'through a kept reference to an object that replaced req.newrelic in the route': (flag, value) => ({
    async handler(req) {
      const kept = { unrelated: 'kept' }
      req.newrelic = kept
      await settle()
      kept[flag] = value
      assert.equal(kept.unrelated, 'kept')
    }
  }),
  'by a frozen replacing object upstream': (flag, value) => ({
    before(req) {
      const frozen = Object.freeze({ [flag]: value })
      req.newrelic = frozen
      // the app's object reads back as itself, untouched
      assert.equal(req.newrelic, frozen)
      assert.deepEqual(JSON.parse(JSON.stringify(req.newrelic)), { [flag]: value })
    },
    async handler(req) {
      await settle()
      assert.equal(req.newrelic[flag], value)
    }
  }),
  'by a frozen replacing object in the route': (flag, value) => ({
    async handler(req) {
      await settle()
      const frozen = Object.freeze({ [flag]: value })
      req.newrelic = frozen
      assert.equal(req.newrelic, frozen)
      assert.equal(req.newrelic[flag], value)
    }
  }),
  'by a sealed replacing object upstream': (flag, value) => ({
    before(req) {
      req.newrelic = Object.seal({ [flag]: value })
    },
    async handler(req) {
      await settle()
      assert.equal(req.newrelic[flag], value)
    }
  }),
  'by a non-extensible replacing object in the route, then a write through it': (flag, value) => ({
    async handler(req) {
      const kept = Object.preventExtensions({ [flag]: false })
      req.newrelic = kept
      await settle()
      kept[flag] = value // a plain data write: must not throw, and is harmless
      assert.equal(kept[flag], value)
      // A non-extensible object cannot be observed; writing to req.newrelic itself still counts.
      req.newrelic[flag] = value
      assert.equal(req.newrelic[flag], value)
    }
  }),
  'by a class instance replacing req.newrelic': (flag, value) => ({
    async handler(req) {
      class Flags {}
      const flags = new Flags()
      flags[flag] = value
      req.newrelic = flags
      await settle()
      assert.ok(req.newrelic instanceof Flags)
    }
  })
}

for (const engine of ENGINES) {
  for (const framework of Object.keys(FRAMEWORKS)) {
    describe(`req.newrelic flags (${framework}, ${engine.name})`, () => {
      let app
      before(async () => {
        app = await startScenarioApp(framework, engine.options())
      })
      after(() => app.close())

      it('leaves a request untouched when no flag is set', async () => {
        expectPlainWeb(await app.run({}))
        expectPlainWeb(await app.run({ handler: (req) => void req.newrelic }))
      })

      for (const flag of FLAG_NAMES) {
        describe(flag, () => {
          for (const [way, scenario] of Object.entries(WAYS)) {
            it(`is honoured when set ${way}`, async () => {
              EXPECT_ON[flag](await app.run(scenario(flag, true)))
            })
          }

          it('is turned back off by a later write of false (upstream true, route false)', async () => {
            expectPlainWeb(
              await app.run({
                before(req) {
                  req.newrelic[flag] = true
                },
                async handler(req) {
                  await settle()
                  req.newrelic[flag] = 'off'
                }
              })
            )
          })

          it('is turned back off through a kept reference after a replacement', async () => {
            expectPlainWeb(
              await app.run({
                async handler(req) {
                  const kept = { [flag]: '1' }
                  req.newrelic = kept
                  await settle()
                  kept[flag] = 0
                  assert.equal(req.newrelic[flag], 0)
                }
              })
            )
          })

          it('takes the latest of several writes made before the middleware', async () => {
            EXPECT_ON[flag](
              await app.run({
                outer(req) {
                  req.newrelic[flag] = false
                },
                before(req) {
                  req.newrelic = { [flag]: 'TRUE' }
                }
              })
            )
            expectPlainWeb(
              await app.run({
                outer(req) {
                  req.newrelic = { [flag]: 'on' }
                },
                before(req) {
                  req.newrelic[flag] = 'Off'
                }
              })
            )
          })

          it('does not count a key whose value is undefined in a replacing object', async () => {
            EXPECT_ON[flag](
              await app.run({
                before(req) {
                  req.newrelic[flag] = true
                },
                async handler(req) {
                  await settle()
                  req.newrelic = { [flag]: undefined }
                }
              })
            )
          })
        })
      }

      describe('ignoreTransaction', () => {
        it('makes the helper return false and getTransaction(req) undefined', async () => {
          const records = await app.run({
            async handler(req) {
              assert.ok(ebt.getTransaction(req))
              req.newrelic.ignoreTransaction = true
              assert.equal(ebt.getTransaction(req), undefined)
              assert.equal(ebt.getTransaction(), undefined)
              await settle()
              assert.equal(ebt.setBackgroundTask(), false)
              assert.equal(ebt.setBackgroundTask(false), false)
            }
          })
          assert.deepEqual(records, [])
        })

        it('records the request again once set back to false, with what happened meanwhile', async () => {
          const records = await app.run({
            before(req) {
              req.newrelic.ignoreTransaction = 'on'
            },
            async handler(req) {
              await settle()
              assert.equal(ebt.getTransaction(req), undefined)
              req.newrelic.ignoreTransaction = false
              assert.ok(ebt.getTransaction(req))
              assert.equal(ebt.setBackgroundTask(), true)
              req.newrelic.suppressApdexMetric = true
            }
          })
          assert.equal(records.length, 1)
          assert.equal(records[0].type, 'background')
          assert.equal(records[0].suppressApdexMetric, true)
        })

        it('is undone by a replacing object that says false', async () => {
          const records = await app.run({
            before(req) {
              req.newrelic.ignoreTransaction = true
            },
            handler(req) {
              req.newrelic = { ignoreTransaction: 'false' }
            }
          })
          expectPlainWeb(records)
        })
      })

      describe('between a flag and helper calls, the last one made wins', () => {
        const SEQUENCES = [
          ['flag true, then setBackgroundTask(false)', 'web', [['flag', true], ['helper', false]]],
          ['setBackgroundTask(true), then flag false', 'web', [['helper', true], ['flag', false]]],
          ['setBackgroundTask(false), then flag true', 'background', [['helper', false], ['flag', true]]],
          ['flag false, then setBackgroundTask()', 'background', [['flag', false], ['helper', undefined]]],
          ['flag true, helper(false), flag true again', 'background', [['flag', true], ['helper', false], ['flag', true]]],
          ['handle.setBackgroundTask(true), then flag "0"', 'web', [['handle', true], ['flag', '0']]],
          ['flag "1", then handle.setBackgroundTask(false)', 'web', [['flag', '1'], ['handle', false]]],
          ['helper(true), then a replacing object saying "off"', 'web', [['helper', true], ['replace', 'off']]],
          ['replacing object saying true, then helper(false)', 'web', [['replace', true], ['helper', false]]],
          ['helper(true), then a junk flag (changes nothing)', 'background', [['helper', true], ['flag', 'yes']]],
          ['flag true, then helper with a junk value (changes nothing)', 'background', [['flag', true], ['helper', 'nope']]]
        ]
        for (const [title, expected, steps] of SEQUENCES) {
          it(title, async () => {
            const records = await app.run({
              async handler(req) {
                for (const [kind, value] of steps) {
                  await settle()
                  if (kind === 'flag') req.newrelic.setBackgroundTask = value
                  else if (kind === 'replace') req.newrelic = { setBackgroundTask: value }
                  else if (kind === 'handle') ebt.getTransaction(req).setBackgroundTask(value)
                  else if (value === undefined) ebt.setBackgroundTask()
                  else ebt.setBackgroundTask(value)
                }
              }
            })
            assert.equal(records.length, 1)
            assert.equal(records[0].type, expected)
          })
        }

        it('a flag set upstream, then the helper in the route', async () => {
          const records = await app.run({
            before(req) {
              req.newrelic.setBackgroundTask = true
            },
            handler() {
              assert.equal(ebt.setBackgroundTask(false), true)
            }
          })
          expectPlainWeb(records)
        })

        it('the helper in the route, then a write through a reference kept from upstream', async () => {
          let kept
          const records = await app.run({
            before(req) {
              kept = { setBackgroundTask: false }
              req.newrelic = kept
            },
            async handler() {
              assert.equal(ebt.setBackgroundTask(false), true)
              await settle()
              kept.setBackgroundTask = 'On'
            }
          })
          assert.equal(records[0].type, 'background')
        })
      })

      describe('values', () => {
        it('accepts every true and false form, in any casing, through the flag and the helper', async () => {
          const records = await app.run({
            async handler(req) {
              const tx = ebt.getTransaction(req)
              for (const value of TRUE_FORMS) {
                ebt.setBackgroundTask(false)
                req.newrelic.setBackgroundTask = value
                assert.equal(tx.type, 'background', `flag ${String(value)}`)
                ebt.setBackgroundTask(false)
                assert.equal(ebt.setBackgroundTask(value), true, `helper ${String(value)}`)
                assert.equal(tx.type, 'background', `helper ${String(value)}`)
                req.newrelic.suppressApdexMetric = false
                req.newrelic.suppressApdexMetric = value
                await settle()
              }
              for (const value of FALSE_FORMS) {
                ebt.setBackgroundTask(true)
                req.newrelic.setBackgroundTask = value
                assert.equal(tx.type, 'web', `flag ${String(value)}`)
                ebt.setBackgroundTask(true)
                assert.equal(ebt.setBackgroundTask(value), true, `helper ${String(value)}`)
                assert.equal(tx.type, 'web', `helper ${String(value)}`)
                req.newrelic.ignoreTransaction = true
                req.newrelic.ignoreTransaction = value
                assert.equal(ebt.getTransaction(req), tx, `ignoreTransaction ${String(value)}`)
              }
              req.newrelic.setBackgroundTask = 'TRUE'
            }
          })
          assert.equal(records.length, 1)
          assert.equal(records[0].type, 'background')
          assert.equal(records[0].suppressApdexMetric, true)
        })

        it('ignores junk: changes nothing, never throws, never breaks the request, and says so in debug', async () => {
          const capture = captureDebug()
          let records
          try {
            records = await app.run({
              before(req) {
                req.newrelic.ignoreTransaction = 'yes' // junk before the middleware too
              },
              async handler(req) {
                const tx = ebt.getTransaction(req)
                assert.ok(tx, 'junk ignoreTransaction upstream did not ignore the request')
                for (const background of [true, false]) {
                  ebt.setBackgroundTask(background)
                  const expected = background ? 'background' : 'web'
                  for (const [label, value] of JUNK) {
                    req.newrelic.setBackgroundTask = value
                    assert.equal(tx.type, expected, `flag ${label}`)
                    if (value !== undefined) {
                      // setBackgroundTask(undefined) is setBackgroundTask(): the default, true.
                      assert.equal(ebt.setBackgroundTask(value), false, `helper ${label}`)
                      assert.equal(tx.setBackgroundTask(value), false, `handle ${label}`)
                    }
                    assert.equal(tx.type, expected, `helper ${label}`)
                    req.newrelic.ignoreTransaction = value
                    assert.equal(ebt.getTransaction(req), tx, `ignoreTransaction ${label}`)
                    req.newrelic.suppressApdexMetric = value
                    req.newrelic = { setBackgroundTask: value, ignoreTransaction: value, suppressApdexMetric: value }
                    assert.equal(tx.type, expected, `replacing object ${label}`)
                    assert.equal(ebt.getTransaction(req), tx, `replacing object ${label}`)
                  }
                  await settle()
                }
                const hostile = new Proxy({}, { get() { throw new Error('trap') }, defineProperty() { throw new Error('trap') } })
                for (const value of ['junk', 42, null, 'on', true, () => {}, hostile]) {
                  req.newrelic = value // holds no flags: changes nothing, and reads back as itself like any property
                  assert.equal(req.newrelic, value)
                  req.newrelic = {}
                  req.newrelic.suppressApdexMetric = 'maybe'
                }
                assert.equal(tx.type, 'web')
              }
            })
          } finally {
            capture.stop()
          }
          assert.equal(records.length, 1)
          assert.equal(records[0].type, 'web')
          assert.equal(records[0].suppressApdexMetric, false)
          const flagLines = capture.matching('flags', 'unparseable')
          assert.ok(flagLines.some((line) => line.includes('ignoreTransaction') && line.includes("'yes'")), flagLines.join('\n'))
          assert.ok(flagLines.some((line) => line.includes('setBackgroundTask') && line.includes('NaN')))
          assert.ok(flagLines.some((line) => line.includes('suppressApdexMetric') && line.includes('Symbol(flag)')))
          assert.ok(capture.matching('transaction', 'unparseable').length > 0, 'the helper reports an unparseable flag')
          assert.ok(capture.matching('flags', 'req.newrelic').some((line) => line.includes("'junk'")))
        })

        it('agrees with the reference parser for arbitrary values, flags and helper calls interleaved (property)', async () => {
          const valueArb = fc.oneof(
            fc.anything(),
            fc.constantFrom(...TRUE_FORMS, ...FALSE_FORMS, ...JUNK.map(([, value]) => value)),
            fc.mixedCase(fc.constantFrom('on', 'off', 'true', 'false', '1', '0', 'yes', 'no')),
            fc.integer({ min: -2, max: 3 }),
            fc.double(),
            fc.string({ maxLength: 6 })
          )
          const commandArb = fc.oneof(
            fc.record({ kind: fc.constant('flag'), name: fc.constantFrom(...FLAG_NAMES), value: valueArb }),
            fc.record({ kind: fc.constant('helper'), value: valueArb }),
            fc.record({ kind: fc.constant('handle'), value: valueArb }),
            fc.record({ kind: fc.constant('replace'), value: fc.dictionary(fc.constantFrom(...FLAG_NAMES), valueArb) }),
            fc.record({ kind: fc.constant('await'), value: fc.constantFrom('microtask', 'immediate', 'timer') })
          )
          const capture = captureDebug('express-background-task:flags')
          try {
            await fc.assert(
              fc.asyncProperty(fc.array(commandArb, { maxLength: 12 }), async (commands) => {
                const model = { background: false, ignored: false, suppress: false }
                // junk written through the package's own object is reported once per write; junk on an
                // app's object is reported when the object is read again and the value changed, so at most once
                let junkWrites = 0
                let junkOnAppObject = 0
                let appObject = false
                const linesBefore = capture.matching('flags', 'unparseable').length
                function write(name, value) {
                  const parsed = referenceParse(value)
                  if (parsed === undefined) {
                    if (appObject) junkOnAppObject++
                    else junkWrites++
                  }
                  else if (name === 'setBackgroundTask') model.background = parsed
                  else if (name === 'ignoreTransaction') model.ignored = parsed
                  else model.suppress = parsed
                }
                const records = await app.run({
                  async handler(req) {
                    const tx = ebt.getTransaction(req)
                    for (const { kind, name, value } of commands) {
                      if (kind === 'flag') {
                        req.newrelic[name] = value
                        assert.ok(Object.is(req.newrelic[name], value), 'req.newrelic reads back what was written')
                        write(name, value)
                      } else if (kind === 'replace') {
                        req.newrelic = value
                        assert.equal(req.newrelic, value)
                        appObject = true
                        for (const flag of FLAG_NAMES) if (value[flag] !== undefined) write(flag, value[flag])
                      } else if (kind === 'helper' || kind === 'handle') {
                        const parsed = value === undefined ? true : referenceParse(value) // undefined: the default
                        const expected = !model.ignored && parsed !== undefined
                        const applied = kind === 'helper' ? ebt.setBackgroundTask(value) : tx.setBackgroundTask(value)
                        assert.equal(applied, expected)
                        if (expected) model.background = parsed
                      } else if (value === 'microtask') await Promise.resolve()
                      else if (value === 'immediate') await new Promise((resolve) => setImmediate(resolve))
                      else await delay(0)
                      assert.equal(ebt.getTransaction(req), model.ignored ? undefined : tx)
                      assert.equal(tx.type, model.background ? 'background' : 'web')
                    }
                  }
                })
                if (model.ignored) assert.deepEqual(records, [])
                else {
                  assert.equal(records.length, 1)
                  assert.equal(records[0].type, model.background ? 'background' : 'web')
                  assert.equal(records[0].suppressApdexMetric, model.suppress)
                }
                const reported = capture.matching('flags', 'unparseable').length - linesBefore
                assert.ok(reported >= junkWrites && reported <= junkWrites + junkOnAppObject, `${reported} lines for ${junkWrites} + up to ${junkOnAppObject}`)
              }),
              { numRuns: 25 }
            )
          } finally {
            capture.stop()
          }
        })
      })

      describe('reading req.newrelic', () => {
        it('reads back what was written, and JSON.stringify works', async () => {
          const symbol = Symbol('s')
          await app.run({
            before(req) {
              assert.equal(typeof req.newrelic, 'object')
              assert.equal(req.newrelic.setBackgroundTask, undefined)
              assert.equal(JSON.stringify(req.newrelic), '{}')
              req.newrelic.setBackgroundTask = 'On'
            },
            async handler(req) {
              assert.equal(req.newrelic, req.newrelic, 'the same object on every read')
              assert.equal(req.newrelic.setBackgroundTask, 'On')
              req.newrelic.suppressApdexMetric = 1
              req.newrelic.ignoreTransaction = symbol
              assert.equal(req.newrelic.ignoreTransaction, symbol)
              assert.deepEqual(JSON.parse(JSON.stringify(req.newrelic)), { setBackgroundTask: 'On', suppressApdexMetric: 1 })
              req.newrelic.ignoreTransaction = false
              const replacing = { setBackgroundTask: 'off', other: 'x' }
              req.newrelic = replacing
              assert.equal(req.newrelic, replacing)
              assert.equal(req.newrelic.setBackgroundTask, 'off')
              assert.deepEqual(JSON.parse(JSON.stringify(req.newrelic)), { setBackgroundTask: 'off', other: 'x' })
              req.newrelic.ignoreTransaction = '0'
              assert.equal(replacing.ignoreTransaction, '0')
              assert.equal(replacing.other, 'x')
              const copy = { ...replacing }
              assert.deepEqual(Object.getOwnPropertySymbols(copy), [], 'a copy carries no link to the request')
              assert.equal(copy.setBackgroundTask, 'off')
              const frozen = Object.freeze({ suppressApdexMetric: true })
              req.newrelic = frozen
              assert.equal(JSON.stringify(req.newrelic), '{"suppressApdexMetric":true}')
            }
          })
        })

        it('honours one shared constant object used as req.newrelic by several requests', async () => {
          const BACKGROUND = { setBackgroundTask: true }
          const scenario = { before: (req) => void (req.newrelic = BACKGROUND) }
          EXPECT_ON.setBackgroundTask(await app.run(scenario))
          EXPECT_ON.setBackgroundTask(await app.run(scenario))
          assert.equal(BACKGROUND.setBackgroundTask, true)
          assert.equal(JSON.stringify(BACKGROUND), '{"setBackgroundTask":true}')
        })

        it('does not leak flags from one request to the next on a kept-alive socket', async () => {
          EXPECT_ON.setBackgroundTask(await app.run({ before: (req) => void (req.newrelic.setBackgroundTask = true) }))
          expectPlainWeb(await app.run({ handler: (req) => assert.equal(req.newrelic.setBackgroundTask, undefined) }))
        })
      })
    })
  }
}

// A flags object shared between requests, or replaced, must never let one request's write reach another.
for (const engine of ENGINES) {
  describe(`req.newrelic objects that outlive one request (${engine.name})`, () => {
    const { recordingAgent, listen, request } = require('./helpers')

    it("an app's object (req.newrelic = require('newrelic')) stays itself, untouched, for every concurrent request (issue 8.1)", async () => {
      const express = require('express')
      const { agent, waitFor } = recordingAgent(engine.options())
      // stands for the New Relic API object: methods, and nothing of ours may ever be added to it
      const API = { setTransactionName(name) { return `named ${name}` }, getTransaction() { return 'nr' } }
      const shape = () => [Reflect.ownKeys(API), Object.getOwnPropertyDescriptors(API), Object.isExtensible(API)]
      const before = shape()
      let releaseFirst
      const firstMayGo = new Promise((resolve) => { releaseFirst = resolve })
      let secondAssigned
      const secondHasAssigned = new Promise((resolve) => { secondAssigned = resolve })
      const app = express()
      app.use((req, res, next) => {
        req.newrelic = API // before the middleware, as apps do
        next()
      })
      app.use(agent.middleware())
      app.get('/first', async (req, res) => {
        assert.equal(req.newrelic, API)
        await firstMayGo
        // the second request holds the same object now: a write to it could be either's, so it counts for neither
        req.newrelic.setBackgroundTask = true
        res.end(req.newrelic.setTransactionName('first'))
      })
      app.get('/second', async (req, res) => {
        assert.equal(req.newrelic, API)
        secondAssigned()
        await delay(20)
        res.end(req.newrelic.setTransactionName('second'))
      })
      app.get('/alone', async (req, res) => {
        // held by this request alone: a later write through it counts, last write wins against the helper
        assert.equal(ebt.setBackgroundTask(false), true)
        await settle()
        API.setBackgroundTask = 'on'
        res.end(req.newrelic.getTransaction())
      })
      const server = await listen(app)
      try {
        const first = request(server.url('/first'))
        await delay(20)
        const second = request(server.url('/second'))
        await secondHasAssigned
        releaseFirst()
        const bodies = await Promise.all([first, second])
        assert.deepEqual(bodies.map((r) => [r.status, r.body]), [[200, 'named first'], [200, 'named second']])
        delete API.setBackgroundTask // the app's own write, undone by the app
        assert.deepEqual(shape(), before)
        const alone = await request(server.url('/alone'))
        assert.equal(alone.body, 'nr')
        delete API.setBackgroundTask
        assert.deepEqual(shape(), before)
        const records = await waitFor(3)
        const typeOf = (path) => records.find((r) => r.path === path).type
        assert.equal(typeOf('/first'), 'web')
        assert.equal(typeOf('/second'), 'web')
        assert.equal(typeOf('/alone'), 'background')
      } finally {
        await server.close()
      }
    })

    it('a constant flags object shared by concurrent requests is read when assigned, by each', async () => {
      const express = require('express')
      const { agent, waitFor } = recordingAgent(engine.options())
      const BACKGROUND = Object.freeze({ setBackgroundTask: true })
      const app = express()
      app.use(agent.middleware())
      app.get('/:n', async (req, res) => {
        req.newrelic = BACKGROUND
        await delay(10)
        assert.equal(req.newrelic, BACKGROUND)
        res.end('ok')
      })
      const server = await listen(app)
      try {
        await Promise.all([1, 2, 3, 4].map((n) => request(server.url(`/${n}`))))
        const records = await waitFor(4)
        assert.deepEqual(records.map((r) => r.type), ['background', 'background', 'background', 'background'])
      } finally {
        await server.close()
      }
    })

    it('writes through a replaced object no longer count; the new object speaks for the request', async () => {
      const express = require('express')
      const { agent, waitFor } = recordingAgent(engine.options())
      const app = express()
      app.use(agent.middleware())
      app.get('/replaced', (req, res) => {
        const first = {}
        req.newrelic = first
        req.newrelic = { suppressApdexMetric: true }
        first.setBackgroundTask = true // the old object: ignored
        res.end('ok')
      })
      app.get('/default-replaced', (req, res) => {
        const original = req.newrelic
        req.newrelic = {}
        original.setBackgroundTask = true // the object req.newrelic was before: ignored
        res.end('ok')
      })
      const server = await listen(app)
      try {
        await request(server.url('/replaced'))
        await request(server.url('/default-replaced'))
        const records = await waitFor(2)
        assert.deepEqual(records.map((r) => [r.path, r.type, r.suppressApdexMetric]), [
          ['/replaced', 'web', true],
          ['/default-replaced', 'web', false]
        ])
      } finally {
        await server.close()
      }
    })
  })
}

// Type test: misuse the public types must reject (each line below must be a compile error).
import express from 'express'
import { backgroundTask, createAgent, getTransaction, metrics, middleware, onTransactionEnd, setBackgroundTask } from 'express-background-task'

// @ts-expect-error -- typo of apdexT is an unknown key
createAgent({ apdext: 0.5 })
// @ts-expect-error -- only 'async-local-storage', 'cls-hooked' or a namespace object
createAgent({ context: 'als' })
// @ts-expect-error -- apdexT is a number of seconds
createAgent({ apdexT: '0.5' })
// @ts-expect-error -- a namespace object needs get/set/createContext/enter/exit
createAgent({ context: {} })
// @ts-expect-error -- options are an object
createAgent('cls-hooked')

// @ts-expect-error -- the name is a string
backgroundTask(1, () => 1)
// @ts-expect-error -- the task is a function
backgroundTask('x', 42)
// @ts-expect-error -- typo of group
backgroundTask('x', () => 1, { grop: 'Jobs' })
// @ts-expect-error -- the return type follows fn: not Promise<string>
export const wrong: Promise<string> = backgroundTask('x', async () => 1)

// @ts-expect-error -- a flag is a boolean, one of the strings, 1 or 0
setBackgroundTask({})
// @ts-expect-error -- 2 is no flag value
setBackgroundTask(2)
// @ts-expect-error -- the listener is a function
onTransactionEnd('listener')
onTransactionEnd((record) => {
  // @ts-expect-error -- records are read-only
  record.duration = 0
  // @ts-expect-error -- there is no third type
  if (record.type === 'other') return
})

const app = express()
app.use(middleware())
app.get('/', (req, res) => {
  // @ts-expect-error -- an object is no flag value
  req.newrelic.ignoreTransaction = {}
  // @ts-expect-error -- null is no flag value
  req.newrelic = { setBackgroundTask: null }
  // @ts-expect-error -- getTransaction() may be undefined
  getTransaction(req).addAttribute('k', 'v')
  const tx = getTransaction(req)
  // @ts-expect-error -- the type changes only through setBackgroundTask
  if (tx) tx.type = 'background'
  // @ts-expect-error -- setName takes a string
  tx?.setName(1)
  res.end()
})

// middleware() takes no options yet: any key is an error, as it is at run time.
// @ts-expect-error -- unknown middleware option
middleware({ foo: 1 })

// metrics() takes { reset?: boolean } and returns read-only stats.
// @ts-expect-error -- reset is a boolean
metrics({ reset: 'yes' })
// @ts-expect-error -- typo of reset
metrics({ rest: true })
const rollup = metrics().timeslices.WebTransaction
// @ts-expect-error -- snapshots are read-only
if (rollup !== undefined) rollup.callCount = 0

// Type test: the public API used as an Express 5 user would; compiled by `npm test` (tsc --noEmit).
import express, { type NextFunction, type Request, type Response } from 'express'
import {
  backgroundTask,
  createAgent,
  errorHandler,
  ErrorCode,
  getTransaction,
  middleware,
  onTransactionEnd,
  metrics,
  MAX_TRANSACTION_NAMES,
  OVERFLOW_NAME,
  type ApdexStats,
  type MetricsSnapshot,
  type TimesliceStats,
  setBackgroundTask,
  TransactionType,
  type Agent,
  type AgentOptions,
  type BackgroundTaskOptions,
  type FlagValue,
  type RequestFlags,
  type Transaction,
  type TransactionRecord
} from 'express-background-task'

/** Compiles only when `T` is exactly `U`. */
type Equal<T, U> = (<G>() => G extends T ? 1 : 2) extends <G>() => G extends U ? 1 : 2 ? true : false
function expectType<T extends true>(): T | void {}

const app = express()
app.use(middleware())
app.use(middleware({}))
app.use(express.json())

// The flags, on Express's own Request type (the global `Express.Request` augmentation).
app.use(function markExports(req: Request, _res: Response, next: NextFunction) {
  if (req.path.startsWith('/exports')) req.newrelic = { setBackgroundTask: true }
  next()
})
app.get('/health', (req, res) => {
  req.newrelic = { ignoreTransaction: 'on' }
  res.send('ok')
})
app.get('/events', (req, res) => {
  // req.newrelic is always there: the README's one-liner compiles under strict
  req.newrelic.setBackgroundTask = true
  // and it may hold the app's own object, as it is typed (the New Relic API, say)
  const api = { setTransactionName: (name: string): string => name }
  req.newrelic = api
  req.newrelic.setTransactionName('x')
  req.newrelic.suppressApdexMetric = 1
  const flags: RequestFlags | undefined = req.newrelic
  res.json({ flags })
})

// The helpers inside an async Express 5 handler.
app.get('/users/:id', async (req, res) => {
  const applied: boolean = setBackgroundTask()
  const back: boolean = setBackgroundTask(false)
  const parsed: boolean = setBackgroundTask('off')
  getTransaction(req)?.addAttribute('userId', req.params.id)
  getTransaction()?.noticeError(new Error('boom'))
  const tx: Transaction | undefined = getTransaction(req)
  if (tx !== undefined) {
    const name: string = tx.name
    const type: TransactionType = tx.type
    const id: string = tx.id
    const again: boolean = tx.setBackgroundTask('true')
    tx.setName('users/show')
    tx.ignore()
    tx.end()
    res.json({ name, type, id, again })
  }
  const n: Promise<number> = backgroundTask('recount', async () => 1)
  const s: string = backgroundTask('sync', () => 'done', { group: 'Jobs' })
  expectType<Equal<typeof n, Promise<number>>>()
  expectType<Equal<ReturnType<typeof backgroundTask<Promise<number>>>, Promise<number>>>()
  res.json({ applied, back, parsed, n: await n, s })
})
app.use(errorHandler())
app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
  res.status(500).send(String(err))
})

// An isolated agent: its options, methods and listener.
const options: AgentOptions = { apdexT: 0.25, context: 'cls-hooked' }
const agent: Agent = createAgent(options)
createAgent({ context: 'async-local-storage', apdexT: undefined })
createAgent()
const router = express.Router()
router.use(agent.middleware())
router.get('/:id', (req, res) => {
  agent.setBackgroundTask()
  res.send(agent.getTransaction(req)?.name ?? '')
})
app.use('/org/:orgId', router)
app.use(agent.errorHandler())
const taskOptions: BackgroundTaskOptions = { group: 'Cron' }
const fromAgent: Promise<string> = agent.backgroundTask('nightly', async () => 'ok', taskOptions)

// Listeners receive frozen records; the unsubscribe function returns nothing useful.
const unsubscribe: () => void = onTransactionEnd((r) => r.duration)
agent.onTransactionEnd((record: TransactionRecord) => {
  const duration: number = record.duration
  const type: 'web' | 'background' = record.type
  const status: number | undefined = record.statusCode
  const aborted: boolean | undefined = record.aborted
  const error: Error | undefined = record.error
  const attribute: unknown = record.attributes.userId
  const suppressed: boolean = record.suppressApdexMetric
  if (record.type === TransactionType.BACKGROUND) console.log(record.name)
  console.log(duration, type, status, aborted, error, attribute, suppressed, record.method, record.path, record.startTime)
})
unsubscribe()

// Metrics: a read, a harvest, and the stats by name.
const snapshot: MetricsSnapshot = metrics()
const harvested: MetricsSnapshot = agent.metrics({ reset: true })
const web: TimesliceStats | undefined = snapshot.timeslices.WebTransaction
const score: number | undefined = harvested.apdex.Apdex?.score
const p95: number | undefined = snapshot.percentiles.WebTransaction?.p95
const apdex: ApdexStats | undefined = snapshot.apdex[`Apdex/Expressjs/GET//users/:id`]
const window: number = snapshot.until - snapshot.since
const overflow: string = OVERFLOW_NAME.web
const cap: number = MAX_TRANSACTION_NAMES
console.log(web?.callCount, web?.sumOfSquares, score, p95, apdex?.tolerating, window, overflow, cap)

// Error codes are a closed set of string literals users can match on.
try {
  createAgent({ apdexT: -1 })
} catch (err) {
  const code: ErrorCode | undefined = (err as { code?: ErrorCode }).code
  if (code === ErrorCode.APDEX_T || code === 'ERR_EBT_UNKNOWN_OPTION') console.log(code)
}
const flag: FlagValue = 'ON'
export const record: TransactionRecord | undefined = undefined
export { fromAgent, flag }

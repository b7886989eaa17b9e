// Type test: the ESM entry (the `import` condition, dist/index.d.mts) under node16 resolution.
import express from 'express'
import * as ns from 'express-background-task'
import {
  backgroundTask,
  createAgent,
  errorHandler,
  ErrorCode,
  getTransaction,
  middleware,
  onTransactionEnd,
  metrics,
  setBackgroundTask,
  TransactionType,
  type Agent,
  type AgentOptions,
  type Transaction,
  type TransactionRecord
} from 'express-background-task'
// The CommonJS typings, for comparison: both entries must declare the very same API.
import type * as Cjs from 'express-background-task' with { 'resolution-mode': 'require' }

type Equal<T, U> = (<G>() => G extends T ? 1 : 2) extends <G>() => G extends U ? 1 : 2 ? true : false
function expectType<T extends true>(): T | void {}

expectType<Equal<typeof createAgent, typeof Cjs.createAgent>>()
expectType<Equal<typeof middleware, typeof Cjs.middleware>>()
expectType<Equal<typeof errorHandler, typeof Cjs.errorHandler>>()
expectType<Equal<typeof setBackgroundTask, typeof Cjs.setBackgroundTask>>()
expectType<Equal<typeof getTransaction, typeof Cjs.getTransaction>>()
expectType<Equal<typeof backgroundTask, typeof Cjs.backgroundTask>>()
expectType<Equal<typeof onTransactionEnd, typeof Cjs.onTransactionEnd>>()
expectType<Equal<typeof metrics, typeof Cjs.metrics>>()
expectType<Equal<typeof ns.OVERFLOW_NAME, typeof Cjs.OVERFLOW_NAME>>()
expectType<Equal<typeof ErrorCode, typeof Cjs.ErrorCode>>()
expectType<Equal<typeof TransactionType, typeof Cjs.TransactionType>>()
expectType<Equal<TransactionRecord, Cjs.TransactionRecord>>()
expectType<Equal<Transaction, Cjs.Transaction>>()
expectType<Equal<AgentOptions, Cjs.AgentOptions>>()
expectType<Equal<Agent, Cjs.Agent>>()
expectType<Equal<typeof ns.backgroundTask, typeof backgroundTask>>()

const app = express()
app.use(ns.middleware())
app.get('/events', async (req, res) => {
  req.newrelic = { setBackgroundTask: true }
  req.newrelic.ignoreTransaction = 'off'
  const applied: boolean = setBackgroundTask(false)
  getTransaction(req)?.addAttribute('k', 1)
  const n: Promise<number> = backgroundTask('x', async () => 1)
  res.json({ applied, n: await n })
})
app.use(errorHandler())
const agent: Agent = createAgent({ apdexT: 1, context: 'cls-hooked' })
const stop: () => void = onTransactionEnd((r) => r.duration)
const web: 'web' = TransactionType.WEB
const code: 'ERR_EBT_APDEX_T' = ErrorCode.APDEX_T

// ErrorCode and TransactionType are types as well as values under `import`, as under require.
export const kind: TransactionType = 'web'
export const failure: ErrorCode = 'ERR_EBT_CONTEXT'

// @ts-expect-error -- typo of apdexT, as under require
createAgent({ apdext: 0.5 })
export { agent, stop, web, code }

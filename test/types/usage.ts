// Type test: the public API used as an Express user would; compiled by `npm test` (tsc --noEmit).
import express from 'express'
import { middleware, setBackgroundTask, getTransaction, type TransactionRecord } from 'express-background-task'

const app = express()
app.use(middleware())
app.get('/events', (req, res) => {
  req.newrelic = { setBackgroundTask: true }
  const applied: boolean = setBackgroundTask()
  const name: string | undefined = getTransaction(req)?.name
  res.json({ applied, name })
})
export const record: TransactionRecord | undefined = undefined

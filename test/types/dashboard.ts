// Type test: express-background-task/dashboard as a CommonJS consumer uses it.
import http from 'node:http'
import express from 'express'
import { createAgent } from 'express-background-task'
import {
  dashboard,
  reportToPrimary,
  DASHBOARD_WINDOWS,
  type DashboardHandler,
  type DashboardOptions,
  type DashboardView,
  type PrimaryReport
} from 'express-background-task/dashboard'

const options: DashboardOptions = { authorize: (req) => req.headers['x-admin'] === 'yes', agent: createAgent({ apdexT: 0.3 }) }
const handler: DashboardHandler = dashboard(options)
const app = express()
app.use('/_background', handler)
app.use('/_async', dashboard({ authorize: async () => true }))
http.createServer(dashboard({ cluster: true }))
const view: DashboardView = handler.view(15, Date.now())
export const p95: number | null = view.web.p95Ms
export const payoff: number | null = view.asWeb.apdex
export const windows: readonly (1 | 5 | 15)[] = DASHBOARD_WINDOWS
const report: PrimaryReport = reportToPrimary({ agent: createAgent() })
report.close()
handler.close()

// @ts-expect-error -- typo of authorize
dashboard({ authorise: () => true })
// @ts-expect-error -- authorize is a function
dashboard({ authorize: true })
// @ts-expect-error -- windows are 1, 5 or 15 minutes
handler.view(10)

// Type test: express-background-task/dashboard as an ESM consumer uses it.
import { dashboard, type DashboardView } from 'express-background-task/dashboard'

const handler = dashboard()
export const view: DashboardView = handler.view()
export const open: number = view.inFlight.background
handler.close()

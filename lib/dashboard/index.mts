// ESM entry of express-background-task/dashboard: the CommonJS build's exports (one instance for both loaders).
import { createRequire } from 'node:module'

// require(), as the other subpaths do: one copy of the module (and of its recording) for both loaders,
// and a failure while loading surfaces as the import's rejection, never as an uncaught exception on Node 20.
const cjs: typeof import('./index.js') = createRequire(import.meta.url)('./index.js')

export const { dashboard, reportToPrimary, CLUSTER_MESSAGE_TYPE, DASHBOARD_WINDOWS, DASHBOARD_POINTS } = cjs
export type * from './index.js'

// ESM entry of express-background-task/newrelic: the CommonJS build's exports (one instance for both loaders).
import { createRequire } from 'node:module'

// require(), not `import cjs from './index.js'`: without newrelic the CommonJS build throws
// ERR_EBT_PEER_MISSING, and Node 20 reports a CommonJS module that throws under a static import as
// an uncaught exception even when the app catches the failed `await import()`.
const cjs: typeof import('./index.js') = createRequire(import.meta.url)('./index.js')

export const { bridgeNewRelic } = cjs
export type * from './index.js'

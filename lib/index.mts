// ESM entry: the CommonJS build's exports, re-exported by name (one instance for both loaders).
import cjs from './index.js'

export const {
  createAgent,
  middleware,
  errorHandler,
  setBackgroundTask,
  getTransaction,
  backgroundTask,
  onTransactionEnd,
  ErrorCode,
  TransactionType
} = cjs
export type * from './index.js'

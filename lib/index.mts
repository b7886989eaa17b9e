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
  metrics,
  uninstall,
  MAX_TRANSACTION_NAMES,
  OVERFLOW_NAME,
  ErrorCode,
  ChannelName,
  TransactionType
} = cjs
export type * from './index.js'
// `export const { ... }` above gives values only; these names are types too.
export type TransactionType = import('./index.js').TransactionType
export type ErrorCode = import('./index.js').ErrorCode
export type ChannelName = import('./index.js').ChannelName

// express-background-task: mark Express and Connect requests as background tasks, and back.
export { createAgent, middleware, errorHandler, setBackgroundTask, getTransaction, backgroundTask, onTransactionEnd, metrics, uninstall } from './agent'
export { ErrorCode } from './options'
export { ChannelName } from './channels'
export type { TransactionStartMessage, TransactionClassifyMessage, TransactionEndMessage } from './channels'
export { TransactionType } from './types'
export { MAX_TRANSACTION_NAMES, OVERFLOW_NAME } from './metrics/aggregator'
export type {
  Agent,
  AgentOptions,
  BackgroundTaskOptions,
  ClsNamespaceLike,
  ErrorMiddleware,
  FlagValue,
  ApdexStats,
  MetricsOptions,
  MetricsSnapshot,
  Middleware,
  MiddlewareOptions,
  RequestFlags,
  RequestFlagsHolder,
  ResponseTimePercentiles,
  TimesliceStats,
  Transaction,
  TransactionEndListener,
  TransactionRecord
} from './types'

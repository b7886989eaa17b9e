// express-background-task: mark Express and Connect requests as background tasks, and back.
export { createAgent, middleware, errorHandler, setBackgroundTask, getTransaction, backgroundTask, onTransactionEnd } from './agent'
export { ErrorCode } from './options'
export { TransactionType } from './types'
export type {
  Agent,
  AgentOptions,
  BackgroundTaskOptions,
  ClsNamespaceLike,
  ErrorMiddleware,
  FlagValue,
  Middleware,
  MiddlewareOptions,
  RequestFlags,
  Transaction,
  TransactionEndListener,
  TransactionRecord
} from './types'

// createAgent and the default agent: options, the context engine and the end-of-transaction listeners.
import { asyncLocalStorageEngine } from './context/async-local-storage'
import { createClsEngine } from './context/cls-hooked'
import { findActiveTransaction, type ContextEngine } from './context/engine'
import { describeValue, logAgent, logTransaction } from './debug'
import { carriedTransaction } from './carrier'
import { createMiddleware } from './middleware'
import { removeRequestHooks } from './request-events'
import { runBackgroundTask } from './background-task'
import { MetricsAggregator } from './metrics/aggregator'
import { assertFactoryCalled, assertListener, ContextEngineName, parseAgentOptions, parseMetricsOptions, type AgentConfig } from './options'
import type { Transaction } from './transaction'
import type {
  Agent as PublicAgent,
  AgentOptions,
  BackgroundTaskOptions,
  ErrorMiddleware,
  FlagValue,
  MetricsOptions,
  MetricsSnapshot,
  Middleware,
  MiddlewareOptions,
  Transaction as PublicTransaction,
  TransactionEndListener
} from './types'

const AGENT_METHODS = ['middleware', 'errorHandler', 'backgroundTask', 'onTransactionEnd', 'setBackgroundTask', 'getTransaction', 'metrics'] as const

class Agent implements PublicAgent {
  readonly config: AgentConfig
  readonly engine: ContextEngine
  private readonly aggregator: MetricsAggregator
  private listeners: TransactionEndListener[] = []

  constructor(options?: AgentOptions) {
    this.config = parseAgentOptions(options)
    this.aggregator = new MetricsAggregator(this.config.apdexT)
    const context = this.config.context
    this.engine = context === ContextEngineName.ASYNC_LOCAL_STORAGE ? asyncLocalStorageEngine : createClsEngine(context === ContextEngineName.CLS_HOOKED ? undefined : context)
    if (logAgent.enabled) logAgent('create agent with engine %s, apdexT %d', this.engine.name, this.config.apdexT)
    // Bound, so `const { middleware, backgroundTask } = createAgent()` works like the top-level functions.
    for (const method of AGENT_METHODS) (this as Record<string, unknown>)[method] = (this[method] as Function).bind(this)
  }

  get apdexT(): number {
    return this.config.apdexT
  }

  middleware(options?: MiddlewareOptions): Middleware {
    return createMiddleware(this, options)
  }

  errorHandler(): ErrorMiddleware {
    // Mounted uncalled, `app.use(errorHandler)` would run as a plain middleware that never calls next.
    assertFactoryCalled(arguments[0], 'errorHandler')
    return function expressBackgroundTaskErrors(err, req, _res, next) {
      const tx = carriedTransaction(req) as Transaction | undefined
      if (tx !== undefined && !tx.ended) tx.noticeError(err)
      next(err)
    }
  }

  backgroundTask<T>(name: string, fn: () => T, options?: BackgroundTaskOptions): T {
    return runBackgroundTask(this, name, fn, options)
  }

  onTransactionEnd(listener: TransactionEndListener): () => void {
    assertListener(listener)
    // Copy on write: a listener that unsubscribes while records are delivered does not skip another.
    this.listeners = [...this.listeners, listener]
    return () => {
      this.listeners = this.listeners.filter((existing) => existing !== listener)
    }
  }

  setBackgroundTask(flag?: FlagValue): boolean {
    return setBackgroundTask(flag)
  }

  getTransaction(req?: object): PublicTransaction | undefined {
    return getTransaction(req)
  }

  metrics(options?: MetricsOptions): MetricsSnapshot {
    return this.aggregator.snapshot(parseMetricsOptions(options))
  }

  /** Count the transaction in the metrics, then deliver its record to every listener; one that throws is reported and never reaches the request. */
  transactionEnded(tx: Transaction): void {
    this.aggregator.record(tx)
    const listeners = this.listeners
    if (listeners.length === 0) return
    const record = tx.toRecord()
    for (const listener of listeners) {
      try {
        listener(record)
      } catch (err) {
        if (logAgent.enabled) logAgent('catch a throwing transaction listener: %s', describeValue(err))
      }
    }
  }
}

/**
 * Create an isolated agent with its own options and listeners.
 * @param options - see {@link AgentOptions}; every key is optional.
 * @returns an {@link PublicAgent | Agent}.
 * @throws {TypeError} with a `code` (see `ErrorCode`) for an unknown option or a wrong value.
 */
export function createAgent(options?: AgentOptions): PublicAgent {
  return new Agent(options)
}

let defaultAgent: Agent | undefined
function getDefaultAgent(): Agent {
  return (defaultAgent ??= new Agent())
}

/**
 * A middleware that starts a web transaction for each request, on the default agent.
 * Mount it first: `app.use(middleware())`.
 * @param options - per-mount options (none exists yet; an unknown key throws).
 * @throws {TypeError} `ERR_EBT_MIDDLEWARE_NOT_CALLED` when mounted as `app.use(middleware)`.
 */
export function middleware(options?: MiddlewareOptions): Middleware {
  return getDefaultAgent().middleware(options)
}

/**
 * An error middleware, mounted after the routes, that notices the error on the request's
 * transaction and passes it on unchanged: `app.use(errorHandler())`.
 * @throws {TypeError} `ERR_EBT_MIDDLEWARE_NOT_CALLED` when mounted as `app.use(errorHandler)`.
 */
export function errorHandler(): ErrorMiddleware {
  assertFactoryCalled(arguments[0], 'errorHandler')
  return getDefaultAgent().errorHandler()
}

/**
 * Reclassify the active transaction, whichever agent started it, from anywhere in its async chain.
 * @param flag - `true` (the default) for background, `false` for web; parsed like a `req.newrelic` value.
 * @returns `true` when applied; `false` with no active transaction or an unparseable flag.
 */
export function setBackgroundTask(flag: FlagValue = true): boolean {
  const tx = findActiveTransaction() as Transaction | undefined
  if (tx === undefined) {
    if (logTransaction.enabled) logTransaction('ignore setBackgroundTask(%s): no active transaction', describeValue(flag))
    return false
  }
  return tx.setBackgroundTask(flag)
}

/**
 * The active transaction; or, given a request, that request's transaction while it is active.
 * @param req - optional; the explicit path when the async context may be wrong (pooled clients).
 */
export function getTransaction(req?: object): PublicTransaction | undefined {
  // `null` counts as no argument; anything else that is not an object holds no transaction
  const tx =
    req === undefined || req === null
      ? (findActiveTransaction() as Transaction | undefined)
      : typeof req === 'object' || typeof req === 'function'
        ? (carriedTransaction(req) as Transaction | undefined)
        : undefined
  return tx !== undefined && tx.isActive() ? tx : undefined
}

/**
 * Run `fn` in a new background transaction `OtherTransaction/<group>/<name>` on the default agent.
 * @returns what `fn` returns, the same value; a returned promise ends the transaction when it settles.
 * @throws {TypeError} `ERR_EBT_TASK_NAME` / `ERR_EBT_TASK_FUNCTION` for bad arguments; rethrows what `fn` throws.
 */
export function backgroundTask<T>(name: string, fn: () => T, options?: BackgroundTaskOptions): T {
  return getDefaultAgent().backgroundTask(name, fn, options)
}

/**
 * The default agent's metrics: the current window of timeslices, Apdex and percentiles.
 * @param options - `{ reset: true }` harvests: returns the window and starts a new one, so that
 * every transaction is counted in exactly one harvest.
 * @throws {TypeError} `ERR_EBT_UNKNOWN_OPTION` / `ERR_EBT_OPTIONS_TYPE` for a misspelt or non-boolean option.
 */
export function metrics(options?: MetricsOptions): MetricsSnapshot {
  return getDefaultAgent().metrics(options)
}

/**
 * Listen to every ended, non-ignored transaction of the default agent.
 * @returns a function that unsubscribes the listener.
 * @throws {TypeError} `ERR_EBT_LISTENER` when `listener` is not a function.
 */
export function onTransactionEnd(listener: TransactionEndListener): () => void {
  return getDefaultAgent().onTransactionEnd(listener)
}

/**
 * Remove the package's prototype hooks (the `emit` and `end` wrappers of requests and responses)
 * and the `req.newrelic` accessor, for tests that check prototypes or apps shutting the package
 * off. Requests in flight stop being tracked; the next `middleware()` puts everything back. A hook
 * that another library wrapped since is left in place, since removing it would remove theirs.
 * @returns `true` when every hook was removed.
 */
export function uninstall(): boolean {
  return removeRequestHooks()
}

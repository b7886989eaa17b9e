// Public types: everything a user of the package may import, and nothing internal.
import type { IncomingMessage, ServerResponse } from 'node:http'

/** The two kinds of transaction, as New Relic records them. */
export const TransactionType = { WEB: 'web', BACKGROUND: 'background' } as const
/** `'web'` or `'background'`. */
export type TransactionType = (typeof TransactionType)[keyof typeof TransactionType]

/**
 * A value a flag accepts: `true`/`false`, the strings `'on' 'true' '1'` / `'off' 'false' '0'`
 * (any casing) or the numbers `1`/`0`. Anything else is ignored (and reported through `debug`).
 */
export type FlagValue = boolean | 'on' | 'off' | 'true' | 'false' | '1' | '0' | 1 | 0 | (string & {})

/**
 * The per-request flags, the counterparts of the WSGI environ keys of New Relic's Python agent.
 * Set them on `req.newrelic` before or after the middleware runs, or replace the object.
 */
export interface RequestFlags {
  /** Reclassify this request's transaction as background (`true`) or web (`false`). */
  setBackgroundTask?: FlagValue
  /** Record nothing for this request. */
  ignoreTransaction?: FlagValue
  /** Keep this request out of the Apdex score. */
  suppressApdexMetric?: FlagValue
}

/**
 * What `req.newrelic` holds: the flags, on whatever object the app keeps there (its own keys and
 * methods stay as the app typed them, e.g. `req.newrelic = require('newrelic')`).
 */
export type RequestFlagsHolder = RequestFlags & { [key: string]: any }

/** Options of {@link createAgent}. Every key is optional; `undefined` counts as absent. */
export interface AgentOptions {
  /**
   * Where the active transaction is kept across async hops: `'async-local-storage'`, `'cls-hooked'`,
   * or a cls-hooked namespace the app already uses (the transaction is stored in it under the key
   * `'transaction'`). Defaults to `'async-local-storage'`.
   */
  context?: 'async-local-storage' | 'cls-hooked' | ClsNamespaceLike | undefined
  /** The Apdex threshold T in seconds, a finite number > 0. Defaults to `0.5`. */
  apdexT?: number | undefined
}

/** Options of `middleware()`. None exists yet; an unknown key throws, as for agent options. */
export interface MiddlewareOptions {
  readonly [key: string]: never
}

/** Options of `backgroundTask()`. */
export interface BackgroundTaskOptions {
  /** The group of the name, `OtherTransaction/<group>/<name>`. Defaults to `'Nodejs'`. */
  group?: string | undefined
}

/** The part of a cls-hooked namespace the package uses. */
export interface ClsNamespaceLike {
  readonly active: unknown
  get(key: string): unknown
  set(key: string, value: unknown): unknown
  createContext(): Record<string, unknown>
  enter(context: Record<string, unknown>): void
  exit(context: Record<string, unknown>): void
}

/** The live handle of a transaction. */
export interface Transaction {
  /** Unique id. */
  readonly id: string
  /** `'web'` or `'background'`; changes when the transaction is reclassified. */
  readonly type: TransactionType
  /** The agent that started it (integrations given an `agent` keep to its transactions). */
  readonly agent: Agent
  /** The full metric name, e.g. `WebTransaction/Expressjs/GET//users/:id`, computed on read. */
  readonly name: string
  /**
   * Reclassify as background (`true`, the default) or web (`false`).
   * @returns `true` when applied; `false` when the transaction is no longer active or the flag is unparseable.
   */
  setBackgroundTask(flag?: FlagValue): boolean
  /** Name the transaction `{Web|Other}Transaction/Custom/<name>`. */
  setName(name: string): void
  /** Attach an attribute to the record. */
  addAttribute(key: string, value: unknown): void
  /** Record an error against the transaction (the last one noticed is kept). */
  noticeError(err: unknown): void
  /** Record nothing for this transaction, the same as setting the `ignoreTransaction` flag. */
  ignore(): void
  /** End the transaction now. Idempotent. */
  end(): void
}

/** What `onTransactionEnd` listeners receive: a plain, frozen snapshot of an ended transaction. */
export interface TransactionRecord {
  readonly id: string
  readonly type: TransactionType
  /** Full metric name. */
  readonly name: string
  /** Epoch milliseconds. */
  readonly startTime: number
  /** Milliseconds (fractional). */
  readonly duration: number
  readonly attributes: Readonly<Record<string, unknown>>
  /** The noticed error, if any. */
  readonly error?: Error
  /** Whether the request asked to be kept out of Apdex (`suppressApdexMetric`). */
  readonly suppressApdexMetric: boolean
  /** Requests only: the HTTP method. */
  readonly method?: string
  /** Requests only: the route template or mount path used in the name, or `'(not found)'`. */
  readonly path?: string
  /** Requests only: the status code the response had when the transaction ended. */
  readonly statusCode?: number
  /** Requests only: `true` when the client went away before the response finished. */
  readonly aborted?: boolean
}

/** Options of `metrics()`. */
export interface MetricsOptions {
  /** Harvest: return the current window and start a new one. Defaults to `false` (a read that leaves the window as is). */
  reset?: boolean | undefined
}

/** Timeslice stats of one metric name over a window, in seconds, as New Relic reports them. */
export interface TimesliceStats {
  readonly callCount: number
  /** Sum of the durations. */
  readonly total: number
  readonly min: number
  readonly max: number
  /** Sum of the squared durations (for the standard deviation). */
  readonly sumOfSquares: number
}

/** Apdex counts of one web metric name over a window. */
export interface ApdexStats {
  readonly satisfying: number
  readonly tolerating: number
  readonly frustrating: number
  /** The agent's threshold T, in seconds. */
  readonly apdexT: number
  /** (satisfying + tolerating / 2) / (satisfying + tolerating + frustrating), from 0 to 1. */
  readonly score: number
}

/** Response-time percentiles of a rollup, in seconds, within 2% (nearest rank, log-scale buckets). */
export interface ResponseTimePercentiles {
  readonly p50: number
  readonly p95: number
  readonly p99: number
}

/**
 * One window of metrics. Only names recorded in the window appear: an app with no background
 * transaction has no `OtherTransaction/all`.
 */
export interface MetricsSnapshot {
  /** Epoch milliseconds: when the window started (the agent's creation or the last harvest). */
  readonly since: number
  /** Epoch milliseconds: when this snapshot was taken. */
  readonly until: number
  /**
   * `WebTransaction`, `HttpDispatcher`, `WebTransaction/<group>/<name>` for web transactions;
   * `OtherTransaction/all`, `OtherTransaction/<group>/<name>` for background ones.
   */
  readonly timeslices: Readonly<Partial<Record<string, TimesliceStats>>>
  /** `Apdex` and `Apdex/<group>/<name>`, web transactions only, less those with `suppressApdexMetric`. */
  readonly apdex: Readonly<Partial<Record<string, ApdexStats>>>
  /** Percentiles of the rollups `WebTransaction` and `OtherTransaction/all`. */
  readonly percentiles: Readonly<Partial<Record<string, ResponseTimePercentiles>>>
}

/** A listener of ended transactions. */
export type TransactionEndListener = (record: TransactionRecord) => void

/** A Connect/Express middleware as the package returns it. */
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void

/** An error-handling middleware as the package returns it. */
export type ErrorMiddleware = (
  err: unknown,
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void
) => void

/** An isolated agent: its own options and listeners. */
export interface Agent {
  /** The Apdex threshold T of this agent, in seconds (read-only). */
  readonly apdexT: number
  /** A middleware that starts a web transaction for each request. */
  middleware(options?: MiddlewareOptions): Middleware
  /** An error middleware that notices the error on the request's transaction and passes it on. */
  errorHandler(): ErrorMiddleware
  /** Run `fn` in a new background transaction named `OtherTransaction/<group>/<name>`. */
  backgroundTask<T>(name: string, fn: () => T, options?: BackgroundTaskOptions): T
  /** Listen to ended, non-ignored transactions of this agent. Returns the unsubscribe function. */
  onTransactionEnd(listener: TransactionEndListener): () => void
  /** Reclassify the active transaction, whichever agent started it (the same as the top-level helper). */
  setBackgroundTask(flag?: FlagValue): boolean
  /** The active transaction, whichever agent started it, or the one bound to `req` while it is active (the same as the top-level function). */
  getTransaction(req?: object): Transaction | undefined
  /** This agent's metrics window; `{ reset: true }` harvests it (returns it and starts a new one). */
  metrics(options?: MetricsOptions): MetricsSnapshot
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /**
       * express-background-task's per-request flags (the WSGI environ keys' counterparts). Always
       * there; an object the app puts there (the New Relic API, say) reads back as itself.
       */
      newrelic: RequestFlagsHolder
    }
  }
}

declare module 'http' {
  interface IncomingMessage {
    /** express-background-task's per-request flags (the WSGI environ keys' counterparts). */
    newrelic: RequestFlagsHolder
  }
}

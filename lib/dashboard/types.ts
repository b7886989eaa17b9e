// Public types of express-background-task/dashboard: what users import, nothing internal.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Agent, TransactionType } from '../index'

/** Options of {@link dashboard}. Every key is optional; `undefined` counts as absent. */
export interface DashboardOptions {
  /**
   * Called for every request to the dashboard; it is served only when this returns `true` (or a
   * promise of `true`). Anything else, a throw or a rejection answers 404. Defaults to none: open
   * outside production, 404 under `NODE_ENV=production`.
   */
  authorize?: ((req: IncomingMessage) => boolean | Promise<boolean>) | undefined
  /** Show only this agent's transactions (its `apdexT` is the T shown). Defaults to every agent's. */
  agent?: Agent | undefined
  /**
   * In a cluster's primary: also show what the workers send with {@link reportToPrimary}, so one
   * page shows the whole cluster. Defaults to `false`.
   */
  cluster?: boolean | undefined
}

/** The window lengths the page offers, in minutes. */
export type DashboardWindow = 1 | 5 | 15

/** The figures of a set of transactions over a window. Durations in milliseconds; null where there is nothing to show. */
export interface DashboardFigures {
  readonly count: number
  /** Transactions per minute over the window. */
  readonly rpm: number
  readonly meanMs: number | null
  readonly p50Ms: number | null
  readonly p95Ms: number | null
  readonly p99Ms: number | null
  readonly maxMs: number | null
  /** Share of transactions with a noticed error or a 5xx status, 0 to 1. */
  readonly errorRate: number | null
  /** Apdex score, 0 to 1 (web figures only; null for background ones). */
  readonly apdex: number | null
  readonly satisfying: number
  readonly tolerating: number
  readonly frustrating: number
}

/** One row of the tables of transaction names. */
export interface DashboardNameRow {
  /** The full metric name, as `metrics()` keys it (never a raw URL). */
  readonly name: string
  readonly count: number
  readonly rpm: number
  readonly meanMs: number
  readonly p95Ms: number
  readonly maxMs: number
  readonly errorRate: number
  /** Web names only. */
  readonly apdex: number | null
  /** How many of this name are in flight now. */
  readonly open: number
}

/** Transactions of one type and name in flight now. */
export interface DashboardOpenGroup {
  readonly type: TransactionType
  readonly name: string
  count: number
  /** How long the oldest of them has run, ms. */
  longestMs: number
}

/** Transactions in flight now, by their current type, and the busiest names among them. */
export interface DashboardInFlight {
  readonly web: number
  readonly background: number
  readonly open: readonly DashboardOpenGroup[]
}

/** The charts: {@link DASHBOARD_POINTS} points, each over `stepSeconds`, oldest first. */
export interface DashboardSeries {
  /** Epoch ms at which the first point starts. */
  readonly start: number
  readonly stepSeconds: number
  readonly webRpm: readonly number[]
  readonly backgroundRpm: readonly number[]
  readonly p50Ms: readonly (number | null)[]
  readonly p95Ms: readonly (number | null)[]
  readonly p99Ms: readonly (number | null)[]
  /** Web p95 had the requests marked background stayed web. */
  readonly asWebP95Ms: readonly (number | null)[]
  readonly apdex: readonly (number | null)[]
  /** Web Apdex had the requests marked background stayed web. */
  readonly asWebApdex: readonly (number | null)[]
  readonly webErrorRate: readonly (number | null)[]
  readonly backgroundErrorRate: readonly (number | null)[]
  /** The most in flight at the end of a second, over the point. */
  readonly inFlightWeb: readonly (number | null)[]
  readonly inFlightBackground: readonly (number | null)[]
}

/** What the page receives every second: names and aggregates only (no URLs, no headers). */
export interface DashboardView {
  readonly version: 1
  /** Epoch ms: the window ends at the last whole second before it. */
  readonly at: number
  readonly windowMinutes: DashboardWindow
  /** The Apdex T of the transactions shown, seconds (one value unless agents differ). */
  readonly apdexT: readonly number[]
  /** In a cluster's primary, how many workers reported in the last seconds; otherwise null. */
  readonly workers: number | null
  readonly web: DashboardFigures
  readonly background: DashboardFigures
  /** Web figures had the requests marked background stayed web: the payoff of marking them. */
  readonly asWeb: DashboardFigures
  readonly inFlight: DashboardInFlight
  readonly names: { readonly web: readonly DashboardNameRow[]; readonly background: readonly DashboardNameRow[] }
  readonly series: DashboardSeries
}

/** The handler {@link dashboard} returns: mount it with `app.use('/_background', handler)` or serve it with `http.createServer(handler)`. */
export interface DashboardHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void
  /**
   * The figures the page shows for a window, as sent to it.
   * @param windowMinutes - 1, 5 or 15. Defaults to 5.
   * @param at - epoch ms; the window ends at the last whole second before it. Defaults to now.
   */
  view(windowMinutes?: DashboardWindow, at?: number): DashboardView
  /** Stop recording, end the open streams, stop listening to workers. Idempotent. */
  close(): void
}

/** Options of {@link reportToPrimary}. */
export interface ReportToPrimaryOptions {
  /** Report only this agent's transactions. Defaults to every agent's. */
  agent?: Agent | undefined
}

/** What {@link reportToPrimary} returns. */
export interface PrimaryReport {
  /** Whether this process reports (it is a cluster worker with an IPC channel). */
  readonly active: boolean
  /** Stop reporting. Idempotent. */
  close(): void
}

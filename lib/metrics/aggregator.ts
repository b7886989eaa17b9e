// The metrics of one agent: every ended, non-ignored transaction folded into the current window.
import { performance } from 'node:perf_hooks'
import { logMetrics } from '../debug'
import { TransactionType, type MetricsSnapshot, type ApdexStats, type TimesliceStats, type ResponseTimePercentiles } from '../types'
import { apdexZone, ApdexCounts } from './apdex'
import { Histogram } from './histogram'
import { Timeslice } from './timeslice'

/**
 * Distinct transaction names per window. New Relic warns past about a thousand names (a "metric
 * grouping issue": names built from ids or raw URLs); past this cap a window keeps its memory
 * bounded by folding new names into {@link OVERFLOW_NAME}s, while the rollups stay exact.
 */
export const MAX_TRANSACTION_NAMES = 2000
/** Where names past the cap are counted, per prefix. */
export const OVERFLOW_NAME = {
  web: 'WebTransaction/Overflow/*',
  background: 'OtherTransaction/Overflow/*',
  apdex: 'Apdex/Overflow/*'
} as const

const WEB_ROLLUP = 'WebTransaction'
const DISPATCHER_ROLLUP = 'HttpDispatcher'
const BACKGROUND_ROLLUP = 'OtherTransaction/all'
const APDEX_ROLLUP = 'Apdex'
const WEB_PREFIX_LENGTH = 'WebTransaction/'.length

/** What the aggregator reads off an ended transaction. */
export interface EndedTransaction {
  readonly type: TransactionType
  readonly name: string
  /** Milliseconds. */
  readonly duration: number
  readonly error: Error | undefined
  readonly statusCode: number | undefined
  readonly aborted: boolean
  readonly suppressApdex: boolean
}

/** One transaction name: its timeslice, and its Apdex counts when it is a web name. */
class NameMetrics {
  readonly timeslice = new Timeslice()
  readonly apdex: ApdexCounts | undefined
  constructor(web: boolean) {
    this.apdex = web ? new ApdexCounts() : undefined
  }
}

/** A harvest window. `HttpDispatcher` has the same values as `WebTransaction`, so they share one timeslice. */
class MetricsWindow {
  constructor(readonly since: number) {}
  readonly web = new Timeslice()
  readonly webApdex = new ApdexCounts()
  readonly webTimes = new Histogram()
  readonly background = new Timeslice()
  readonly backgroundTimes = new Histogram()
  readonly names = new Map<string, NameMetrics>()
  webOverflow: NameMetrics | undefined = undefined
  backgroundOverflow: NameMetrics | undefined = undefined

  /** The metrics of `name`, or its prefix's overflow once the window holds the cap of names. */
  metricsFor(name: string, web: boolean): NameMetrics {
    const existing = this.names.get(name)
    if (existing !== undefined) return existing
    // a name that happens to spell an overflow name is counted there, never overwritten by it
    if (this.names.size < MAX_TRANSACTION_NAMES && name !== OVERFLOW_NAME.web && name !== OVERFLOW_NAME.background) {
      const created = new NameMetrics(web)
      this.names.set(name, created)
      return created
    }
    if (web) return (this.webOverflow ??= startOverflow(name, true))
    return (this.backgroundOverflow ??= startOverflow(name, false))
  }
}

/** The first name of a window to fold into its prefix's overflow: reported once. */
function startOverflow(name: string, web: boolean): NameMetrics {
  if (logMetrics.enabled) logMetrics('fold %s and later new names into %s: %d names this window', name, web ? OVERFLOW_NAME.web : OVERFLOW_NAME.background, MAX_TRANSACTION_NAMES)
  return new NameMetrics(web)
}

export class MetricsAggregator {
  private window = new MetricsWindow(epochNow())

  constructor(private readonly apdexT: number) {}

  /** Fold one ended transaction in: a few additions and one map lookup, no allocation for a known name. */
  record(tx: EndedTransaction): void {
    const seconds = tx.duration / 1000
    const window = this.window
    const web = tx.type === TransactionType.WEB
    const named = window.metricsFor(tx.name, web)
    named.timeslice.add(seconds)
    if (!web) {
      window.background.add(seconds)
      window.backgroundTimes.add(seconds)
      return
    }
    window.web.add(seconds)
    window.webTimes.add(seconds)
    if (tx.suppressApdex) return
    // an error, a 5xx, or a client that left before any response was sent
    const failed = tx.error !== undefined || (tx.statusCode === undefined ? tx.aborted : tx.statusCode >= 500)
    const zone = apdexZone(seconds, this.apdexT, failed)
    window.webApdex.add(zone)
    named.apdex?.add(zone)
  }

  /** The current window; with `reset`, a harvest: the window is returned and a new one starts, atomically. */
  snapshot(reset: boolean): MetricsSnapshot {
    const window = this.window
    const until = epochNow()
    // the next window starts where this one stops: harvests tile time with no gap or overlap
    if (reset) this.window = new MetricsWindow(until)
    const timeslices: Record<string, TimesliceStats> = {}
    const apdex: Record<string, ApdexStats> = {}
    const percentiles: Record<string, ResponseTimePercentiles> = {}
    const apdexT = this.apdexT
    if (window.web.callCount > 0) {
      timeslices[WEB_ROLLUP] = timesliceStats(window.web)
      timeslices[DISPATCHER_ROLLUP] = timesliceStats(window.web)
      percentiles[WEB_ROLLUP] = percentilesOf(window.webTimes, window.web)
    }
    if (window.background.callCount > 0) {
      timeslices[BACKGROUND_ROLLUP] = timesliceStats(window.background)
      percentiles[BACKGROUND_ROLLUP] = percentilesOf(window.backgroundTimes, window.background)
    }
    if (countOf(window.webApdex) > 0) apdex[APDEX_ROLLUP] = apdexStats(window.webApdex, apdexT)
    const add = (name: string, named: NameMetrics | undefined): void => {
      if (named === undefined) return
      timeslices[name] = timesliceStats(named.timeslice)
      // names under the web prefix hold Apdex; a suppressed-only name has none to report
      if (named.apdex !== undefined && countOf(named.apdex) > 0) apdex[`Apdex/${name.slice(WEB_PREFIX_LENGTH)}`] = apdexStats(named.apdex, apdexT)
    }
    for (const [name, named] of window.names) add(name, named)
    add(OVERFLOW_NAME.web, window.webOverflow)
    add(OVERFLOW_NAME.background, window.backgroundOverflow)
    if (logMetrics.enabled) logMetrics('%s %d names, %d web and %d background transactions', reset ? 'harvest' : 'read', window.names.size, window.web.callCount, window.background.callCount)
    return { since: window.since, until, timeslices, apdex, percentiles }
  }
}

/** Epoch ms on the monotonic clock records' `startTime` uses, so `until` never precedes `since`. */
function epochNow(): number {
  return performance.timeOrigin + performance.now()
}

function timesliceStats({ callCount, total, min, max, sumOfSquares }: Timeslice): TimesliceStats {
  return { callCount, total, min, max, sumOfSquares }
}

function countOf(counts: ApdexCounts): number {
  return counts.satisfying + counts.tolerating + counts.frustrating
}

function apdexStats(counts: ApdexCounts, apdexT: number): ApdexStats {
  const { satisfying, tolerating, frustrating } = counts
  return { satisfying, tolerating, frustrating, apdexT, score: counts.score() }
}

function percentilesOf(histogram: Histogram, rollup: Timeslice): ResponseTimePercentiles {
  return {
    p50: histogram.quantile(0.5, rollup.min, rollup.max),
    p95: histogram.quantile(0.95, rollup.min, rollup.max),
    p99: histogram.quantile(0.99, rollup.min, rollup.max)
  }
}

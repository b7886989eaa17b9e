// What the page shows for a window: totals, the payoff, the busiest names and 60-point series, from the ring.
import type { SecondRing } from './ring'
import { Stats } from './stats'
import type { DashboardFigures, DashboardInFlight, DashboardNameRow, DashboardView, DashboardWindow } from './types'

/** The window lengths offered, minutes. */
export const DASHBOARD_WINDOWS: readonly DashboardWindow[] = Object.freeze([1, 5, 15])
/** Points of every chart: one per second over 1 minute, per 5 s over 5, per 15 s over 15. */
export const DASHBOARD_POINTS = 60
/** Rows of each table of names. */
const TOP_NAMES = 10
const PERCENTILES = [0.5, 0.95, 0.99] as const

/** What a view is computed from. */
export interface ViewSources {
  readonly ring: SecondRing
  readonly inFlight: DashboardInFlight
  /** The T shown when no transaction was seen. */
  readonly fallbackApdexT: number
  readonly workers: number | null
}

export function computeView(sources: ViewSources, windowMinutes: DashboardWindow, at: number): DashboardView {
  const { ring, inFlight } = sources
  const last = Math.floor(at / 1000) - 1
  const step = windowMinutes
  const first = last - DASHBOARD_POINTS * step + 1
  const web = new Stats()
  const background = new Stats()
  const asWeb = new Stats()
  const names = new Map<string, { web: boolean; stats: Stats }>()
  const apdexT = new Set<number>()
  const series = {
    start: first * 1000,
    stepSeconds: step,
    webRpm: [] as number[],
    backgroundRpm: [] as number[],
    p50Ms: [] as (number | null)[],
    p95Ms: [] as (number | null)[],
    p99Ms: [] as (number | null)[],
    asWebP95Ms: [] as (number | null)[],
    apdex: [] as (number | null)[],
    asWebApdex: [] as (number | null)[],
    webErrorRate: [] as (number | null)[],
    backgroundErrorRate: [] as (number | null)[],
    inFlightWeb: [] as (number | null)[],
    inFlightBackground: [] as (number | null)[]
  }
  for (let point = 0; point < DASHBOARD_POINTS; point += 1) {
    const from = first + point * step
    const pointWeb = new Stats()
    const pointBackground = new Stats()
    const pointAsWeb = new Stats()
    let inFlightWeb: number | null = null
    let inFlightBackground: number | null = null
    for (const second of ring.between(from, from + step - 1)) {
      pointWeb.merge(second.web)
      pointBackground.merge(second.background)
      pointAsWeb.merge(second.asWeb)
      for (const t of second.apdexT) apdexT.add(t)
      for (const [name, entry] of second.names) {
        let total = names.get(name)
        if (total === undefined) names.set(name, (total = { web: entry.web, stats: new Stats() }))
        total.stats.merge(entry.stats)
      }
      if (second.sampled) {
        inFlightWeb = Math.max(inFlightWeb ?? 0, second.inFlightWeb)
        inFlightBackground = Math.max(inFlightBackground ?? 0, second.inFlightBackground)
      }
    }
    const perMinute = 60 / step
    series.webRpm.push(round(pointWeb.count * perMinute))
    series.backgroundRpm.push(round(pointBackground.count * perMinute))
    const [p50, p95, p99] = percentiles(pointWeb)
    series.p50Ms.push(roundOrNull(p50))
    series.p95Ms.push(roundOrNull(p95))
    series.p99Ms.push(roundOrNull(p99))
    series.asWebP95Ms.push(roundOrNull(percentiles(pointAsWeb)[1]))
    series.apdex.push(roundOrNull(pointWeb.apdexScore()))
    series.asWebApdex.push(roundOrNull(pointAsWeb.apdexScore()))
    series.webErrorRate.push(pointWeb.count === 0 ? null : round(pointWeb.errors / pointWeb.count))
    series.backgroundErrorRate.push(pointBackground.count === 0 ? null : round(pointBackground.errors / pointBackground.count))
    series.inFlightWeb.push(inFlightWeb)
    series.inFlightBackground.push(inFlightBackground)
    web.merge(pointWeb)
    background.merge(pointBackground)
    asWeb.merge(pointAsWeb)
  }
  const open = new Map<string, number>()
  for (const group of inFlight.open) open.set(`${group.type} ${group.name}`, group.count)
  const rows = (webNames: boolean): DashboardNameRow[] =>
    [...names]
      .filter(([, entry]) => entry.web === webNames)
      .sort(([a, x], [b, y]) => y.stats.sum - x.stats.sum || y.stats.count - x.stats.count || (a < b ? -1 : 1))
      .slice(0, TOP_NAMES)
      .map(([name, { stats }]) => ({
        name,
        count: stats.count,
        rpm: stats.count / windowMinutes,
        meanMs: stats.sum / stats.count,
        p95Ms: percentiles(stats)[1] as number,
        maxMs: stats.max,
        errorRate: stats.errors / stats.count,
        apdex: webNames ? stats.apdexScore() : null,
        open: open.get(`${webNames ? 'web' : 'background'} ${name}`) ?? 0
      }))
  return {
    version: 1,
    at,
    windowMinutes,
    apdexT: apdexT.size === 0 ? [sources.fallbackApdexT] : [...apdexT].sort((a, b) => a - b),
    workers: sources.workers,
    web: figures(web, windowMinutes, true),
    background: figures(background, windowMinutes, false),
    asWeb: figures(asWeb, windowMinutes, true),
    inFlight,
    names: { web: rows(true), background: rows(false) },
    series
  }
}

function figures(stats: Stats, windowMinutes: number, web: boolean): DashboardFigures {
  const [p50Ms, p95Ms, p99Ms] = percentiles(stats)
  const empty = stats.count === 0
  return {
    count: stats.count,
    rpm: stats.count / windowMinutes,
    meanMs: empty ? null : stats.sum / stats.count,
    p50Ms,
    p95Ms,
    p99Ms,
    maxMs: empty ? null : stats.max,
    errorRate: empty ? null : stats.errors / stats.count,
    apdex: web ? stats.apdexScore() : null,
    satisfying: stats.satisfying,
    tolerating: stats.tolerating,
    frustrating: stats.frustrating
  }
}

function percentiles(stats: Stats): [number | null, number | null, number | null] {
  if (stats.count === 0) return [null, null, null]
  const [p50, p95, p99] = stats.durations.quantiles(PERCENTILES, stats.count, stats.min, stats.max)
  return [p50, p95, p99]
}

/**
 * Three decimals for the series (microseconds, or a rate to 0.1%): enough for a chart, a third of
 * the JSON. Never for a figure shown as text: rounded again by the page, 0.8049 would read 0.81.
 */
function round(n: number): number {
  return Math.round(n * 1000) / 1000
}

function roundOrNull(n: number | null): number | null {
  return n === null ? null : round(n)
}

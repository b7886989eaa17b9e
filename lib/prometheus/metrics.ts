// The four prom-client metrics of one exporter, registered together or not at all, and unregistered exactly.
import type { Histogram, Metric } from 'prom-client'
import { ErrorCode, TransactionType } from '../index'
import { OptionError } from '../options'
import { ApdexZoneLabel, PrometheusMetricName } from './constants'
import type { ExporterConfig } from './options'
import { promClient } from './prom-client'

export type RequestLabel = 'method' | 'route' | 'status_code'

/** The Apdex counts of one name since the exporter started. */
export interface ApdexTally {
  satisfying: number
  tolerating: number
  frustrating: number
}

/**
 * What the request path counts in plain numbers, handed to prom-client only when it collects (a
 * scrape): a few additions per request instead of a label hash and validation per update.
 */
export interface Tallies {
  readonly inFlight: { web: number; background: number }
  /** By the `name` label value; bounded by the name cap. */
  readonly apdex: Map<string, ApdexTally>
}

/** The exporter's metrics. Summed across cluster workers they stay exact: histograms, counters and a gauge of counts. */
export interface ExporterMetrics {
  readonly requestDuration: Histogram<RequestLabel>
  readonly backgroundDuration: Histogram<'name'>
  readonly tallies: Tallies
  /** @throws {OptionError} `ERR_EBT_ALREADY_REGISTERED` when the registry holds one of the names; then nothing is registered. */
  register(): void
  /** Remove from the registry the metrics registered here, and only those. */
  unregister(): void
}

export function createExporterMetrics(config: ExporterConfig): ExporterMetrics {
  const { prefix, registry } = config
  const tallies: Tallies = { inFlight: { web: 0, background: 0 }, apdex: new Map() }
  // registers: [] so that nothing lands in a registry before every name is known to be free
  const requestDuration = new promClient.Histogram<RequestLabel>({
    name: prefix + PrometheusMetricName.HTTP_SERVER_REQUEST_DURATION,
    help: 'Duration of HTTP server requests classified as web transactions (background ones are left out), in seconds.',
    labelNames: ['method', 'route', 'status_code'],
    buckets: config.webBuckets,
    registers: []
  })
  const backgroundDuration = new promClient.Histogram<'name'>({
    name: prefix + PrometheusMetricName.BACKGROUND_TRANSACTION_DURATION,
    help: 'Duration of background transactions (requests marked background, background tasks), in seconds.',
    labelNames: ['name'],
    buckets: config.backgroundBuckets,
    registers: []
  })
  const apdex = new promClient.Counter<'name' | 'zone'>({
    name: prefix + PrometheusMetricName.APDEX_TRANSACTIONS,
    help: 'Web transactions per Apdex zone (satisfying <= T, tolerating <= 4T, frustrating above or on error), as New Relic counts them.',
    labelNames: ['name', 'zone'],
    registers: [],
    collect() {
      // totals since the start, so a counter still; every zone of a name from its first count,
      // so rate() sees a zone's first transaction too
      apdex.reset()
      for (const [name, counts] of tallies.apdex) {
        apdex.inc({ name, zone: ApdexZoneLabel.SATISFYING }, counts.satisfying)
        apdex.inc({ name, zone: ApdexZoneLabel.TOLERATING }, counts.tolerating)
        apdex.inc({ name, zone: ApdexZoneLabel.FRUSTRATING }, counts.frustrating)
      }
    }
  })
  const inFlight = new promClient.Gauge<'type'>({
    name: prefix + PrometheusMetricName.TRANSACTIONS_IN_FLIGHT,
    help: 'Transactions started and not yet ended, by their current type.',
    labelNames: ['type'],
    registers: [],
    collect() {
      // both series exist from the start, so a dashboard reads 0 rather than no data
      inFlight.set({ type: TransactionType.WEB }, tallies.inFlight.web)
      inFlight.set({ type: TransactionType.BACKGROUND }, tallies.inFlight.background)
    }
  })
  const all: Metric[] = [requestDuration, backgroundDuration, apdex, inFlight]

  return {
    requestDuration,
    backgroundDuration,
    tallies,
    register() {
      for (const metric of all) {
        const name = (metric as unknown as { name: string }).name
        if (registry.getSingleMetric(name) === undefined) continue
        throw new OptionError(
          ErrorCode.ALREADY_REGISTERED,
          `the registry already has a metric named ${name}: close() the exporter registered there first, or give this one its own registry or a prefix`
        )
      }
      for (const metric of all) registry.registerMetric(metric)
    },
    unregister() {
      for (const metric of all) {
        const name = (metric as unknown as { name: string }).name
        if (registry.getSingleMetric(name) === metric) registry.removeSingleMetric(name)
      }
    }
  }
}

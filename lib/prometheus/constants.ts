// Metric names and default buckets of the Prometheus exporter: the contract dashboards are built on.

/** The metric names, before any `prefix`. */
export const PrometheusMetricName = {
  /** Histogram of web transactions only, `{method, route, status_code}`, seconds. */
  HTTP_SERVER_REQUEST_DURATION: 'http_server_request_duration_seconds',
  /** Histogram of background transactions, `{name}`, seconds. */
  BACKGROUND_TRANSACTION_DURATION: 'background_transaction_duration_seconds',
  /** Counter of web transactions per Apdex zone, `{name, zone}`. */
  APDEX_TRANSACTIONS: 'apdex_transactions_total',
  /** Gauge of started, not yet ended transactions, `{type}`. */
  TRANSACTIONS_IN_FLIGHT: 'transactions_in_flight'
} as const
/** One of {@link PrometheusMetricName}'s values. */
export type PrometheusMetricName = (typeof PrometheusMetricName)[keyof typeof PrometheusMetricName]

/** The `zone` label values of the Apdex counter, New Relic's zones. */
export const ApdexZoneLabel = { SATISFYING: 'satisfying', TOLERATING: 'tolerating', FRUSTRATING: 'frustrating' } as const
/** One of {@link ApdexZoneLabel}'s values. */
export type ApdexZoneLabel = (typeof ApdexZoneLabel)[keyof typeof ApdexZoneLabel]

/** OpenTelemetry's HTTP server duration buckets (semantic conventions, `http.server.request.duration`), seconds. */
export const DEFAULT_WEB_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10])

/** Long buckets for background work (streams, exports, jobs), from 100 ms up to an hour, seconds. */
export const DEFAULT_BACKGROUND_BUCKETS: readonly number[] = Object.freeze([0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600])

/** The T of the web buckets when no `agent` is given: the default agent's, which is also createAgent's default. */
export const DEFAULT_APDEX_T = 0.5

// What this integration writes, as data: metric, attribute and event names, and the bucket boundaries.

/** The metric names this integration records. */
export const MetricName = {
  /** Web transactions, the stable HTTP semantic convention's histogram (seconds). */
  HTTP_SERVER_REQUEST_DURATION: 'http.server.request.duration',
  /** Background transactions (seconds); a Prometheus exporter shows it as `background_transaction_duration_seconds`. */
  BACKGROUND_TRANSACTION_DURATION: 'background_transaction.duration'
} as const
/** One of {@link MetricName}'s values. */
export type MetricName = (typeof MetricName)[keyof typeof MetricName]

/** The attribute names this integration sets on spans, events and its background histogram. */
export const AttributeName = {
  /** `'web'` or `'background'`: the classification, on the span at the start and at each change. */
  TYPE: 'express_background_task.type',
  /** The previous type, on a classify event. */
  PREVIOUS_TYPE: 'express_background_task.previous_type',
  /** The full transaction name (`OtherTransaction/Expressjs/GET//events`), known when the transaction ends. */
  NAME: 'express_background_task.name'
} as const
/** One of {@link AttributeName}'s values. */
export type AttributeName = (typeof AttributeName)[keyof typeof AttributeName]

/** The span event added when a flag or helper changes the classification. */
export const CLASSIFY_EVENT = 'express_background_task.classify'

/** The name of the meter instrumentation-http records with (its instrumentation scope). */
export const INSTRUMENTATION_HTTP_METER = '@opentelemetry/instrumentation-http'

/** instrumentation-http's server duration histograms: the old semantic conventions' (ms) and the stable one (s). */
export const INSTRUMENTATION_HTTP_SERVER_DURATIONS = ['http.server.duration', 'http.server.request.duration'] as const

/** The stable HTTP semantic convention's recommended boundaries for `http.server.request.duration`, in seconds. */
export const HTTP_SERVER_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10
])

/**
 * Boundaries for background transactions, in seconds: streams, exports and jobs last up to an hour.
 * The Prometheus exporter's default `backgroundBuckets`, so both read the same.
 */
export const BACKGROUND_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600
])

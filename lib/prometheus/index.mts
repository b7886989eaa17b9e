// ESM entry of express-background-task/prometheus: the CommonJS build's exports (one instance for both loaders).
import cjs from './index.js'

export const { createPrometheusExporter, PrometheusMetricName, ApdexZoneLabel, DEFAULT_WEB_BUCKETS, DEFAULT_BACKGROUND_BUCKETS } = cjs
export type * from './index.js'
// `export const { ... }` above gives values only; these names are types too.
export type PrometheusMetricName = import('./index.js').PrometheusMetricName
export type ApdexZoneLabel = import('./index.js').ApdexZoneLabel

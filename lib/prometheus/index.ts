// express-background-task/prometheus: the classification in Prometheus (peer: prom-client).
export { createPrometheusExporter } from './exporter'
export { PrometheusMetricName, ApdexZoneLabel, DEFAULT_WEB_BUCKETS, DEFAULT_BACKGROUND_BUCKETS } from './constants'
export type { MetricsHandler, PrometheusExporter, PrometheusExporterOptions, PrometheusRegistry } from './types'

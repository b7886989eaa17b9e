// Public types of express-background-task/prometheus: what users import, nothing internal.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { OpenMetricsContentType, PrometheusContentType, Registry } from 'prom-client'
import type { Agent } from '../index'

/** A prom-client registry of either exposition format. */
export type PrometheusRegistry = Registry<PrometheusContentType> | Registry<OpenMetricsContentType>

/** Options of {@link createPrometheusExporter}. Every key is optional; `undefined` counts as absent. */
export interface PrometheusExporterOptions {
  /** The registry the metrics are registered in. Defaults to prom-client's default registry (`register`). */
  registry?: PrometheusRegistry | undefined
  /**
   * Record only this agent's transactions; its `apdexT` sets the T and 4T web buckets. Defaults to
   * every agent's transactions, with the T and 4T buckets of the default `apdexT`, 0.5 s.
   */
  agent?: Agent | undefined
  /** Prepended to every metric name, e.g. `'myapp_'`: letters, digits and `_`, not starting with a digit. Defaults to `''`. */
  prefix?: string | undefined
  /**
   * Upper bounds in seconds of the web histogram's buckets; T and 4T are always added. Defaults to
   * OpenTelemetry's HTTP server buckets ({@link DEFAULT_WEB_BUCKETS}).
   */
  webBuckets?: readonly number[] | undefined
  /** Upper bounds in seconds of the background histogram's buckets. Defaults to {@link DEFAULT_BACKGROUND_BUCKETS} (up to an hour). */
  backgroundBuckets?: readonly number[] | undefined
}

/** A request handler serving the registry in the Prometheus text format. */
export type MetricsHandler = (req: IncomingMessage, res: ServerResponse) => void

/** What {@link createPrometheusExporter} returns. */
export interface PrometheusExporter {
  /**
   * A `(req, res)` handler serving the registry's metrics with its content type, e.g.
   * `app.get('/metrics', exporter.handler())`.
   */
  handler(): MetricsHandler
  /** Stop recording, and unregister the metrics this exporter registered (and only those). Idempotent. */
  close(): void
}

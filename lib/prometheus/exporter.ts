// createPrometheusExporter: validate options, register the metrics, subscribe to the channels, serve the registry.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ChannelName } from '../index'
import { assertFactoryCalled } from '../options'
import { logPrometheus } from './debug'
import { createExporterMetrics } from './metrics'
import { parseExporterOptions } from './options'
import { createChannelHandlers } from './recorder'
import type { MetricsHandler, PrometheusExporter, PrometheusExporterOptions, PrometheusRegistry } from './types'

/**
 * Export the package's transactions to Prometheus: web ones on
 * `http_server_request_duration_seconds{method,route,status_code}` (so a p95 panel loses the streams
 * marked background), background ones on `background_transaction_duration_seconds{name}`, Apdex
 * zones on `apdex_transactions_total{name,zone}` and `transactions_in_flight{type}`.
 *
 * @param options - registry (defaults to prom-client's default `register`), agent (defaults to all
 *   agents), prefix (defaults to `''`), webBuckets, backgroundBuckets.
 * @returns `{ handler(), close() }`.
 * @throws {TypeError} `ERR_EBT_OPTIONS_TYPE` or `ERR_EBT_UNKNOWN_OPTION` for a bad option;
 *   `ERR_EBT_ALREADY_REGISTERED` when the registry already holds one of its metric names (the
 *   metrics registered there first keep working).
 * @example
 * const exporter = createPrometheusExporter()
 * app.get('/metrics', exporter.handler())
 */
export function createPrometheusExporter(options?: PrometheusExporterOptions): PrometheusExporter {
  const config = parseExporterOptions(options)
  const metrics = createExporterMetrics(config)
  metrics.register()
  const { onStart, onClassify, onEnd } = createChannelHandlers(metrics, config.agent)
  subscribe(ChannelName.START, onStart)
  subscribe(ChannelName.CLASSIFY, onClassify)
  subscribe(ChannelName.END, onEnd)
  logPrometheus('export to a registry with prefix %o, web buckets %o', config.prefix, config.webBuckets)
  let closed = false

  return {
    handler: function handler(): MetricsHandler {
      // Mounted uncalled, app.get('/metrics', exporter.handler) would answer with a function, not metrics.
      assertFactoryCalled(arguments[0], 'exporter.handler')
      return createMetricsHandler(config.registry)
    },
    close: function close(): void {
      if (closed) return
      closed = true
      unsubscribe(ChannelName.START, onStart)
      unsubscribe(ChannelName.CLASSIFY, onClassify)
      unsubscribe(ChannelName.END, onEnd)
      metrics.unregister()
      logPrometheus('close the exporter with prefix %o', config.prefix)
    }
  }
}

/** Serve the registry's text exposition; a failing collect answers 500 and is logged, never thrown. */
function createMetricsHandler(registry: PrometheusRegistry): MetricsHandler {
  return function prometheusMetrics(_req: IncomingMessage, res: ServerResponse): void {
    registry.metrics().then(
      function sendMetrics(text) {
        res.statusCode = 200
        res.setHeader('Content-Type', registry.contentType)
        res.end(text)
      },
      function sendFailure(err: unknown) {
        logPrometheus('fail to collect the registry: %O', err)
        if (res.headersSent) return void res.destroy()
        res.statusCode = 500
        res.setHeader('Content-Type', 'text/plain; charset=utf-8')
        res.end('metrics collection failed\n')
      }
    )
  }
}

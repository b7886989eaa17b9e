// Type test: express-background-task/prometheus as a CommonJS consumer uses it.
import express from 'express'
import { Registry, openMetricsContentType, type OpenMetricsContentType } from 'prom-client'
import { createAgent } from 'express-background-task'
import {
  createPrometheusExporter,
  DEFAULT_WEB_BUCKETS,
  PrometheusMetricName,
  type MetricsHandler,
  type PrometheusExporter,
  type PrometheusExporterOptions
} from 'express-background-task/prometheus'

const options: PrometheusExporterOptions = { registry: new Registry(), agent: createAgent({ apdexT: 0.3 }), prefix: 'app_', webBuckets: [0.1, 1], backgroundBuckets: [60, 600] }
const exporter: PrometheusExporter = createPrometheusExporter(options)
const app = express()
const handler: MetricsHandler = exporter.handler()
app.get('/metrics', handler)
exporter.close()
createPrometheusExporter()
const openMetrics = new Registry<OpenMetricsContentType>()
openMetrics.setContentType(openMetricsContentType)
createPrometheusExporter({ registry: openMetrics, webBuckets: DEFAULT_WEB_BUCKETS })
export const name: 'transactions_in_flight' = PrometheusMetricName.TRANSACTIONS_IN_FLIGHT

// @ts-expect-error -- typo of prefix
createPrometheusExporter({ prefx: 'app_' })
// @ts-expect-error -- buckets are an array
createPrometheusExporter({ webBuckets: 1 })
// @ts-expect-error -- not a registry
createPrometheusExporter({ registry: {} })
// @ts-expect-error -- handler is a factory: exporter.handler(), not exporter.handler
app.get('/metrics', (req, res) => exporter.handler(req, res))

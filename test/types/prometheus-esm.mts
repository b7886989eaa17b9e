// Type test: the ESM entry of express-background-task/prometheus declares the same API as the CommonJS one.
import { createPrometheusExporter, PrometheusMetricName, ApdexZoneLabel, type PrometheusExporter, type PrometheusExporterOptions } from 'express-background-task/prometheus'
import type * as Cjs from 'express-background-task/prometheus' with { 'resolution-mode': 'require' }

type Equal<T, U> = (<G>() => G extends T ? 1 : 2) extends <G>() => G extends U ? 1 : 2 ? true : false
function expectType<T extends true>(): T | void {}

expectType<Equal<typeof createPrometheusExporter, typeof Cjs.createPrometheusExporter>>()
expectType<Equal<typeof PrometheusMetricName, typeof Cjs.PrometheusMetricName>>()
expectType<Equal<PrometheusExporterOptions, Cjs.PrometheusExporterOptions>>()
expectType<Equal<PrometheusExporter, Cjs.PrometheusExporter>>()
export const zone: ApdexZoneLabel = ApdexZoneLabel.TOLERATING
export const metric: PrometheusMetricName = 'apdex_transactions_total'

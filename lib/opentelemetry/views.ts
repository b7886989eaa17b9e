// The Views that drop instrumentation-http's own server duration histogram, so this package's is the only one.
import type { ViewOptions } from '@opentelemetry/sdk-metrics'
import { requirePeer } from '../peer'
import { INSTRUMENTATION_HTTP_METER, INSTRUMENTATION_HTTP_SERVER_DURATIONS } from './names'

/**
 * Views for `new MeterProvider({ views })` (or NodeSDK's `views`) that drop instrumentation-http's
 * server duration histogram — the old `http.server.duration` (ms) and the stable
 * `http.server.request.duration` (s), whichever `OTEL_SEMCONV_STABILITY_OPT_IN` makes it record —
 * on instrumentation-http's meter only: this package's `http.server.request.duration`, recorded on a
 * meter of its own, is kept, and instrumentation-http's client histograms and spans are untouched.
 * @returns two `ViewOptions` of `@opentelemetry/sdk-metrics` 2.x.
 * @throws {TypeError} `ERR_EBT_PEER_MISSING` when `@opentelemetry/sdk-metrics` is not installed.
 */
export function dropInstrumentationHttpDurationViews(): ViewOptions[] {
  const { AggregationType } = requirePeer<typeof import('@opentelemetry/sdk-metrics')>('@opentelemetry/sdk-metrics', 'opentelemetry')
  return INSTRUMENTATION_HTTP_SERVER_DURATIONS.map((instrumentName) => ({
    meterName: INSTRUMENTATION_HTTP_METER,
    instrumentName,
    aggregation: { type: AggregationType.DROP }
  }))
}

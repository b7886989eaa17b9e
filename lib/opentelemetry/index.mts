// ESM entry of express-background-task/opentelemetry: the CommonJS build's exports, re-exported by name (one instance for both loaders).
import cjs from './index.js'

export const {
  instrumentOpenTelemetry,
  dropInstrumentationHttpDurationViews,
  isLongLivedRequest,
  MetricName,
  AttributeName,
  CLASSIFY_EVENT,
  INSTRUMENTATION_HTTP_METER,
  HTTP_SERVER_DURATION_BUCKETS,
  BACKGROUND_DURATION_BUCKETS
} = cjs
export type * from './index.js'
// `export const { ... }` above gives values only; these names are types too.
export type MetricName = import('./index.js').MetricName
export type AttributeName = import('./index.js').AttributeName

// express-background-task/opentelemetry: the web/background classification on OpenTelemetry metrics and spans (peer: @opentelemetry/api).
import './api'
export { instrumentOpenTelemetry } from './instrument'
export { dropInstrumentationHttpDurationViews } from './views'
export { isLongLivedRequest } from './ignore-hook'
export {
  MetricName,
  AttributeName,
  CLASSIFY_EVENT,
  INSTRUMENTATION_HTTP_METER,
  HTTP_SERVER_DURATION_BUCKETS,
  BACKGROUND_DURATION_BUCKETS
} from './names'
export type { OpenTelemetryOptions, OpenTelemetryInstrumentation } from './types'

// Type test: the ESM entry of the opentelemetry subpath.
import { instrumentOpenTelemetry, MetricName, type OpenTelemetryInstrumentation } from 'express-background-task/opentelemetry'

const instrumentation: OpenTelemetryInstrumentation = instrumentOpenTelemetry({})
instrumentation.stop()
export const name: MetricName = MetricName.HTTP_SERVER_REQUEST_DURATION

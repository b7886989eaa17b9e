// Type test: express-background-task/opentelemetry as a user sets it up with the SDK's providers.
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http'
import { createAgent } from 'express-background-task'
import {
  AttributeName,
  dropInstrumentationHttpDurationViews,
  instrumentOpenTelemetry,
  isLongLivedRequest,
  MetricName,
  type OpenTelemetryInstrumentation,
  type OpenTelemetryOptions
} from 'express-background-task/opentelemetry'

const meterProvider = new MeterProvider({ views: dropInstrumentationHttpDurationViews() })
const options: OpenTelemetryOptions = { meterProvider, agent: createAgent() }
const instrumentation: OpenTelemetryInstrumentation = instrumentOpenTelemetry(options)
instrumentation.stop()
instrumentOpenTelemetry().stop()
export const http = new HttpInstrumentation({ ignoreIncomingRequestHook: isLongLivedRequest })
export const type: 'express_background_task.type' = AttributeName.TYPE
export const metric: MetricName = MetricName.BACKGROUND_TRANSACTION_DURATION

// @ts-expect-error -- a typo of meterProvider
instrumentOpenTelemetry({ meterprovider: meterProvider })
// @ts-expect-error -- not a provider
instrumentOpenTelemetry({ tracerProvider: 'global' })

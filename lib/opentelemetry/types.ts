// Public types of express-background-task/opentelemetry: what users import, and nothing internal.
import type { MeterProvider, TracerProvider } from '@opentelemetry/api'
import type { Agent } from '../types'

/** Options of {@link instrumentOpenTelemetry}. Every key is optional; `undefined` counts as absent. */
export interface OpenTelemetryOptions {
  /** The provider of the meter the durations are recorded with. Defaults to the global one (`metrics.getMeterProvider()`) as it is at the call. */
  meterProvider?: MeterProvider | undefined
  /**
   * The provider of the tracer that makes a span for a background task that has no span of its own
   * (see the README). Defaults to the global one (`trace.getTracerProvider()`), looked up at each use.
   */
  tracerProvider?: TracerProvider | undefined
  /** Keep to the transactions of this agent (made by `createAgent()`). Defaults to every agent's. */
  agent?: Agent | undefined
}

/** What {@link instrumentOpenTelemetry} returns. */
export interface OpenTelemetryInstrumentation {
  /** Unsubscribe: no more spans are annotated and nothing more is recorded. Idempotent. */
  stop(): void
}

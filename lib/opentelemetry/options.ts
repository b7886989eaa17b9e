// Options of instrumentOpenTelemetry(): validated once, at the call, with coded TypeErrors.
import { inspect } from 'node:util'
import type { MeterProvider, TracerProvider } from '@opentelemetry/api'
import { ErrorCode } from '../index'
import { assertOptionsObject, OptionError } from '../options'
import type { Agent } from '../types'
import type { OpenTelemetryOptions } from './types'

const OPTION_KEYS = ['meterProvider', 'tracerProvider', 'agent'] as const

/** Options after validation; absent ones stay undefined (the globals are looked up by the caller). */
export interface OpenTelemetryConfig {
  meterProvider: MeterProvider | undefined
  tracerProvider: TracerProvider | undefined
  agent: Agent | undefined
}

/** Validate the options of instrumentOpenTelemetry(). @throws {OptionError} `ERR_EBT_OPTIONS_TYPE`, `ERR_EBT_UNKNOWN_OPTION` */
export function parseOpenTelemetryOptions(passed: Readonly<OpenTelemetryOptions> | undefined): OpenTelemetryConfig {
  const { meterProvider, tracerProvider, agent } = assertOptionsObject(passed, 'instrumentOpenTelemetry', OPTION_KEYS)
  if (meterProvider !== undefined && !hasMethods(meterProvider, ['getMeter'])) {
    throw new OptionError(
      ErrorCode.OPTIONS_TYPE,
      `meterProvider must be an OpenTelemetry MeterProvider (with getMeter()), got ${inspect(meterProvider, { depth: 0 })}`
    )
  }
  if (tracerProvider !== undefined && !hasMethods(tracerProvider, ['getTracer'])) {
    throw new OptionError(
      ErrorCode.OPTIONS_TYPE,
      `tracerProvider must be an OpenTelemetry TracerProvider (with getTracer()), got ${inspect(tracerProvider, { depth: 0 })}`
    )
  }
  if (agent !== undefined) {
    if (!hasMethods(agent, ['middleware', 'backgroundTask', 'onTransactionEnd'])) {
      throw new OptionError(ErrorCode.OPTIONS_TYPE, `agent must be an agent made by createAgent(), got ${inspect(agent, { depth: 0 })}`)
    }
    // The package root has an agent's methods, but its transactions' `agent` is the hidden default agent.
    if (typeof (agent as { createAgent?: unknown }).createAgent === 'function') {
      throw new OptionError(
        ErrorCode.OPTIONS_TYPE,
        'agent was given the package itself: pass an agent made by createAgent(), or leave agent out to see every agent'
      )
    }
  }
  return {
    meterProvider: meterProvider as MeterProvider | undefined,
    tracerProvider: tracerProvider as TracerProvider | undefined,
    agent: agent as Agent | undefined
  }
}

function hasMethods(value: unknown, methods: readonly string[]): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    methods.every((method) => typeof (value as Record<string, unknown>)[method] === 'function')
  )
}

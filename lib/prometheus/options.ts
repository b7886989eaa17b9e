// Exporter options: defaults and validation at construction, with coded TypeErrors.
import { inspect } from 'node:util'
import { ErrorCode, type Agent } from '../index'
import { assertOptionsObject, OptionError, parseAgentOption } from '../options'
import { DEFAULT_APDEX_T, DEFAULT_BACKGROUND_BUCKETS, DEFAULT_WEB_BUCKETS } from './constants'
import { promClient } from './prom-client'
import type { PrometheusExporterOptions, PrometheusRegistry } from './types'

/** Exporter options after validation. */
export interface ExporterConfig {
  readonly registry: PrometheusRegistry
  readonly agent: Agent | undefined
  readonly prefix: string
  /** The T of the web buckets, seconds. */
  readonly apdexT: number
  /** Sorted, unique, with T and 4T. */
  readonly webBuckets: number[]
  readonly backgroundBuckets: number[]
}

const OPTION_KEYS = ['registry', 'agent', 'prefix', 'webBuckets', 'backgroundBuckets'] as const
const WHERE = 'createPrometheusExporter'
// prometheus.io: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, and colons are kept for recording rules.
const PREFIX_PATTERN = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const REGISTRY_METHODS = ['registerMetric', 'getSingleMetric', 'removeSingleMetric', 'metrics'] as const

/** Validate the exporter's options once. @throws {OptionError} `ERR_EBT_OPTIONS_TYPE` or `ERR_EBT_UNKNOWN_OPTION` */
export function parseExporterOptions(passed: Readonly<PrometheusExporterOptions> | undefined): ExporterConfig {
  const options = assertOptionsObject(passed, WHERE, OPTION_KEYS)
  // it reads the agent's metrics() too
  const agent = options.agent === undefined ? undefined : parseAgentOption(options.agent, WHERE, ['metrics'])
  const apdexT = agent === undefined ? DEFAULT_APDEX_T : agent.apdexT
  const webBuckets = parseBuckets(options.webBuckets, 'webBuckets', DEFAULT_WEB_BUCKETS)
  return {
    registry: options.registry === undefined ? promClient.register : parseRegistry(options.registry),
    agent,
    prefix: options.prefix === undefined ? '' : parsePrefix(options.prefix),
    apdexT,
    // a T and 4T bound make the classic bucket Apdex, (le=T + le=4T) / 2 / count, computable
    webBuckets: sortedUnique([...webBuckets, apdexT, 4 * apdexT]),
    backgroundBuckets: sortedUnique(parseBuckets(options.backgroundBuckets, 'backgroundBuckets', DEFAULT_BACKGROUND_BUCKETS))
  }
}

// Duck-typed rather than instanceof: an app with two copies of prom-client still passes its own registry.
function parseRegistry(registry: unknown): PrometheusRegistry {
  const missing = missingMethods(registry, REGISTRY_METHODS)
  if (missing.length === 0 && typeof (registry as { contentType?: unknown }).contentType === 'string') return registry as PrometheusRegistry
  throw new OptionError(
    ErrorCode.OPTIONS_TYPE,
    `${WHERE} option registry must be a prom-client Registry (new Registry() or the default register), got ${inspect(registry, { depth: 0 })}`
  )
}

function parsePrefix(prefix: unknown): string {
  if (prefix === '' || (typeof prefix === 'string' && PREFIX_PATTERN.test(prefix))) return prefix
  throw new OptionError(
    ErrorCode.OPTIONS_TYPE,
    `${WHERE} option prefix must be letters, digits and _, not starting with a digit (e.g. 'myapp_'), got ${inspect(prefix)}`
  )
}

function parseBuckets(buckets: unknown, key: string, defaults: readonly number[]): number[] {
  if (buckets === undefined) return [...defaults]
  if (Array.isArray(buckets) && buckets.length > 0 && buckets.every((bound) => typeof bound === 'number' && Number.isFinite(bound) && bound > 0)) {
    return [...(buckets as number[])]
  }
  throw new OptionError(
    ErrorCode.OPTIONS_TYPE,
    `${WHERE} option ${key} must be a non-empty array of finite upper bounds in seconds greater than 0, got ${inspect(buckets)}`
  )
}

function missingMethods(value: unknown, methods: readonly string[]): string[] {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return [...methods]
  return methods.filter((method) => typeof (value as Record<string, unknown>)[method] !== 'function')
}

function sortedUnique(bounds: number[]): number[] {
  return [...new Set(bounds)].sort((a, b) => a - b)
}

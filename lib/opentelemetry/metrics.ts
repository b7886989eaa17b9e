// Ended transactions on OpenTelemetry histograms: web ones on http.server.request.duration, background ones on their own.
import type { Attributes, Histogram, MeterProvider } from '@opentelemetry/api'
import type { TransactionRecord } from '../types'
import { api } from './api'
import { AttributeName, BACKGROUND_DURATION_BUCKETS, HTTP_SERVER_DURATION_BUCKETS, MetricName } from './names'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const PACKAGE = require('../../package.json') as { name: string; version: string }

/** The route the core gives requests nothing matched; the semantic conventions leave `http.route` out then. */
const NOT_FOUND_PATH = '(not found)'
/** Methods the HTTP semantic conventions know; any other is recorded as `_OTHER` (bounded cardinality). */
const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'QUERY', 'TRACE'])
const OTHER = '_OTHER'

/** The two histograms of one meter provider, and how to record a record on the right one. */
export interface DurationRecorder {
  /** Record an ended transaction by its final type; `urlScheme` comes from the request's server span when known. */
  record(record: TransactionRecord, urlScheme: string | undefined): void
}

/** Create the instruments on a meter named after the package, so a View can tell them from instrumentation-http's. */
export function createDurationRecorder(meterProvider: MeterProvider | undefined): DurationRecorder {
  const meter = (meterProvider ?? api.metrics.getMeterProvider()).getMeter(PACKAGE.name, PACKAGE.version)
  const web: Histogram = meter.createHistogram(MetricName.HTTP_SERVER_REQUEST_DURATION, {
    description: 'Duration of HTTP server requests classified as web transactions (background ones are left out).',
    unit: 's',
    valueType: api.ValueType.DOUBLE,
    advice: { explicitBucketBoundaries: [...HTTP_SERVER_DURATION_BUCKETS] }
  })
  const background: Histogram = meter.createHistogram(MetricName.BACKGROUND_TRANSACTION_DURATION, {
    description: 'Duration of background transactions: requests marked as background tasks, and backgroundTask() runs.',
    unit: 's',
    valueType: api.ValueType.DOUBLE,
    advice: { explicitBucketBoundaries: [...BACKGROUND_DURATION_BUCKETS] }
  })

  return {
    record(record, urlScheme) {
      const seconds = record.duration / 1000
      if (record.type === 'background') background.record(seconds, backgroundAttributes(record))
      else web.record(seconds, webAttributes(record, urlScheme))
    }
  }
}

/** The semantic-convention attributes of a web transaction; one not made by a request (a task turned web) is told by its name. */
function webAttributes(record: TransactionRecord, urlScheme: string | undefined): Attributes {
  const attributes: Attributes = {}
  if (record.method === undefined) {
    attributes['http.request.method'] = OTHER
    attributes[AttributeName.NAME] = record.name
  } else {
    attributes['http.request.method'] = KNOWN_METHODS.has(record.method) ? record.method : OTHER
    attributes['url.scheme'] = urlScheme ?? 'http'
    if (record.path !== undefined && record.path !== NOT_FOUND_PATH) attributes['http.route'] = record.path
    if (record.statusCode !== undefined) attributes['http.response.status_code'] = record.statusCode
  }
  const errorType = errorTypeOf(record)
  if (errorType !== undefined) attributes['error.type'] = errorType
  return attributes
}

function backgroundAttributes(record: TransactionRecord): Attributes {
  const attributes: Attributes = { [AttributeName.NAME]: record.name }
  const errorType = errorTypeOf(record)
  if (errorType !== undefined) attributes['error.type'] = errorType
  return attributes
}

/** `error.type`: the noticed error's class, else the status code of a 5xx answer, else none. */
function errorTypeOf(record: TransactionRecord): string | undefined {
  const error = record.error
  if (error !== undefined) {
    const className = (error as { constructor?: { name?: unknown } }).constructor?.name
    if (typeof className === 'string' && className !== '' && className !== 'Object') return className
    return typeof error.name === 'string' && error.name !== '' ? error.name : OTHER
  }
  if (record.statusCode !== undefined && record.statusCode >= 500) return String(record.statusCode)
  return undefined
}

// The classification on spans: the span active when a transaction starts carries its type, live; a task without one gets its own.
import type { Attributes, Span, Tracer, TracerProvider } from '@opentelemetry/api'
import type { Transaction, TransactionRecord, TransactionType } from '../types'
import { api } from './api'
import { AttributeName, CLASSIFY_EVENT } from './names'

/**
 * Where instrumentation-http keeps its server span in the request's context (@opentelemetry/core's
 * RPC metadata, read by instrumentation-express too); context keys are `Symbol.for` their description.
 */
const RPC_METADATA_KEY = api.createContextKey('OpenTelemetry SDK Context Key RPC_METADATA')

// eslint-disable-next-line @typescript-eslint/no-require-imports
const PACKAGE = require('../../package.json') as { name: string; version: string }

/** Follows each transaction's span from start to end. */
export interface SpanTracker {
  start(tx: Transaction): void
  classify(tx: Transaction, type: TransactionType, previousType: TransactionType): void
  /**
   * Let go of the transaction's span after naming it on the span (when the transaction was recorded).
   * @returns the span's `url.scheme` when the span was a server span that has it.
   */
  end(tx: Transaction, record: TransactionRecord | undefined): string | undefined
}

/**
 * A span belongs to the first transaction that starts while it is active (and recording), until that
 * one ends: a `backgroundTask()` run inside a request must not relabel the request's server span as
 * background; it gets a span of its own instead, a child of the span active when it started.
 */
export function createSpanTracker(tracerProvider: TracerProvider | undefined): SpanTracker {
  /** The span each transaction claimed. */
  const spans = new WeakMap<Transaction, Span>()
  /** Spans claimed by a transaction that has not ended. */
  const claimed = new WeakSet<Span>()
  /** The span that was active (claimed by another) when a transaction without one of its own started. */
  const parents = new WeakMap<Transaction, Span>()
  let tracer: Tracer | undefined

  return {
    start(tx) {
      const context = api.context.active()
      const active = api.trace.getSpan(context)
      // Inside an instrumented request the request's span is instrumentation-http's server span, not
      // the active one: instrumentation-express runs each middleware, this package's too, in a span of its own.
      const candidate = (context.getValue(RPC_METADATA_KEY) as { span?: Span } | undefined)?.span ?? active
      if (candidate !== undefined && !claimed.has(candidate) && candidate.isRecording()) {
        claimed.add(candidate)
        spans.set(tx, candidate)
        candidate.setAttribute(AttributeName.TYPE, tx.type)
      } else if (active !== undefined) {
        parents.set(tx, active)
      }
    },

    classify(tx, type, previousType) {
      const span = spans.get(tx)
      if (span === undefined || !span.isRecording()) return
      span.setAttribute(AttributeName.TYPE, type)
      span.addEvent(CLASSIFY_EVENT, { [AttributeName.TYPE]: type, [AttributeName.PREVIOUS_TYPE]: previousType })
    },

    end(tx, record) {
      const span = spans.get(tx)
      if (span === undefined) {
        const parent = parents.get(tx)
        if (parent !== undefined) parents.delete(tx)
        // A background task (no request) with no span of its own: one, after the fact, timed as the transaction.
        if (record !== undefined && record.method === undefined) spanForTask(record, parent)
        return undefined
      }
      spans.delete(tx)
      claimed.delete(span)
      if (record !== undefined && span.isRecording()) {
        span.setAttribute(AttributeName.TYPE, record.type)
        span.setAttribute(AttributeName.NAME, record.name)
      }
      return urlSchemeOf(span)
    }
  }

  function spanForTask(record: TransactionRecord, parent: Span | undefined): void {
    tracer ??= (tracerProvider ?? api.trace.getTracerProvider()).getTracer(PACKAGE.name, PACKAGE.version)
    const context = parent === undefined ? api.ROOT_CONTEXT : api.trace.setSpan(api.ROOT_CONTEXT, parent)
    const attributes: Attributes = { [AttributeName.TYPE]: record.type, [AttributeName.NAME]: record.name }
    const span = tracer.startSpan(record.name, { kind: api.SpanKind.INTERNAL, startTime: record.startTime, attributes }, context)
    if (record.error !== undefined) {
      span.recordException(record.error)
      span.setStatus({ code: api.SpanStatusCode.ERROR, message: record.error.message })
    }
    span.end(record.startTime + record.duration)
  }
}

/** instrumentation-http puts `url.scheme` on its server span; an SDK span lets it be read back. */
function urlSchemeOf(span: Span): string | undefined {
  const scheme = (span as Partial<{ attributes: Attributes }>).attributes?.['url.scheme']
  return typeof scheme === 'string' ? scheme : undefined
}

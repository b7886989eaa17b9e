// The frozen TransactionRecord listeners and subscribers receive, built once from an ended transaction.
import { performance } from 'node:perf_hooks'
import type { Transaction } from './transaction'
import type { TransactionRecord } from './types'

/** The attributes of the many records that have none: one frozen object, not a new one frozen each time. */
const NO_ATTRIBUTES: Readonly<Record<string, unknown>> = Object.freeze({})
/** Fixed for the process; read once (the getter costs as much as the rest of a start time). */
const TIME_ORIGIN = performance.timeOrigin

export function buildRecord(tx: Transaction): TransactionRecord {
  const attributes = tx.attributes
  const record: Record<string, unknown> = {
    id: tx.id,
    type: tx.type,
    name: tx.name,
    startTime: TIME_ORIGIN + tx.startMono,
    duration: tx.duration,
    attributes: attributes === undefined ? NO_ATTRIBUTES : Object.freeze({ ...attributes }),
    suppressApdexMetric: tx.suppressApdex
  }
  if (tx.error !== undefined) record.error = tx.error
  if (tx.method !== undefined) {
    record.method = tx.method
    record.path = tx.path
    if (tx.statusCode !== undefined) record.statusCode = tx.statusCode
    record.aborted = tx.aborted
  }
  return Object.freeze(record) as unknown as TransactionRecord
}

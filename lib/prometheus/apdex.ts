// The Apdex zone of one ended web transaction, as New Relic and the package's metrics() count it.
import type { TransactionRecord } from '../index'
import { ApdexZoneLabel } from './constants'

/**
 * A failed transaction (a noticed error, a 5xx status, or a client gone before any response was
 * sent) frustrates whatever its speed; otherwise
 * up to T satisfies, up to 4T is tolerated, and slower frustrates.
 * @param seconds - the transaction's duration.
 * @param apdexT - the threshold T of the transaction's agent, seconds.
 */
export function apdexZoneOf(record: TransactionRecord, seconds: number, apdexT: number): ApdexZoneLabel {
  const statusCode = record.statusCode
  const failed = record.error !== undefined || (statusCode === undefined ? record.aborted === true : statusCode >= 500)
  if (failed) return ApdexZoneLabel.FRUSTRATING
  if (seconds <= apdexT) return ApdexZoneLabel.SATISFYING
  return seconds <= 4 * apdexT ? ApdexZoneLabel.TOLERATING : ApdexZoneLabel.FRUSTRATING
}

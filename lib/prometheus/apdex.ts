// The Apdex zone of one ended web transaction, as New Relic and the package's metrics() count it.
import type { TransactionRecord } from '../index'
import { ApdexZoneLabel } from './constants'

/**
 * A failed transaction (a noticed error, or a 5xx status) frustrates whatever its speed; otherwise
 * up to T satisfies, up to 4T is tolerated, and slower frustrates.
 * @param seconds - the transaction's duration.
 * @param apdexT - the threshold T of the transaction's agent, seconds.
 */
export function apdexZoneOf(record: TransactionRecord, seconds: number, apdexT: number): ApdexZoneLabel {
  const statusCode = record.statusCode
  if (record.error !== undefined || (statusCode !== undefined && statusCode >= 500)) return ApdexZoneLabel.FRUSTRATING
  if (seconds <= apdexT) return ApdexZoneLabel.SATISFYING
  return seconds <= 4 * apdexT ? ApdexZoneLabel.TOLERATING : ApdexZoneLabel.FRUSTRATING
}

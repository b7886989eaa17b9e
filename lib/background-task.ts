// backgroundTask(): run a function inside a new background transaction and end it when it settles.
import { runWithStart } from './channels'
import { NO_ARGUMENTS } from './context/engine'
import { describeValue, logTransaction } from './debug'
import { Transaction, type TransactionSink } from './transaction'
import { parseTaskArguments } from './options'
import type { BackgroundTaskOptions } from './types'
import { TransactionType } from './types'

/**
 * Run `fn` in a new transaction `OtherTransaction/<group>/<name>` and return what it returns, the
 * very same value. A returned thenable ends the transaction when it settles.
 * @throws {OptionError} for a non-string name, a non-function `fn` or bad options.
 */
export function runBackgroundTask<T>(sink: TransactionSink, name: string, fn: () => T, options?: BackgroundTaskOptions): T {
  const group = parseTaskArguments(name, fn, options)
  const tx = new Transaction(sink, TransactionType.BACKGROUND, group, name)
  tx.started = true
  let result: T
  try {
    // the start is published, and fn run, inside the stores integrations bound to the start channel
    result = runWithStart(tx, sink.engine.run, sink.engine, tx, fn, undefined, NO_ARGUMENTS)
  } catch (err) {
    fail(tx, err)
    throw err
  }
  try {
    if (isThenable(result)) {
      // The handlers return nothing, so this derived promise never rejects: the caller still gets
      // the original (and its rejection), and no unhandled rejection is ours (so a rejection nobody
      // handles is only on the record and in the debug log). Nothing here keeps the promise alive.
      result.then(
        () => tx.end(),
        (err: unknown) => fail(tx, err)
      )
      return result
    }
  } catch (err) {
    // A `then` (or a `then` getter) that throws: the caller meets the same throw when it awaits.
    fail(tx, err)
    return result
  }
  tx.end()
  return result
}

/** The task threw or rejected: record the error and end. */
function fail(tx: Transaction, err: unknown): void {
  tx.noticeError(err)
  if (logTransaction.enabled) logTransaction('notice error of %s: %s', tx.name, describeValue(err))
  tx.end()
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  )
}

// backgroundTask(): run a function inside a new background transaction and end it when it settles.
import { Transaction, type TransactionSink } from './transaction'
import { parseTaskArguments } from './options'
import type { BackgroundTaskOptions } from './types'
import { TransactionType } from './types'

const NO_ARGUMENTS: readonly unknown[] = []

/**
 * Run `fn` in a new transaction `OtherTransaction/<group>/<name>` and return what it returns, the
 * very same value. A returned thenable ends the transaction when it settles.
 * @throws {OptionError} for a non-string name, a non-function `fn` or bad options.
 */
export function runBackgroundTask<T>(sink: TransactionSink, name: string, fn: () => T, options?: BackgroundTaskOptions): T {
  const group = parseTaskArguments(name, fn, options)
  const tx = new Transaction(sink, TransactionType.BACKGROUND, group, name)
  let result: T
  try {
    result = sink.engine.run(tx, fn, undefined, NO_ARGUMENTS)
  } catch (err) {
    tx.noticeError(err)
    tx.end()
    throw err
  }
  try {
    if (isThenable(result)) {
      // The handlers return nothing, so this derived promise never rejects: the caller still gets
      // the original (and its rejection), and no unhandled rejection is ours. Nothing here keeps the
      // promise alive once it settles.
      result.then(
        () => tx.end(),
        (err: unknown) => {
          tx.noticeError(err)
          tx.end()
        }
      )
      return result
    }
  } catch (err) {
    // A `then` (or a `then` getter) that throws: the caller meets the same throw when it awaits.
    tx.noticeError(err)
    tx.end()
    return result
  }
  tx.end()
  return result
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  )
}

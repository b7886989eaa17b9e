// The request middleware: one web transaction per request, ended exactly once on finish or close.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { NO_ARGUMENTS } from './context/engine'
import { applyPendingFlags, installRequestFlags, REQUEST_TRANSACTION } from './flags'
import { logAgent } from './debug'
import { Transaction, type TransactionSink } from './transaction'
import { parseMiddlewareOptions } from './options'
import { installEventBinding } from './request-events'
import type { Middleware, MiddlewareOptions } from './types'

type Carrier = { [REQUEST_TRANSACTION]?: Transaction }

/** Make the middleware of an agent. @throws {OptionError} on bad options or `app.use(middleware)` uncalled. */
export function createMiddleware(sink: TransactionSink, options?: MiddlewareOptions): Middleware {
  parseMiddlewareOptions(options)
  installRequestFlags()
  installEventBinding()
  const engine = sink.engine

  return function expressBackgroundTask(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void {
    const existing = (req as Carrier)[REQUEST_TRANSACTION]
    if (existing !== undefined) {
      // Mounted twice, in a sub-app, or by a second agent: the first owns the transaction.
      // Re-enter it (with its own engine) in case a library in between lost the async context.
      existing.sink.engine.run(existing, next, undefined, NO_ARGUMENTS)
      return
    }
    const tx = Transaction.forRequest(sink, req, res)
    ;(req as Carrier)[REQUEST_TRANSACTION] = tx
    // From here on the events of both run in the transaction and the response's end ends it (request-events.ts).
    ;(res as Carrier)[REQUEST_TRANSACTION] = tx
    applyPendingFlags(req)
    tx.start()
    if (logAgent.enabled) logAgent('start transaction %s for %s', tx.id, req.method)
    engine.run(tx, next, undefined, NO_ARGUMENTS)
  }
}

// The request middleware: one web transaction per request, ended exactly once on finish, close, or an upgraded socket's close.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { carryTransaction, requestSlot, TRANSACTION_KEY, type CarriedTransaction } from './carrier'
import { NO_ARGUMENTS } from './context/engine'
import { logAgent } from './debug'
import { flagStateIn } from './flags'
import { parseMiddlewareOptions } from './options'
import { installRequestHooks, isHookedRequest } from './request-events'
import { Transaction, type TransactionSink } from './transaction'
import type { Middleware, MiddlewareOptions } from './types'

/** Make the middleware of an agent. @throws {OptionError} on bad options or `app.use(middleware)` uncalled. */
export function createMiddleware(sink: TransactionSink, options?: MiddlewareOptions): Middleware {
  parseMiddlewareOptions(options)
  installRequestHooks()
  const engine = sink.engine

  return function expressBackgroundTask(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void {
    // the request's slot (carrier.ts), read once: every read of `req` itself misses V8's caches
    const slot = requestSlot(req) as { [TRANSACTION_KEY]?: CarriedTransaction }
    const existing = slot[TRANSACTION_KEY]
    if (existing !== undefined) {
      // Mounted twice, in a sub-app, or by a second agent: the first owns the transaction.
      // Re-enter it (with its own engine) in case a library in between lost the async context.
      existing.sink.engine.run(existing as never, next, undefined, NO_ARGUMENTS)
      return
    }
    if (!isHookedRequest(req)) {
      if (logAgent.enabled) logAgent('pass a request of an unknown kind through untracked')
      next()
      return
    }
    const tx = Transaction.forRequest(sink, req, res, slot)
    carryTransaction(slot, res, tx)
    if ((req as { upgrade?: boolean }).upgrade === true) endWithSocket(tx, req)
    flagStateIn(slot)?.applyPending()
    tx.start()
    if (logAgent.enabled) logAgent('start transaction %s for %s', tx.id, req.method)
    engine.run(tx, next, undefined, NO_ARGUMENTS)
  }
}

/**
 * An upgrade (a websocket handed to the app by express-ws): its response never finishes or closes,
 * the session lasts until the socket closes. It is background by default (a session is not a page
 * load); the flags and the helper can say otherwise.
 */
function endWithSocket(tx: Transaction, req: IncomingMessage): void {
  tx.classify(true)
  const socket = req.socket
  if (socket === null || socket === undefined) return
  if (socket.destroyed) setImmediate(() => tx.finish(false))
  else socket.once('close', () => tx.finish(false))
}

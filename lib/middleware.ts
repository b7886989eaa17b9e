// The request middleware: one web transaction per request, ended exactly once on finish, close, or an upgraded socket's close.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { carryTransaction, requestTransaction } from './carrier'
import { NO_ARGUMENTS } from './context/engine'
import { logAgent } from './debug'
import { existingFlagState } from './flags'
import { parseMiddlewareOptions } from './options'
import { HOOKED, hookKindOf, installRequestHooks } from './request-events'
import { Transaction, type TransactionSink } from './transaction'
import type { Middleware, MiddlewareOptions } from './types'

/** Make the middleware of an agent. @throws {OptionError} on bad options or `app.use(middleware)` uncalled. */
export function createMiddleware(sink: TransactionSink, options?: MiddlewareOptions): Middleware {
  parseMiddlewareOptions(options)
  installRequestHooks()
  const engine = sink.engine

  return function expressBackgroundTask(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void {
    const existing = requestTransaction(req)
    if (existing !== undefined) {
      // Mounted twice, in a sub-app, or by a second agent: the first owns the transaction.
      // Re-enter it (with its own engine) in case a library in between lost the async context.
      existing.sink.engine.run(existing as never, next, undefined, NO_ARGUMENTS)
      return
    }
    if (!(HOOKED in req) && !hookKindOf(req)) {
      if (logAgent.enabled) logAgent('pass a request of an unknown kind through untracked')
      next()
      return
    }
    const tx = Transaction.forRequest(sink, req, res)
    carryTransaction(req, res, tx)
    if ((req as { upgrade?: boolean }).upgrade === true) endWithSocket(tx, req)
    existingFlagState(req)?.applyPending()
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

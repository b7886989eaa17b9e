// The request middleware: one web transaction per request, ended exactly once on finish or close.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { EventEmitter } from 'node:events'
import { NO_ARGUMENTS } from './context/engine'
import { applyPendingFlags, installRequestFlags, REQUEST_TRANSACTION } from './flags'
import { logAgent } from './debug'
import { Transaction, type TransactionSink } from './transaction'
import { parseMiddlewareOptions } from './options'
import type { Middleware, MiddlewareOptions } from './types'

const ORIGINAL_EMIT = Symbol('express-background-task.original-emit')

type Carrier = EventEmitter & { [REQUEST_TRANSACTION]?: Transaction; [ORIGINAL_EMIT]?: EventEmitter['emit'] }

/** Make the middleware of an agent. @throws {OptionError} on bad options or `app.use(middleware)` uncalled. */
export function createMiddleware(sink: TransactionSink, options?: MiddlewareOptions): Middleware {
  parseMiddlewareOptions(options)
  installRequestFlags()
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
    ;(res as Carrier)[REQUEST_TRANSACTION] = tx
    // The end is hooked here, before anything else runs, by the response's emit (below).
    bindEmitter(req as Carrier, emitInTransaction)
    bindEmitter(res as Carrier, emitResponseInTransaction)
    applyPendingFlags(req)
    if (logAgent.enabled) logAgent('start transaction %s for %s', tx.id, req.method)
    engine.run(tx, next, undefined, NO_ARGUMENTS)
  }
}

/**
 * Events of the request and response (body chunks, `end`, `finish`, `close`) are emitted from the
 * socket's async context, not the request's. Running `emit` inside the transaction's context keeps
 * listeners in it, without wrapping the listeners themselves, so `once`, `removeListener`,
 * `listenerCount` and `rawListeners` behave exactly as without the package.
 */
function bindEmitter(emitter: Carrier, emit: EventEmitter['emit']): void {
  if (Object.prototype.hasOwnProperty.call(emitter, 'emit')) emitter[ORIGINAL_EMIT] = emitter.emit
  emitter.emit = emit
}

/**
 * The response's emit ends the transaction on `finish`, or on `close` when `finish` never came (the
 * client went away: aborted), right after the app's own listeners of that event ran, so they still
 * see the transaction; it adds no listener, so `listenerCount('finish')` is what the app made it.
 */
function emitResponseInTransaction(this: Carrier & { writableFinished?: boolean }, ...args: [string | symbol, ...unknown[]]): boolean {
  const event = args[0]
  if (event !== 'finish' && event !== 'close') return emitWithin(this, args)
  try {
    return emitWithin(this, args)
  } finally {
    this[REQUEST_TRANSACTION]?.finish(event === 'close' && this.writableFinished !== true)
  }
}

function emitInTransaction(this: Carrier, ...args: [string | symbol, ...unknown[]]): boolean {
  return emitWithin(this, args)
}

/** Call the emitter's own emit inside its transaction's context. */
function emitWithin(emitter: Carrier, args: [string | symbol, ...unknown[]]): boolean {
  const original = emitter[ORIGINAL_EMIT] ?? (Object.getPrototypeOf(emitter) as EventEmitter).emit
  const tx = emitter[REQUEST_TRANSACTION]
  if (tx === undefined) return Reflect.apply(original, emitter, args) as boolean
  return tx.sink.engine.run(tx, original, emitter, args) as boolean
}

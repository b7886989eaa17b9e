// Request and response events run inside their transaction, and the response's own events end it.
import { IncomingMessage, ServerResponse } from 'node:http'
import type { EventEmitter } from 'node:events'
import { REQUEST_TRANSACTION } from './flags'
import type { Transaction } from './transaction'

/** Set on a prototype once its methods are wrapped; Symbol.for, so a second installed copy wraps nothing twice. */
const WRAPPED = Symbol.for('express-background-task.emit-wrapped')

type Emit = EventEmitter['emit']
type Carrier = EventEmitter & { [REQUEST_TRANSACTION]?: Transaction; writableFinished?: boolean }

/**
 * Events of the request and response (body chunks, `end`, `finish`, `close`) are emitted from the
 * socket's async context, not the request's. Wrapping `emit` once on the two prototypes runs each
 * event of a request that has a transaction inside that transaction's context, without wrapping
 * listeners (`once`, `removeListener`, `listenerCount`, `rawListeners` behave exactly as without
 * the package) and without an own `emit` on every request and response: per-object methods make
 * Node's stream internals see two shapes of each object, which cost more than all the rest of the
 * package's per-request work (measured with callgrind). Objects without a transaction (client
 * responses, apps without the middleware) go straight through, and so does an event nobody
 * listens to (most of a request's events): entering a context costs more than the emit itself.
 */
export function installEventBinding(): void {
  wrapMethod<Emit>(IncomingMessage.prototype, 'emit', (inner) =>
    function emitWithin(this: Carrier): boolean {
      const tx = this[REQUEST_TRANSACTION]
      if (tx === undefined) return Reflect.apply(inner(), this, arguments) as boolean
      return emitInTransaction(tx, this, inner(), arguments)
    }
  )
  // The name is what answered, when it answered: read when the response ends (`res.end()`), before
  // Express moves on to later routes (a middleware that answers and then calls `next()`).
  wrapMethod<(...args: unknown[]) => unknown>(ServerResponse.prototype, 'end', (inner) =>
    function endNamed(this: Carrier): unknown {
      const tx = this[REQUEST_TRANSACTION]
      if (tx !== undefined) tx.answered()
      return Reflect.apply(inner(), this, arguments)
    }
  )
  wrapMethod<Emit>(ServerResponse.prototype, 'emit', (inner) =>
    function emitResponseWithin(this: Carrier, event: string | symbol): boolean {
      const tx = this[REQUEST_TRANSACTION]
      if (tx === undefined) return Reflect.apply(inner(), this, arguments) as boolean
      if (event !== 'finish' && event !== 'close') return emitInTransaction(tx, this, inner(), arguments)
      // The end: `finish`, or `close` when `finish` never came (the client went away: aborted), right
      // after the app's own listeners of that event, so they still see the transaction; no listener is
      // added, so `listenerCount('finish')` is what the app made it.
      try {
        return emitInTransaction(tx, this, inner(), arguments)
      } finally {
        tx.finish(event === 'close' && this.writableFinished !== true)
      }
    }
  )
}

/** Emit inside the transaction's context; an event nobody listens to needs no context. */
function emitInTransaction(tx: Transaction, emitter: Carrier, inner: Emit, args: IArguments): boolean {
  if (emitter.listenerCount(args[0] as string | symbol) === 0) return Reflect.apply(inner, emitter, args) as boolean
  return tx.sink.engine.run(tx, inner, emitter, args)
}

/**
 * Replace a prototype's method, once per process. The wrapper calls `inner()`: the method the
 * prototype had of its own before (another library's), or else the inherited one, looked up at each call.
 */
function wrapMethod<F extends (...args: any[]) => unknown>(proto: object, key: 'emit' | 'end', wrap: (inner: () => F) => F): void {
  const marked = proto as Record<string | symbol, unknown>
  const flag = Symbol.for(`express-background-task.wrapped.${key}`)
  if (Object.prototype.hasOwnProperty.call(marked, key === 'emit' ? WRAPPED : flag)) return
  Object.defineProperty(marked, key === 'emit' ? WRAPPED : flag, { value: true })
  const own = Object.prototype.hasOwnProperty.call(proto, key) ? (marked[key] as F) : undefined
  const parent = Object.getPrototypeOf(proto) as Record<string, F>
  marked[key] = wrap(own !== undefined ? () => own : () => parent[key])
}

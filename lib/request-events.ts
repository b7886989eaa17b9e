// Request and response events run inside their transaction, and the response's own events end it.
import { IncomingMessage, ServerResponse } from 'node:http'
import type { EventEmitter } from 'node:events'
import { REQUEST_TRANSACTION } from './flags'
import type { Transaction } from './transaction'

/** Set on a prototype once its emit is wrapped; Symbol.for, so a second installed copy wraps nothing twice. */
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
  wrapEmit(IncomingMessage.prototype, function emitWithin(this: Carrier, event: string | symbol): boolean {
    const tx = this[REQUEST_TRANSACTION]
    const inner = ownEmit ?? requestParent.emit
    if (tx === undefined || this.listenerCount(event) === 0) return Reflect.apply(inner, this, arguments) as boolean
    return tx.sink.engine.run(tx, inner, this, arguments)
  })
  wrapEmit(ServerResponse.prototype, function emitResponseWithin(this: Carrier, event: string | symbol): boolean {
    const tx = this[REQUEST_TRANSACTION]
    const inner = ownResponseEmit ?? responseParent.emit
    if (tx === undefined) return Reflect.apply(inner, this, arguments) as boolean
    const listened = this.listenerCount(event) !== 0
    if (event !== 'finish' && event !== 'close') return listened ? tx.sink.engine.run(tx, inner, this, arguments) : (Reflect.apply(inner, this, arguments) as boolean)
    // The end: `finish`, or `close` when `finish` never came (the client went away: aborted), right
    // after the app's own listeners of that event, so they still see the transaction; no listener is
    // added, so `listenerCount('finish')` is what the app made it.
    try {
      return listened ? tx.sink.engine.run(tx, inner, this, arguments) : (Reflect.apply(inner, this, arguments) as boolean)
    } finally {
      tx.finish(event === 'close' && this.writableFinished !== true)
    }
  })
}

// What each wrapper calls: an emit the prototype had of its own before (another library's), or the inherited one.
const requestParent = Object.getPrototypeOf(IncomingMessage.prototype) as EventEmitter
const responseParent = Object.getPrototypeOf(ServerResponse.prototype) as EventEmitter
let ownEmit: Emit | undefined
let ownResponseEmit: Emit | undefined

function wrapEmit(proto: EventEmitter, wrapper: Emit): void {
  const marked = proto as EventEmitter & { [WRAPPED]?: true }
  if (Object.prototype.hasOwnProperty.call(marked, WRAPPED)) return
  Object.defineProperty(marked, WRAPPED, { value: true })
  const own = Object.prototype.hasOwnProperty.call(proto, 'emit') ? proto.emit : undefined
  if (proto === IncomingMessage.prototype) ownEmit = own
  else ownResponseEmit = own
  proto.emit = wrapper
}

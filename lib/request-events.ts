// The prototype hooks: request and response events run inside their transaction, the response's end names and ends it, and req.newrelic.
import { IncomingMessage, ServerResponse } from 'node:http'
import type { EventEmitter } from 'node:events'
import { protocolKey, requestTransaction, responseTransaction, type CarriedTransaction } from './carrier'
import { logAgent } from './debug'
import { REQUEST_FLAGS_ACCESSOR } from './flags'

/** On request prototypes once hooked: the middleware's per-request check that this kind of request is. */
export const HOOKED = protocolKey('hooked')
/** On each wrapper function: what it wraps, so it can be found under other libraries' wrappers and removed. */
const WRAPPER = protocolKey('wrapper')

type Emit = EventEmitter['emit']
type AnyMethod = (...args: any[]) => unknown
type Wrapper = AnyMethod & { [WRAPPER]?: { own: AnyMethod | undefined } }
type Emitter = EventEmitter & { listenerCount(event: string | symbol): number }

/** A kind of request and response: Node's HTTP/1 ones, or HTTP/2's compatibility API. */
interface Kind {
  request: object
  response: object
}

const kinds: Kind[] = [{ request: IncomingMessage.prototype, response: ServerResponse.prototype }]
let http2Added = false

/**
 * Events of the request and response (body chunks, `end`, `finish`, `close`) are emitted from the
 * socket's async context, not the request's. Wrapping `emit` once on the prototypes runs each event
 * of a request that has a transaction inside that transaction's context, without wrapping listeners
 * (`once`, `removeListener`, `listenerCount` behave as without the package) and without an own
 * `emit` on every object (two shapes of each object cost Node's stream internals more than all the
 * rest of the package's work; measured with callgrind). An event nobody listens to goes straight
 * through. The response's `end()` fixes the name (what answered, before Express moves on); its
 * `finish`, or `close` before it (the client went away), ends the transaction.
 *
 * Called by every `middleware()`: a wrapper that a test spy or a shimmer `unwrap` took away is put back.
 */
export function installRequestHooks(): void {
  for (const kind of kinds) hookKind(kind)
}

/**
 * Whether the request's kind is hooked. Node's own requests are asked on their prototype: a lookup
 * on `req` itself misses V8's caches (Express gives each request a map of its own) and walks the
 * whole prototype chain.
 */
export function isHookedRequest(req: object): boolean {
  if (req instanceof IncomingMessage) return HOOKED in IncomingMessage.prototype
  return HOOKED in req || hookKindOf(req)
}

/** A request of a kind not hooked yet (HTTP/2's compatibility API): hook its kind; false when unknown. */
export function hookKindOf(req: object): boolean {
  if (!http2Added) {
    http2Added = true
    // loaded only when an HTTP/2 request shows up: most apps never pay for it
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const http2 = require('node:http2') as typeof import('node:http2')
    const kind = { request: http2.Http2ServerRequest.prototype, response: http2.Http2ServerResponse.prototype }
    kinds.push(kind)
    hookKind(kind)
  }
  return HOOKED in req
}

/**
 * Remove every prototype hook of this copy and the `req.newrelic` accessor; a hook that another
 * library wrapped since is left in place (removing it would remove theirs). The next `middleware()`
 * puts them back. Returns whether everything could be removed.
 */
export function removeRequestHooks(): boolean {
  let complete = true
  for (const kind of kinds) {
    complete = unwrap(kind.request, 'emit') && complete
    complete = unwrap(kind.response, 'emit') && complete
    complete = unwrap(kind.response, 'end') && complete
    const accessor = Object.getOwnPropertyDescriptor(kind.request, 'newrelic')
    if (accessor?.get === REQUEST_FLAGS_ACCESSOR.get) delete (kind.request as Record<string, unknown>).newrelic
    delete (kind.request as Record<symbol, unknown>)[HOOKED]
  }
  return complete
}

function hookKind(kind: Kind): void {
  const request = kind.request as Record<string | symbol, unknown>
  if (!(HOOKED in request)) Object.defineProperty(request, HOOKED, { value: true, configurable: true })
  const accessor = Object.getOwnPropertyDescriptor(request, 'newrelic')
  if (accessor?.get !== REQUEST_FLAGS_ACCESSOR.get) Object.defineProperty(request, 'newrelic', REQUEST_FLAGS_ACCESSOR)
  wrap(kind.request, 'emit', (inner) =>
    function emitWithin(this: Emitter): boolean {
      const tx = requestTransaction(this)
      if (tx === undefined) return Reflect.apply(inner(), this, arguments) as boolean
      return emitInTransaction(tx, this, inner(), arguments)
    }
  )
  wrap(kind.response, 'end', (inner) =>
    function endNamed(this: object): unknown {
      responseTransaction(this)?.answered()
      return Reflect.apply(inner(), this, arguments)
    }
  )
  wrap(kind.response, 'emit', (inner) =>
    function emitResponseWithin(this: Emitter, event: string | symbol): boolean {
      const tx = responseTransaction(this)
      if (tx === undefined) return Reflect.apply(inner(), this, arguments) as boolean
      if (event !== 'finish' && event !== 'close') return emitInTransaction(tx, this, inner(), arguments)
      // The end: `finish`, or `close` when `finish` never came (the client went away: aborted, even
      // when a middleware answered the dead socket). HTTP/2 emits `finish` for a reset stream too,
      // one whose response never ended. Right after the app's own listeners of that event, so they
      // still see the transaction; no listener is added.
      try {
        return emitInTransaction(tx, this, inner(), arguments)
      } finally {
        // `finished` is `writableEnded` (HTTP/1 and HTTP/2 alike), but an own field of an HTTP/1 response, not a getter up its chain
        tx.finish(event === 'close' || (this as { finished?: boolean }).finished === false)
      }
    }
  )
}

/** Emit inside the transaction's context; an event nobody listens to needs no context. */
function emitInTransaction(tx: CarriedTransaction, emitter: Emitter, inner: AnyMethod, args: IArguments): boolean {
  if (emitter.listenerCount(args[0] as string | symbol) === 0) return Reflect.apply(inner, emitter, args) as boolean
  return tx.sink.engine.run(tx as never, inner as Emit, emitter, args)
}

/**
 * Wrap a prototype's method unless one of our wrappers is there already, directly or under another
 * library's (shimmer keeps the wrapped function in `__original`). The wrapper calls `inner()`: the
 * method the prototype had of its own before, or else the inherited one, looked up at each call.
 */
function wrap(proto: object, key: 'emit' | 'end', make: (inner: () => AnyMethod) => AnyMethod): void {
  const target = proto as Record<string, AnyMethod>
  if (isOurs(target[key])) return
  const own = Object.prototype.hasOwnProperty.call(proto, key) ? target[key] : undefined
  const parent = Object.getPrototypeOf(proto) as { emit: AnyMethod; end: AnyMethod }
  // a literal key, not `parent[key]`: a keyed load shared by the three wrappers was 0.6% of a bare Express request
  const inherited = key === 'emit' ? () => parent.emit : () => parent.end
  const wrapper = make(own !== undefined ? () => own : inherited) as Wrapper
  Object.defineProperty(wrapper, WRAPPER, { value: { own } })
  if (own === undefined && logAgent.enabled) logAgent('wrap the inherited %s', key)
  target[key] = wrapper
}

function isOurs(method: unknown): boolean {
  for (let fn = method as Wrapper | undefined, hops = 0; typeof fn === 'function' && hops < 8; hops++) {
    if (fn[WRAPPER] !== undefined) return true
    fn = (fn as { __original?: Wrapper }).__original
  }
  return false
}

/** Put back what our wrapper replaced, if the wrapper is still the prototype's method. */
function unwrap(proto: object, key: 'emit' | 'end'): boolean {
  const target = proto as Record<string, Wrapper>
  const current = target[key]
  const wrapped = Object.prototype.hasOwnProperty.call(proto, key) ? current[WRAPPER] : undefined
  if (wrapped === undefined) {
    if (!isOurs(current)) return true
    if (logAgent.enabled) logAgent('leave the %s hook in place: another library wrapped it since', key)
    return false
  }
  if (wrapped.own !== undefined) target[key] = wrapped.own as Wrapper
  else delete target[key]
  return true
}

// The per-request carrier: the keys under which requests, responses and prototypes hold this package's state.
//
// Two installed copies of the package (a dependency that bundles its own) find each other's
// transactions through these keys. They are `Symbol.for` keys with the protocol version in them:
// copies that speak the same protocol share requests, prototypes and the context registry; copies
// that speak another never see each other's keys, so each handles its own transactions and neither
// can call a method the other lacks. Bump PROTOCOL whenever `CarriedTransaction`, the registry's
// shape, or what the wrappers and accessors store changes, or where they store it.
//
// Where: on the request's readable-stream state (`req._readableState`), never on the request or the
// response themselves. Express gives every `req` and `res` a new prototype before any middleware
// runs, so each of them has a map (hidden class) no other request shares: a property added to one
// after that cannot use a cached transition, and V8 builds a new map and copies every descriptor,
// for each request. Two such keyed stores (request and response) cost about 50 000 instructions per
// request (callgrind, Node 20: MigrateToMap, DescriptorArray copies, runtime lookups, scavenges),
// 7% of a whole bare Express request and most of what keeping events in context cost. The state
// object is made by Node's own constructor, with the same map for every request, so the store is a
// cached transition of a few instructions. A response reaches it through `res.req`, which Node
// sets (HTTP/1 and HTTP/2's compatibility API alike).
import type { ContextEngine } from './context/engine'
import type { FlagName } from './flags'

/** The cross-copy protocol version; 1 was the unversioned keys of 0.1.0, 2 the keys on `req` and `res` themselves. */
export const PROTOCOL = 3

/** A process-wide key of this protocol. */
export function protocolKey(name: string): symbol {
  return Symbol.for(`express-background-task/${PROTOCOL}/${name}`)
}

/** What a request and its response hold: the transaction, owned by whichever copy started it. */
export const TRANSACTION_KEY = protocolKey('transaction')

/** What a request holds once `req.newrelic` is touched: its flag state (flags.ts). */
export const FLAGS_KEY = protocolKey('flags')

/**
 * What the wrappers, accessors and other copies of this protocol may use of a transaction. The
 * engine's `run`, `finish`, `answered` and the flag methods are all called across copies.
 */
export interface CarriedTransaction {
  readonly ended: boolean
  readonly sink: { readonly engine: ContextEngine }
  /** The response is being ended: fix the name now. */
  answered(): void
  /** End once; `aborted` when the connection closed before the response finished. */
  finish(aborted: boolean): void
  /** A valid flag value was written for this request. */
  applyFlag(name: FlagName, value: boolean): void
}

type Slot = { [TRANSACTION_KEY]?: CarriedTransaction }
type Carrier = { _readableState?: unknown; req?: { _readableState?: unknown } | null }

// Every read of a property of `req` or `res` misses V8's caches (each has a map of its own), and a
// property either lacks is looked for along its whole prototype chain: so a request is asked only
// for its state, and a response only for its `req`, never for a property it does not have.

/** A request's slot: its readable state, or the request itself when it has none. */
export function requestSlot(req: object): Slot {
  const state = (req as Carrier)._readableState
  return typeof state === 'object' && state !== null ? (state as Slot) : (req as Slot)
}

/** A response's slot: its request's (`res.req`, set by Node), or the response itself when it has no request. */
export function responseSlot(res: object): Slot {
  const req = (res as Carrier).req
  return typeof req === 'object' && req !== null ? requestSlot(req) : (res as Slot)
}

/** The slot of any object: a request's, a response's, or the object itself. */
export function slotOf(carrier: object): Slot {
  const state = (carrier as Carrier)._readableState
  if (typeof state === 'object' && state !== null) return state as Slot
  return responseSlot(carrier)
}

/** The transaction a request or response carries, if any (of any copy of this protocol). */
export function carriedTransaction(carrier: object): CarriedTransaction | undefined {
  return slotOf(carrier)[TRANSACTION_KEY]
}

/** The transaction a request carries (the request prototypes' hooks and the middleware). */
export function requestTransaction(req: object): CarriedTransaction | undefined {
  return requestSlot(req)[TRANSACTION_KEY]
}

/** The transaction a response carries (the response prototypes' hooks). */
export function responseTransaction(res: object): CarriedTransaction | undefined {
  return responseSlot(res)[TRANSACTION_KEY]
}

/**
 * Bind the transaction to a request (given its slot) and its response: one store when the response
 * reaches the request's slot, as it does unless something replaced `res.req` (then a request that
 * slot belongs to keeps its own transaction).
 */
export function carryTransaction(slot: object, res: object, tx: CarriedTransaction): void {
  ;(slot as Slot)[TRANSACTION_KEY] = tx
  const other = responseSlot(res)
  if (other !== slot && other[TRANSACTION_KEY] === undefined) other[TRANSACTION_KEY] = tx
}

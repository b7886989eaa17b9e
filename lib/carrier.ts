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

/**
 * The object that holds a request's keys: the request's readable state; for a response, its
 * request's; for anything else (an object that is neither), the object itself.
 */
export function slotOf(carrier: object): Slot {
  const state = (carrier as Carrier)._readableState
  if (typeof state === 'object' && state !== null) return state as Slot
  const req = (carrier as Carrier).req
  if (typeof req === 'object' && req !== null) {
    const requestState = req._readableState
    if (typeof requestState === 'object' && requestState !== null) return requestState as Slot
  }
  return carrier as Slot
}

/** The transaction a request or response carries, if any (of any copy of this protocol). */
export function carriedTransaction(carrier: object): CarriedTransaction | undefined {
  return slotOf(carrier)[TRANSACTION_KEY]
}

/** Bind the transaction to the request and its response (one store when the response reaches the request's state). */
export function carryTransaction(req: object, res: object, tx: CarriedTransaction): void {
  const slot = slotOf(req)
  slot[TRANSACTION_KEY] = tx
  const responseSlot = slotOf(res)
  if (responseSlot !== slot) responseSlot[TRANSACTION_KEY] = tx
}

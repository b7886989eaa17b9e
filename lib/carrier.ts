// The per-request carrier: the keys under which requests, responses and prototypes hold this package's state.
//
// Two installed copies of the package (a dependency that bundles its own) find each other's
// transactions through these keys. They are `Symbol.for` keys with the protocol version in them:
// copies that speak the same protocol share requests, prototypes and the context registry; copies
// that speak another never see each other's keys, so each handles its own transactions and neither
// can call a method the other lacks. Bump PROTOCOL whenever `CarriedTransaction`, the registry's
// shape, or what the wrappers and accessors store changes.
import type { ContextEngine } from './context/engine'
import type { FlagName } from './flags'

/** The cross-copy protocol version; 1 was the unversioned keys of 0.1.0. */
export const PROTOCOL = 2

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

type Carrier = { [TRANSACTION_KEY]?: CarriedTransaction }

/** The transaction a request or response carries, if any (of any copy of this protocol). */
export function carriedTransaction(carrier: object): CarriedTransaction | undefined {
  return (carrier as Carrier)[TRANSACTION_KEY]
}

/** Bind the transaction to the request and its response. */
export function carryTransaction(req: object, res: object, tx: CarriedTransaction): void {
  ;(req as Carrier)[TRANSACTION_KEY] = tx
  ;(res as Carrier)[TRANSACTION_KEY] = tx
}

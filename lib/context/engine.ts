// The small interface every context engine implements, and the process-wide registry the helper searches.
import { AsyncLocalStorage } from 'node:async_hooks'
import type { ClsNamespaceLike } from '../types'

/** What the package needs from a context engine. */
export interface ContextEngine {
  readonly name: string
  /** Call `fn` with `tx` active; exceptions and the return value pass through unchanged. */
  run<R>(tx: TransactionLike, fn: (...args: any[]) => R, thisArg: unknown, args: ArrayLike<unknown>): R
}

/** What engines and the registry need of a transaction, kept minimal so two installed copies interoperate. */
export interface TransactionLike {
  isActive(): boolean
  /** `performance.now()` at the start; orders transactions of engines used side by side. */
  readonly startMono: number
  /** Engine-private slot (the cls-hooked context of this transaction). */
  contextSlot: unknown
}

/** The arguments of a call that takes none, shared so no call allocates them. */
export const NO_ARGUMENTS: readonly unknown[] = Object.freeze([])

/** Tags transactions of every installed copy, so another copy's transaction is recognised. */
export const TRANSACTION_BRAND = Symbol.for('express-background-task.transaction')

interface Registry {
  readonly storage: AsyncLocalStorage<TransactionLike>
  readonly namespaces: Set<ClsNamespaceLike>
  clsNamespace?: ClsNamespaceLike
}

const REGISTRY_KEY = Symbol.for('express-background-task.registry')

/**
 * One registry per process, on globalThis: two installed copies of the package share the
 * AsyncLocalStorage and see each other's cls-hooked namespaces.
 */
export const registry: Registry = ((globalThis as any)[REGISTRY_KEY] ??= {
  storage: new AsyncLocalStorage<TransactionLike>(),
  namespaces: new Set<ClsNamespaceLike>()
})

export function isTransaction(value: unknown): value is TransactionLike {
  return typeof value === 'object' && value !== null && (value as any)[TRANSACTION_BRAND] === true
}

/**
 * The innermost active transaction, whichever agent or engine started it. When agents with different
 * engines are nested (a cls-hooked task inside an AsyncLocalStorage request), each engine holds one:
 * a transaction starts while the outer ones are active, so the one started last is the innermost.
 */
export function findActiveTransaction(): TransactionLike | undefined {
  const stored = registry.storage.getStore()
  let found = stored !== undefined && stored.isActive() ? stored : undefined
  // most processes have no cls-hooked engine: no iterator is made for an empty set
  if (registry.namespaces.size === 0) return found
  for (const namespace of registry.namespaces) {
    if (!namespace.active) continue
    const tx = namespace.get('transaction')
    if (isTransaction(tx) && tx.isActive() && (found === undefined || tx.startMono > found.startMono)) found = tx
  }
  return found
}

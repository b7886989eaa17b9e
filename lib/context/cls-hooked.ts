// The cls-hooked engine: our own namespace, or one the app already uses (key 'transaction').
import { logContext } from '../debug'
import type { ClsNamespaceLike } from '../types'
import { registry, type ContextEngine, type TransactionLike } from './engine'

const TRANSACTION_KEY = 'transaction'
const NAMESPACE_NAME = 'express-background-task'

type ClsContext = Record<string, unknown>

/**
 * cls-hooked 4.2.2 sets `process.namespaces = {}` when it loads, which hides the namespaces an app
 * created with another copy. Load it lazily (only apps that choose this engine pay for it) and put
 * back what was there.
 */
function ownNamespace(): ClsNamespaceLike {
  if (registry.clsNamespace !== undefined) return registry.clsNamespace
  const proc = process as unknown as { namespaces?: Record<string, unknown> }
  const before = proc.namespaces
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const cls = require('cls-hooked') as typeof import('cls-hooked')
  if (before !== undefined && before !== proc.namespaces) proc.namespaces = Object.assign(proc.namespaces ?? {}, before)
  // Keep the object itself: a later copy of cls-hooked may reset process.namespaces again.
  registry.clsNamespace = cls.createNamespace(`${NAMESPACE_NAME}:${process.pid}`) as unknown as ClsNamespaceLike
  return registry.clsNamespace
}

/**
 * Build an engine over a cls-hooked namespace. It never calls `ns.run` or `ns.runPromise`: `run`
 * returns the context instead of the result and decorates thrown errors with `error@context` (or
 * turns `throw 'str'` into a TypeError), and `runPromise` leaks the active context. Enter and exit
 * do the same job and leave results and exceptions alone.
 */
export function createClsEngine(namespace: ClsNamespaceLike | undefined): ContextEngine {
  const ns = namespace ?? ownNamespace()
  registry.namespaces.add(ns)
  if (logContext.enabled) logContext('use cls-hooked namespace %s', (ns as { name?: string }).name ?? '(unnamed)')

  function contextOf(tx: TransactionLike): ClsContext {
    // One context per transaction, made on first use, so events re-enter the same one. It holds
    // only the transaction: a context that holds a promise is never freed (cls-hooked #66).
    let context = tx.contextSlot as ClsContext | undefined
    if (context === undefined) {
      context = ns.createContext()
      context[TRANSACTION_KEY] = tx
      tx.contextSlot = context
    }
    return context
  }

  return {
    name: 'cls-hooked',
    run(tx, fn, thisArg, args) {
      const context = contextOf(tx)
      if (ns.active === context) return Reflect.apply(fn, thisArg, args)
      ns.enter(context)
      try {
        return Reflect.apply(fn, thisArg, args)
      } finally {
        ns.exit(context)
      }
    }
  }
}

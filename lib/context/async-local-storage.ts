// The default engine: Node's AsyncLocalStorage, one per process (see registry).
import { registry, type ContextEngine, type TransactionLike } from './engine'

const storage = registry.storage

export const asyncLocalStorageEngine: ContextEngine = {
  name: 'async-local-storage',
  current() {
    return storage.getStore()
  },
  run(tx, fn, thisArg, args) {
    if (storage.getStore() === tx) return Reflect.apply(fn, thisArg, args)
    return storage.run(tx, Reflect.apply, fn, thisArg, args) as ReturnType<typeof fn>
  }
}

export type { TransactionLike }

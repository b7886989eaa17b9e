// The default engine: Node's AsyncLocalStorage, one per process (see registry).
import { registry, type ContextEngine } from './engine'

const storage = registry.storage

export const asyncLocalStorageEngine: ContextEngine = {
  name: 'async-local-storage',
  run(tx, fn, thisArg, args) {
    if (storage.getStore() === tx) return Reflect.apply(fn, thisArg, args)
    return storage.run(tx, Reflect.apply, fn, thisArg, args) as ReturnType<typeof fn>
  }
}

// The name cap of the `name` labels: past it, new names share an overflow label value, as metrics() folds them.
import { MAX_TRANSACTION_NAMES, OVERFLOW_NAME } from '../index'
import { logPrometheus } from './debug'

/**
 * The label value for each transaction name. A Prometheus series lives as long as the process, so
 * unlike a metrics() window the cap counts names over the exporter's life: at most
 * MAX_TRANSACTION_NAMES distinct values, then the overflow name of the prefix (web or background),
 * so a name built from ids cannot grow the registry, or Prometheus, without bound.
 */
export class NameLabels {
  private readonly admitted = new Set<string>()
  private overflowed = false

  label(name: string, web: boolean): string {
    const admitted = this.admitted
    if (admitted.has(name)) return name
    // a name that happens to spell an overflow name is counted there, never mistaken for a real one
    if (admitted.size < MAX_TRANSACTION_NAMES && name !== OVERFLOW_NAME.web && name !== OVERFLOW_NAME.background) {
      admitted.add(name)
      return name
    }
    const overflow = web ? OVERFLOW_NAME.web : OVERFLOW_NAME.background
    if (!this.overflowed) {
      this.overflowed = true
      logPrometheus('fold %s and later new names into %s: %d names', name, overflow, MAX_TRANSACTION_NAMES)
    }
    return overflow
  }
}

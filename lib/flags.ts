// The req.newrelic flags: value parsing, and the per-request state that sees every write, in order.
//
// `req.newrelic` is an accessor on the request prototypes (request-events.ts installs it). Its state
// lives with the request (FLAGS_KEY, on its readable state: carrier.ts), never on an object the app puts there: `req.newrelic =
// require('newrelic')` reads back as itself and stays exactly as it was. Such an object cannot be
// watched without changing it, so it is read when assigned and read again at the moments that
// order against the helper (a helper call, an activity check, the end); while another request in
// flight holds the same object, it is read once, when assigned, since a write to it could be
// either request's.
import { FLAGS_KEY, requestSlot, requestTransaction } from './carrier'
import { describeValue, logFlags } from './debug'

/** The flag names, in the order they are applied when a transaction starts. */
export const FLAG_NAMES = ['setBackgroundTask', 'ignoreTransaction', 'suppressApdexMetric'] as const
export type FlagName = (typeof FLAG_NAMES)[number]

/**
 * Parse a flag as New Relic's Python agent parses WSGI environ values: booleans, the strings
 * on/true/1 and off/false/0 in any casing, and the numbers 1/0. Anything else is `undefined`.
 */
export function parseFlag(value: unknown): boolean | undefined {
  switch (typeof value) {
    case 'boolean':
      return value
    case 'number':
      return value === 1 ? true : value === 0 ? false : undefined
    case 'string':
      switch (value.toLowerCase()) {
        case 'on':
        case 'true':
        case '1':
          return true
        case 'off':
        case 'false':
        case '0':
          return false
      }
  }
  return undefined
}

/** How many requests in flight hold an app's object, and which one reads it again (the sole holder). */
interface Holders {
  count: number
  watcher: FlagState | undefined
}
const holdersOf = new WeakMap<object, Holders>()
const NOTHING_SEEN: readonly unknown[] = Object.freeze([undefined, undefined, undefined])

/** The flag state of one request. */
export class FlagState {
  readonly req: object
  /** The object `req.newrelic` returns when the app has put nothing there. */
  private own: RequestFlagsObject | undefined = undefined
  private assigned = false
  private assignedValue: unknown = undefined
  /** The app's object read again at each check (only while this request alone holds it). */
  private watched: object | undefined = undefined
  private seen: readonly unknown[] = NOTHING_SEEN
  /** The last valid value per flag written before the transaction started. */
  private pending: Array<boolean | undefined> | undefined = undefined
  private released = false

  constructor(req: object) {
    this.req = req
  }

  /** What `req.newrelic` reads. */
  read(): unknown {
    if (this.assigned) return this.assignedValue
    return (this.own ??= new RequestFlagsObject(this))
  }

  /** `req.newrelic = value`: it reads back as itself; an object's flags count from now on. */
  assign(value: unknown): void {
    this.unwatch()
    if (value === this.own && value !== undefined) {
      this.assigned = false
      this.assignedValue = undefined
      return
    }
    this.assigned = true
    this.assignedValue = value
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null) {
      if (value !== undefined && logFlags.enabled) logFlags('ignore req.newrelic set to %s', describeValue(value))
      return
    }
    if (this.released) return
    let holders = holdersOf.get(value)
    if (holders === undefined) {
      holdersOf.set(value, (holders = { count: 0, watcher: this }))
    } else if (holders.watcher !== undefined) {
      // now shared with another request in flight: whatever was written for that one counts for it, then no more
      holders.watcher.check()
      holders.watcher.stopWatching()
      holders.watcher = undefined
    }
    holders.count += 1
    this.watched = value
    this.seen = NOTHING_SEEN
    this.check()
    if (holders.watcher !== this) this.stopWatching()
  }

  /** A write through the request's own flags object (ignored once another object replaced it). */
  write(name: FlagName, value: unknown): void {
    if (this.assigned) {
      if (logFlags.enabled) logFlags('ignore %s written to a req.newrelic object that was replaced', name)
      return
    }
    this.apply(name, value)
  }

  /** Read the app's object again; count the flags that changed since it was last read. */
  check(): void {
    const watched = this.watched
    if (watched === undefined) return
    const seen = this.seen
    let next: unknown[] | undefined
    for (let i = 0; i < FLAG_NAMES.length; i++) {
      let value: unknown
      try {
        value = (watched as Record<string, unknown>)[FLAG_NAMES[i]]
      } catch (err) {
        // a hostile object (a proxy whose traps throw): a flag never throws
        if (logFlags.enabled) logFlags('ignore an unreadable req.newrelic.%s: %s', FLAG_NAMES[i], describeValue(err))
        continue
      }
      if (Object.is(value, seen[i])) continue
      ;(next ??= [...seen])[i] = value
      if (value !== undefined) this.apply(FLAG_NAMES[i], value)
    }
    if (next !== undefined) this.seen = next
  }

  /** Whether an app's object is read again at each check. */
  get watching(): boolean {
    return this.watched !== undefined
  }

  /** Apply the flags written before the transaction started. */
  applyPending(): void {
    const pending = this.pending
    const tx = requestTransaction(this.req)
    if (pending !== undefined && tx !== undefined) {
      this.pending = undefined
      for (let i = 0; i < FLAG_NAMES.length; i++) {
        if (pending[i] !== undefined) tx.applyFlag(FLAG_NAMES[i], pending[i] as boolean)
      }
    }
    // then what was written to an app's object since it was last read
    this.check()
  }

  /** The transaction ended: read the app's object one last time, and let go of it. */
  release(): void {
    this.check()
    this.unwatch()
    this.released = true
  }

  private apply(name: FlagName, value: unknown): void {
    const flag = parseFlag(value)
    if (flag === undefined) {
      if (logFlags.enabled) logFlags('ignore %s with unparseable value %s', name, describeValue(value))
      return
    }
    const tx = requestTransaction(this.req)
    if (tx === undefined) (this.pending ??= [undefined, undefined, undefined])[FLAG_NAMES.indexOf(name)] = flag
    else if (!tx.ended) tx.applyFlag(name, flag)
  }

  private stopWatching(): void {
    this.watched = undefined
  }

  /** Stop holding the assigned object (replaced, or the request ended). */
  private unwatch(): void {
    const value = this.assignedValue
    if (!this.assigned || (typeof value !== 'object' && typeof value !== 'function') || value === null || this.released) return
    const holders = holdersOf.get(value)
    this.watched = undefined
    if (holders === undefined) return
    if (holders.watcher === this) holders.watcher = undefined
    if (--holders.count <= 0) holdersOf.delete(value)
  }
}

/** The request's flag state, made on first use. */
export function flagStateOf(req: object): FlagState {
  const slot = requestSlot(req) as { [FLAGS_KEY]?: FlagState }
  return (slot[FLAGS_KEY] ??= new FlagState(req))
}

/** The flag state in a request's slot (carrier.ts), if `req.newrelic` was ever touched. */
export function flagStateIn(slot: object): FlagState | undefined {
  return (slot as { [FLAGS_KEY]?: FlagState })[FLAGS_KEY]
}

const STATE = Symbol('state')
const VALUES = Symbol('values')

/** The object `req.newrelic` returns when the app has not put its own there. */
class RequestFlagsObject {
  declare [STATE]: FlagState
  declare [VALUES]: Partial<Record<FlagName, unknown>> | undefined
  constructor(state: FlagState) {
    this[STATE] = state
    this[VALUES] = undefined
  }
  toJSON(): Partial<Record<FlagName, unknown>> {
    return { ...this[VALUES] }
  }
}
for (const name of FLAG_NAMES) {
  Object.defineProperty(RequestFlagsObject.prototype, name, {
    configurable: true,
    enumerable: true,
    get(this: RequestFlagsObject) {
      return this[VALUES]?.[name]
    },
    set(this: RequestFlagsObject, value: unknown) {
      ;(this[VALUES] ??= {})[name] = value
      this[STATE].write(name, value)
    }
  })
}

/** The `newrelic` accessor every request prototype gets. */
export const REQUEST_FLAGS_ACCESSOR: PropertyDescriptor = {
  configurable: true,
  enumerable: false,
  get(this: object) {
    return flagStateOf(this).read()
  },
  set(this: object, value: unknown) {
    flagStateOf(this).assign(value)
  }
}

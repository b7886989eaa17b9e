// The req.newrelic flags: value parsing, and the accessor that sees every write, in order.
import { IncomingMessage } from 'node:http'
import { describeValue, logFlags } from './debug'

/** The flag names, in the order they are applied when a transaction starts. */
export const FLAG_NAMES = ['setBackgroundTask', 'ignoreTransaction', 'suppressApdexMetric'] as const
export type FlagName = (typeof FLAG_NAMES)[number]

/** Where a request keeps its transaction; Symbol.for so another installed copy finds it too. */
export const REQUEST_TRANSACTION = Symbol.for('express-background-task.request-transaction')
const REQUEST_FLAGS = Symbol.for('express-background-task.request-flags')
const FLAGS_REQUEST = Symbol.for('express-background-task.flags-request')
const RAW_VALUES = Symbol.for('express-background-task.flags-raw')
const INSTALLED = Symbol.for('express-background-task.flags-installed')

/** What a flag does to a transaction; implemented by Transaction. */
export interface FlagTarget {
  ended: boolean
  ignored: boolean
  suppressApdex: boolean
  classify(background: boolean): void
}

type RawValues = Partial<Record<FlagName, unknown>>
type FlagsHolder = { [FLAGS_REQUEST]?: IncomingMessage; [RAW_VALUES]?: RawValues }
type RequestWithFlags = IncomingMessage & { [REQUEST_FLAGS]?: object; [REQUEST_TRANSACTION]?: FlagTarget }

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

/** Apply one flag write to the request's transaction, if it has one yet (else it waits for the start). */
function applyFlag(req: RequestWithFlags, name: FlagName, value: unknown): void {
  const tx = req[REQUEST_TRANSACTION]
  if (tx === undefined || tx.ended) return
  const flag = parseFlag(value)
  if (flag === undefined) {
    if (logFlags.enabled) logFlags('ignore %s with unparseable value %s', name, describeValue(value))
    return
  }
  if (name === 'setBackgroundTask') tx.classify(flag)
  else if (name === 'ignoreTransaction') tx.ignored = flag
  else tx.suppressApdex = flag
}

/** Apply the flags set before the middleware ran. */
export function applyPendingFlags(req: IncomingMessage): void {
  const raw = ((req as RequestWithFlags)[REQUEST_FLAGS] as FlagsHolder | undefined)?.[RAW_VALUES]
  if (raw !== undefined) applyFlagValues(req as RequestWithFlags, raw)
}

function applyFlagValues(req: RequestWithFlags, values: RawValues): void {
  for (const name of FLAG_NAMES) {
    if (values[name] !== undefined) applyFlag(req, name, values[name])
  }
}

/**
 * The request's flags object stops speaking for it: it was replaced, or the transaction ended (a
 * shared object then serves the next request, and keeps no ended request alive).
 */
export function releaseRequestFlags(req: IncomingMessage): void {
  const holder = (req as RequestWithFlags)[REQUEST_FLAGS] as FlagsHolder | undefined
  if (holder !== undefined && holder[FLAGS_REQUEST] === req) holder[FLAGS_REQUEST] = undefined
}

function rawValues(holder: FlagsHolder): RawValues {
  return (holder[RAW_VALUES] ??= {})
}

/** Accessors shared by every flags object; `this` is the object, which knows its request. */
function flagAccessors(name: FlagName): PropertyDescriptor {
  return {
    configurable: true,
    enumerable: true,
    get(this: FlagsHolder) {
      return this[RAW_VALUES]?.[name]
    },
    set(this: FlagsHolder, value: unknown) {
      rawValues(this)[name] = value
      const req = this[FLAGS_REQUEST]
      if (req !== undefined) applyFlag(req as RequestWithFlags, name, value)
    }
  }
}

const ACCESSORS = Object.fromEntries(FLAG_NAMES.map((name) => [name, flagAccessors(name)])) as Record<FlagName, PropertyDescriptor>

/** The object `req.newrelic` returns when the app has not put its own there. */
class RequestFlagsObject {
  [FLAGS_REQUEST]: IncomingMessage | undefined
  [RAW_VALUES]: RawValues | undefined = undefined
  constructor(req: IncomingMessage) {
    this[FLAGS_REQUEST] = req
  }
  toJSON(): RawValues {
    return { ...this[RAW_VALUES] }
  }
}
Object.defineProperties(RequestFlagsObject.prototype, ACCESSORS)

/**
 * `req.newrelic = { ... }` replaced the object: honour its flags now, and turn its three keys
 * into accessors in place, so later writes through any reference to it are seen as well. An object
 * that cannot be adopted (frozen, sealed, non-extensible, or still speaking for another request in
 * flight, as a shared constant may be) is read once, into a flags object of this request's own.
 */
function adoptFlagsObject(req: RequestWithFlags, value: unknown): void {
  releaseRequestFlags(req)
  if (typeof value !== 'object' || value === null) {
    if (value !== undefined && logFlags.enabled) logFlags('ignore req.newrelic set to %s', describeValue(value))
    req[REQUEST_FLAGS] = undefined
    return
  }
  const holder = value as FlagsHolder & Record<string, unknown>
  const values: RawValues = {}
  let adopted: boolean
  try {
    for (const name of FLAG_NAMES) {
      if (holder[name] !== undefined) values[name] = holder[name]
    }
    const linked = holder[FLAGS_REQUEST]
    adopted = (linked === undefined || linked === req) && Object.isExtensible(holder)
    if (adopted) observeFlagsObject(holder, req, values)
  } catch (err) {
    // A hostile object (a proxy whose traps throw): a flag never throws, so it counts as junk.
    if (logFlags.enabled) logFlags('ignore req.newrelic set to an unreadable object: %s', describeValue(err))
    req[REQUEST_FLAGS] = undefined
    return
  }
  if (adopted) req[REQUEST_FLAGS] = holder
  else {
    if (logFlags.enabled) logFlags('read a frozen or shared req.newrelic once; later writes to it are not seen')
    const own = new RequestFlagsObject(req)
    own[RAW_VALUES] = values
    req[REQUEST_FLAGS] = own
  }
  applyFlagValues(req, values)
}

/** Link the object to its request (non-enumerable, so copies and spreads do not carry it) and define the accessors. */
function observeFlagsObject(holder: FlagsHolder, req: RequestWithFlags, values: RawValues): void {
  Object.defineProperty(holder, RAW_VALUES, { value: values, writable: true, configurable: true, enumerable: false })
  Object.defineProperty(holder, FLAGS_REQUEST, { value: req, writable: true, configurable: true, enumerable: false })
  for (const name of FLAG_NAMES) {
    try {
      Object.defineProperty(holder, name, ACCESSORS[name])
    } catch {
      // a non-configurable key: its current value still counts, later writes to it are not seen
      if (logFlags.enabled) logFlags('read req.newrelic.%s once; it cannot be observed', name)
    }
  }
}

/**
 * Define `newrelic` once on IncomingMessage.prototype: every request (Express's request objects
 * inherit from it) gets a lazily made flags object, and replacing it is seen, with no per-request
 * property definitions on the hot path.
 */
export function installRequestFlags(): void {
  const proto = IncomingMessage.prototype as unknown as Record<symbol, unknown>
  if (proto[INSTALLED] === true) return
  Object.defineProperty(proto, INSTALLED, { value: true })
  Object.defineProperty(proto, 'newrelic', {
    configurable: true,
    enumerable: false,
    get(this: RequestWithFlags) {
      return (this[REQUEST_FLAGS] ??= new RequestFlagsObject(this))
    },
    set(this: RequestWithFlags, value: unknown) {
      adoptFlagsObject(this, value)
    }
  })
}

// The live Transaction handle: its type, flags, name and end.
import { performance } from 'node:perf_hooks'
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { CarriedTransaction } from './carrier'
import { publishClassify, publishEnd, endHasSubscribers, publishStart } from './channels'
import type { ContextEngine } from './context/engine'
import { TRANSACTION_BRAND } from './context/engine'
import { describeValue, logTransaction } from './debug'
import { flagStateIn, parseFlag, type FlagName } from './flags'
import { MAX_TRANSACTION_NAMES } from './metrics/aggregator'
import { webTransactionPath } from './naming'
import { CONNECT_GROUP, EXPRESS_GROUP, RequestRoute } from './naming/route'
import { buildRecord } from './record'
import type { Agent, FlagValue, Transaction as PublicTransaction, TransactionRecord } from './types'
import { TransactionType } from './types'

const WEB_PREFIX = 'WebTransaction/'
const BACKGROUND_PREFIX = 'OtherTransaction/'
const CUSTOM_GROUP = 'Custom'

/** Ids: a random per-process prefix and a counter, so they stay unique across processes too. */
const ID_PREFIX = randomBytes(4).toString('hex')
let lastSequence = 0

/** What a transaction reports to when it ends (the agent). */
export interface TransactionSink extends Agent {
  readonly engine: ContextEngine
  transactionEnded(tx: Transaction): void
}

/** The live handle of a web or background transaction. */
export class Transaction implements PublicTransaction, CarriedTransaction {
  /** The agent that started it. */
  readonly sink: TransactionSink
  type: TransactionType
  /** A background task's group and name; for requests, the route fixed when the response ends. */
  private readonly taskGroup: string | undefined
  private readonly taskName: string | undefined
  route: RequestRoute | undefined = undefined
  customName: string | undefined = undefined
  /** Requests only; released when the transaction ends. */
  req: IncomingMessage | undefined = undefined
  res: ServerResponse | undefined = undefined
  /** The request's slot (carrier.ts), where its flag state is found without reading `req` again. */
  slot: object | undefined = undefined
  method: string | undefined = undefined
  /** As the response had it at the end; undefined when the client went away before any headers went out. */
  statusCode: number | undefined = undefined
  aborted = false
  /** Published on the start channel; type changes before it are part of the start. */
  started = false
  ended = false
  ignored = false
  suppressApdex = false
  error: Error | undefined = undefined
  attributes: Record<string, unknown> | undefined = undefined
  contextSlot: unknown = undefined
  /** The full name, fixed when the transaction ends. */
  private endName: string | undefined = undefined
  private record: TransactionRecord | undefined = undefined
  readonly sequence = ++lastSequence
  readonly startMono = performance.now()
  endMono = 0

  constructor(sink: TransactionSink, type: TransactionType, taskGroup?: string, taskName?: string) {
    this.sink = sink
    this.type = type
    this.taskGroup = taskGroup
    this.taskName = taskName
  }

  /** A web transaction for a request. */
  static forRequest(sink: TransactionSink, req: IncomingMessage, res: ServerResponse, slot: object): Transaction {
    const tx = new Transaction(sink, TransactionType.WEB)
    tx.req = req
    tx.res = res
    tx.slot = slot
    tx.method = req.method
    return tx
  }

  /** The agent that started it. */
  get agent(): Agent {
    return this.sink
  }

  get id(): string {
    return `${ID_PREFIX}-${this.sequence.toString(36)}`
  }

  /** The full metric name: fixed once ended; before that, what it would be now (nothing is stored). */
  get name(): string {
    if (this.endName !== undefined) return this.endName
    const prefix = this.type === TransactionType.WEB ? WEB_PREFIX : BACKGROUND_PREFIX
    if (this.customName !== undefined) return `${prefix}${CUSTOM_GROUP}/${this.customName}`
    if (this.taskName !== undefined) return `${prefix}${this.taskGroup}/${this.taskName}`
    const route = this.route ?? (this.req !== undefined ? requestRoute(this.req, this.res as ServerResponse) : undefined)
    return route === undefined ? `${prefix}(unknown)` : requestName(prefix, route, this.method)
  }

  /** The route template of a request (the record's path), once fixed. */
  get path(): string | undefined {
    return this.route?.path
  }

  /** Announce the start, with the type it starts with. */
  start(): void {
    this.started = true
    publishStart(this)
  }

  /** Started, not ended, not ignored. */
  isActive(): boolean {
    if (this.slot !== undefined) flagStateIn(this.slot)?.check()
    return !this.ended && !this.ignored
  }

  setBackgroundTask(flag: FlagValue = true): boolean {
    if (!this.isActive()) {
      if (logTransaction.enabled) logTransaction('ignore setBackgroundTask on %s transaction', this.ended ? 'an ended' : 'an ignored')
      return false
    }
    const background = parseFlag(flag)
    if (background === undefined) {
      if (logTransaction.enabled) logTransaction('ignore setBackgroundTask with unparseable flag %s', describeValue(flag))
      return false
    }
    this.classify(background)
    return true
  }

  /** A valid flag value written for this request (it counts on an ignored transaction too). */
  applyFlag(name: FlagName, value: boolean): void {
    if (name === 'setBackgroundTask') this.classify(value)
    else if (name === 'ignoreTransaction') this.ignored = value
    else this.suppressApdex = value
  }

  /** Set the type; published when it changes after the start. */
  classify(background: boolean): void {
    const previousType = this.type
    this.type = background ? TransactionType.BACKGROUND : TransactionType.WEB
    if (this.started && previousType !== this.type) publishClassify(this, this.type, previousType)
  }

  setName(name: string): void {
    if (typeof name !== 'string' || name === '') {
      if (logTransaction.enabled) logTransaction('ignore setName with %s', describeValue(name))
      return
    }
    this.customName = name
  }

  addAttribute(key: string, value: unknown): void {
    if (typeof key !== 'string') {
      if (logTransaction.enabled) logTransaction('ignore attribute with key %s', describeValue(key))
      return
    }
    ;(this.attributes ??= {})[key] = value
  }

  noticeError(err: unknown): void {
    this.error = asError(err)
  }

  ignore(): void {
    this.ignored = true
  }

  end(): void {
    this.finish(false)
  }

  /** The response is being ended: fix the route now, before Express moves on to later routes. */
  answered(): void {
    if (this.route === undefined && this.req !== undefined && !this.ended) this.route = requestRoute(this.req, this.res as ServerResponse)
  }

  /** End once: fix the name while the request is still readable, then let go of it. */
  finish(aborted: boolean): void {
    if (this.ended) return
    this.endMono = performance.now()
    const req = this.req
    const res = this.res
    if (req !== undefined && res !== undefined) {
      // the last read of an app's req.newrelic object counts before the end
      if (this.slot !== undefined) flagStateIn(this.slot)?.release()
      this.aborted = aborted
      // a client gone before any headers went out got no status: none is recorded
      this.statusCode = aborted && !res.headersSent ? undefined : res.statusCode
      // an ignored request is never named (the walk would be for nothing)
      if (!this.ignored) this.answered()
      this.req = undefined
      this.res = undefined
      this.slot = undefined
    }
    this.ended = true
    if (this.ignored) {
      if (logTransaction.enabled) logTransaction('drop ignored transaction %s', this.id)
      if (endHasSubscribers()) publishEnd(this, undefined)
      return
    }
    this.endName = this.name
    if (logTransaction.enabled) logTransaction('end %s %s in %s ms', this.id, this.endName, this.duration.toFixed(1))
    this.sink.transactionEnded(this)
    if (endHasSubscribers()) publishEnd(this, this.toRecord())
  }

  /** Milliseconds from start to end (or to now, while running). */
  get duration(): number {
    return (this.ended ? this.endMono : performance.now()) - this.startMono
  }

  /** The plain, frozen snapshot listeners receive; built once, after the end. */
  toRecord(): TransactionRecord {
    return (this.record ??= buildRecord(this))
  }
}

Object.defineProperty(Transaction.prototype, TRANSACTION_BRAND, { value: true })

/**
 * Request names by route template, then method, then prefix and group: the name of a known route
 * is looked up, never built again, and being the same string each time, the metrics' map finds it
 * by its cached hash (a new string is hashed, and first flattened, at every lookup: 14% of a
 * transaction's own time in `npm run bench:micro -- --integrations`). Bounded like the metrics'
 * names; past the bounds names are built as before.
 */
const requestNames = new Map<string, Map<string | undefined, Array<string | undefined>>>()
const MAX_CACHED_METHODS = 32

function requestName(prefix: string, route: RequestRoute, method: string | undefined): string {
  // a known route's requests share its RequestRoute, which keeps the names of the method last seen
  if (route.namedMethod === method && route.web !== undefined) return prefix === WEB_PREFIX ? route.web : (route.background as string)
  const name = lookUpName(prefix, route, method)
  if (route.shared) {
    route.namedMethod = method
    route.web = prefix === WEB_PREFIX ? name : lookUpName(WEB_PREFIX, route, method)
    route.background = prefix === WEB_PREFIX ? lookUpName(BACKGROUND_PREFIX, route, method) : name
  }
  return name
}

function lookUpName(prefix: string, route: RequestRoute, method: string | undefined): string {
  const path = route.path
  if (route.group !== EXPRESS_GROUP && route.group !== CONNECT_GROUP) return buildName(prefix, route, method)
  let byMethod = requestNames.get(path)
  if (byMethod === undefined) {
    if (requestNames.size >= MAX_TRANSACTION_NAMES) return buildName(prefix, route, method)
    requestNames.set(path, (byMethod = new Map()))
  }
  let names = byMethod.get(method)
  if (names === undefined) {
    if (byMethod.size >= MAX_CACHED_METHODS) return buildName(prefix, route, method)
    byMethod.set(method, (names = [undefined, undefined, undefined, undefined]))
  }
  const slot = (prefix === WEB_PREFIX ? 0 : 2) + (route.group === EXPRESS_GROUP ? 0 : 1)
  return (names[slot] ??= buildName(prefix, route, method))
}

function buildName(prefix: string, route: RequestRoute, method: string | undefined): string {
  return `${prefix}${route.group}/${method}/${route.path}`
}

/** Name a request; naming runs inside the app's res.end() and Node's emit, so it never throws there. */
function requestRoute(req: IncomingMessage, res: ServerResponse): RequestRoute {
  try {
    return webTransactionPath(req, res)
  } catch (err) {
    if (logTransaction.enabled) logTransaction('fail to name a request: %s', describeValue(err))
    return new RequestRoute(EXPRESS_GROUP, '(unknown)')
  }
}

/**
 * The Error to keep for a thrown value. Hostile values (a revoked proxy, whose `instanceof` check
 * throws; an object that cannot become a string) still give an Error, never a throw.
 */
function asError(value: unknown): Error {
  let isError: boolean
  try {
    isError = value instanceof Error
  } catch {
    isError = false
  }
  if (isError) return value as Error
  let message: string
  try {
    message = String(value)
  } catch {
    message = describeValue(value)
  }
  return new Error(message, { cause: value })
}

// The live Transaction handle and the frozen record its listeners receive.
import { performance } from 'node:perf_hooks'
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ContextEngine } from './context/engine'
import { TRANSACTION_BRAND } from './context/engine'
import { endHasSubscribers, publishClassify, publishEnd, publishStart } from './channels'
import { describeValue, logTransaction } from './debug'
import { parseFlag, releaseRequestFlags } from './flags'
import { webTransactionPath } from './naming'
import type { Agent, Transaction as PublicTransaction, TransactionRecord, FlagValue } from './types'
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
export class Transaction implements PublicTransaction {
  /** The agent that started it. */
  readonly sink: TransactionSink
  type: TransactionType
  /** `Expressjs`, `Connect`, or a background task's group; set for requests when the name is computed. */
  group: string
  /** The part after the group: `GET//users/:id` for requests, the task name for background tasks. */
  partialName: string | undefined
  customName: string | undefined = undefined
  /** Requests only; released when the transaction ends. */
  req: IncomingMessage | undefined
  res: ServerResponse | undefined
  method: string | undefined
  path: string | undefined = undefined
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
  /** The name, fixed when the transaction ends (metrics, the record and the log all read it). */
  private endName: string | undefined = undefined
  private record: TransactionRecord | undefined = undefined
  readonly sequence = ++lastSequence
  readonly startMono = performance.now()
  endMono = 0

  constructor(sink: TransactionSink, type: TransactionType, group: string, partialName: string | undefined) {
    this.sink = sink
    this.type = type
    this.group = group
    this.partialName = partialName
    this.req = undefined
    this.res = undefined
    this.method = undefined
  }

  /** Start a web transaction for a request. */
  static forRequest(sink: TransactionSink, req: IncomingMessage, res: ServerResponse): Transaction {
    const tx = new Transaction(sink, TransactionType.WEB, '', undefined)
    tx.req = req
    tx.res = res
    tx.method = req.method
    return tx
  }

  /** The agent that started it. */
  get agent(): Agent {
    return this.sink
  }

  /** Announce the start, with the type it starts with. */
  start(): void {
    this.started = true
    publishStart(this)
  }

  get id(): string {
    return `${ID_PREFIX}-${this.sequence.toString(36)}`
  }

  get name(): string {
    if (this.endName !== undefined) return this.endName
    const prefix = this.type === TransactionType.WEB ? WEB_PREFIX : BACKGROUND_PREFIX
    if (this.customName !== undefined) return `${prefix}${CUSTOM_GROUP}/${this.customName}`
    if (this.req !== undefined) this.computeRequestName()
    return `${prefix}${this.group}/${this.partialName}`
  }

  /** Started, not ended, not ignored. */
  isActive(): boolean {
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

  /** Set the type; the flags call this directly, so a flag also counts on an ignored transaction. */
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
    this.error = err instanceof Error ? err : new Error(messageOf(err), { cause: err })
  }

  ignore(): void {
    this.ignored = true
  }

  end(): void {
    this.finish(false)
  }

  /** The response is being ended: name the request by what answered it, now, before Express moves on. */
  answered(): void {
    if (this.res !== undefined && this.path === undefined) this.computeRequestName()
  }

  /** End once: freeze the name while the request is still readable, then let go of it. */
  finish(aborted: boolean): void {
    if (this.ended) return
    this.ended = true
    this.endMono = performance.now()
    this.aborted = aborted
    if (this.res !== undefined) {
      this.statusCode = this.res.statusCode
      // the route template is the record's path even under a custom name; named while `req` is here
      if (this.path === undefined) this.computeRequestName()
      releaseRequestFlags(this.req as IncomingMessage)
      this.req = undefined
      this.res = undefined
    }
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

  /** The plain, frozen snapshot listeners receive; built once. */
  toRecord(): TransactionRecord {
    if (this.record !== undefined) return this.record
    const record: Record<string, unknown> = {
      id: this.id,
      type: this.type,
      name: this.name,
      startTime: performance.timeOrigin + this.startMono,
      duration: this.duration,
      attributes: Object.freeze({ ...this.attributes }),
      suppressApdexMetric: this.suppressApdex
    }
    if (this.error !== undefined) record.error = this.error
    if (this.method !== undefined) {
      record.method = this.method
      record.path = this.path
      record.statusCode = this.statusCode
      record.aborted = this.aborted
    }
    return (this.record = Object.freeze(record) as unknown as TransactionRecord)
  }

  private computeRequestName(): void {
    let named: { group: string; path: string }
    try {
      named = webTransactionPath(this.req as IncomingMessage, this.res as ServerResponse)
    } catch (err) {
      // naming runs inside the app's res.end() and Node's emit: it never throws there
      if (logTransaction.enabled) logTransaction('fail to name %s: %s', this.id, describeValue(err))
      named = { group: this.group || 'Expressjs', path: '(unknown)' }
    }
    const { group, path } = named
    this.group = group
    this.path = path
    this.partialName = `${this.method}/${path}`
  }
}

Object.defineProperty(Transaction.prototype, TRANSACTION_BRAND, { value: true })

/** The message of the Error noticed for a thrown non-Error; `Object.create(null)` cannot become a string. */
function messageOf(value: unknown): string {
  try {
    return String(value)
  } catch {
    return describeValue(value)
  }
}

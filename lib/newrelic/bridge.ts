// bridgeNewRelic(): each New Relic transaction ends classified as this package's transaction ended.
import { channel, type Channel } from 'node:diagnostics_channel'
import { ChannelName, type TransactionEndMessage, type TransactionStartMessage } from '../index'
import type { Transaction, TransactionRecord } from '../types'
import { ErrorCode, OptionError } from '../options'
import { logNewRelic } from './debug'
import { baseRecorderOf, findInternals, BOUND_RECORDER, NR_TYPE, type NewRelicInternals, type NrRecorder, type NrTransaction } from './internals'
import { loadNewRelic } from './newrelic'
import { parseBridgeOptions } from './options'
import type { NewRelicBridge, NewRelicBridgeOptions } from './types'

const BACKGROUND_PREFIX = 'OtherTransaction/'
/** How often New Relic ends still waiting for ours are let go (ours never came: it should not happen). */
const STRAGGLER_SWEEP_MS = 1000
const WEB_PREFIX = 'WebTransaction/'
/** Marks an agent a bridge is running on, across copies of this package. */
const BRIDGED = Symbol.for('express-background-task:newrelic-bridge')
/** The never-deleted key and value of the pairing Maps. */
const KEEP_NOT_EMPTY: unknown = Object.freeze({})

/** One of this package's transactions and the New Relic transaction that follows it. */
interface Pairing {
  readonly ours: Transaction
  readonly theirs: NrTransaction
  /** A background task's transaction, started by the bridge, which ends it. */
  readonly task: boolean
  /** Its base segment's metric recorder, replaced when the type changes. */
  readonly baseRecorder: NrRecorder
  /** New Relic's context for the transaction: where its end runs (a task's from its start, a request's from its end). */
  context: unknown
  /** Our transaction ended: its record (undefined when ignored). */
  ended: boolean
  record: TransactionRecord | undefined
  /** New Relic asked to end before ours did: its end waits for ours. */
  waiting: boolean
}

/**
 * Make the running New Relic agent record each request as this package classifies it: a request
 * marked background (flags, `req.newrelic`, `setBackgroundTask()`, last write wins) ends as New
 * Relic's `OtherTransaction/...` (no `WebTransaction`, `HttpDispatcher` or Apdex), and
 * `backgroundTask(name, fn)` runs inside a New Relic background transaction that ends as
 * `WebTransaction/...` with Apdex when set web. Require `newrelic` first in the app, then call this once.
 *
 * It changes agent internals, so it checks their shape first and, when they differ (or the agent is
 * not running), changes nothing and says why in `reason`. It never throws into a request: failures
 * go to `DEBUG=express-background-task:newrelic`.
 * @param options `{ agent?, newrelic? }`, all optional: see {@link NewRelicBridgeOptions}.
 * @returns `{ active, reason, stop() }`
 * @throws {OptionError} `ERR_EBT_OPTIONS_TYPE` / `ERR_EBT_UNKNOWN_OPTION` for bad options,
 *   `ERR_EBT_ALREADY_REGISTERED` when a bridge is already running on this agent.
 */
export function bridgeNewRelic(options?: Readonly<NewRelicBridgeOptions>): NewRelicBridge {
  const config = parseBridgeOptions(options)
  const api = config.newrelic ?? loadNewRelic()
  const found = findInternals(api)
  if (found.internals === undefined) {
    logNewRelic('stay inactive: %s', found.reason)
    return { active: false, reason: found.reason, stop: function stopInactive() {} }
  }
  return startBridge(found.internals, config.agent)
}

function startBridge(internals: NewRelicInternals, onlyAgent: object | undefined): NewRelicBridge {
  const { tracer, store } = internals
  const prototype = internals.Transaction.prototype as NrTransaction
  const nrEnd = prototype.end
  const agentHolder = internals.api.agent as unknown as Record<symbol, unknown>
  if (agentHolder[BRIDGED] === true) {
    throw new OptionError(ErrorCode.ALREADY_REGISTERED, 'bridgeNewRelic() is already running on this New Relic agent: call it once, or stop() the first bridge')
  }
  agentHolder[BRIDGED] = true
  const startChannel: Channel = channel(ChannelName.START)
  const endChannel: Channel = channel(ChannelName.END)
  // Maps, not WeakMaps: every entry is deleted when its side ends (every transaction of ours ends
  // exactly once; New Relic's paired ones end through the bridge), and a WeakMap's entries wait for
  // the GC, which then has tables of every recent request to go through.
  /** Ours to its pairing, until ours ends. */
  const pairings = new Map<Transaction, Pairing>()
  /**
   * New Relic's to its pairing, until it ends: its end finds it here, and a task nested in a task,
   * which shares its parent's New Relic transaction, finds it taken.
   */
  const paired = new Map<NrTransaction, Pairing>()
  // One entry each that is never deleted: a Map that empties shrinks, allocating a new table, and
  // with one request in flight both did at every request.
  pairings.set(KEEP_NOT_EMPTY as Transaction, KEEP_NOT_EMPTY as Pairing)
  paired.set(KEEP_NOT_EMPTY as NrTransaction, KEEP_NOT_EMPTY as Pairing)
  /** New Relic transactions the bridge started for background tasks (it ends them). */
  const startedForTasks = new WeakSet<NrTransaction>()
  /** Pairings not yet ended on both sides; stop() lets them finish. */
  let live = 0
  /**
   * How many pairings' New Relic end waits for ours, which ends on the same response event, just
   * after. Should one not, the sweep ends it: one timer for the bridge, not one per request (a
   * setImmediate each cost an extra turn of the event loop per request). It finds them among the
   * paired (a list of the waiting ones was emptied, so reallocated, at every request).
   */
  let stillWaiting = 0
  // outside any New Relic transaction, so the agent's timer instrumentation records nothing for it
  const sweeper = store.exit(() => setInterval(endStillWaiting, STRAGGLER_SWEEP_MS))
  sweeper.unref()
  let stopped = false

  const follows = (tx: Transaction): boolean => onlyAgent === undefined || tx.agent === onlyAgent

  // New Relic's end of a paired transaction waits for ours, which knows the final classification.
  // One wrapper on the prototype, not an own `end` on each transaction, which would give every
  // paired transaction of the agent a second hidden class.
  const endWhenClassified = function endWhenClassified(this: NrTransaction): unknown {
    const pairing = paired.get(this)
    if (pairing === undefined) return Reflect.apply(nrEnd, this, arguments)
    return theirEnd(pairing)
  }
  prototype.end = endWhenClassified

  /** Bound to the start channel: a background task's function runs in a New Relic background transaction. */
  function enterTaskTransaction(message: unknown): unknown {
    const current = store.getStore()
    try {
      const ours = (message as TransactionStartMessage).transaction
      if (!follows(ours)) return current
      const parent = tracer.getTransaction()
      const rest = ours.name.startsWith(BACKGROUND_PREFIX) ? ours.name.slice(BACKGROUND_PREFIX.length) : ours.name.slice(ours.name.indexOf('/') + 1)
      const slash = rest.indexOf('/')
      let entered: unknown = current
      // New Relic joins group and name with a slash: the split point does not change the name.
      internals.api.startBackgroundTransaction(rest.slice(slash + 1), rest.slice(0, slash), function captureContext() {
        const theirs = tracer.getTransaction()
        // a task nested in a task shares New Relic's transaction, which its parent's pairing ends
        if (theirs === null || theirs === parent || paired.has(theirs)) return
        // we end it, when our transaction ends
        theirs.handledExternally = true
        startedForTasks.add(theirs)
        entered = tracer.getContext()
      })
      return entered
    } catch (err) {
      logNewRelic('fail to start a background transaction in New Relic: %O', err)
      return current
    }
  }

  function onStart(message: unknown): void {
    try {
      const ours = (message as TransactionStartMessage).transaction
      if (!follows(ours)) return
      const theirs = tracer.getTransaction()
      if (theirs === null || paired.has(theirs)) return
      const baseRecorder = baseRecorderOf(internals, theirs)
      if (typeof baseRecorder === 'string') {
        if (logNewRelic.enabled) logNewRelic('leave New Relic transaction of %s as the agent makes it: %s', ours.id, baseRecorder)
        return
      }
      const task = startedForTasks.has(theirs)
      const pairing: Pairing = {
        ours,
        theirs,
        task,
        baseRecorder,
        context: task ? tracer.getContext() : undefined,
        ended: false,
        record: undefined,
        waiting: false
      }
      paired.set(theirs, pairing)
      pairings.set(ours, pairing)
      live += 1
    } catch (err) {
      logNewRelic('fail to pair a transaction with New Relic: %O', err)
    }
  }

  function theirEnd(pairing: Pairing): unknown {
    try {
      if (pairing.ended) return finish(pairing, tracer.getContext())
      if (!pairing.waiting) {
        pairing.waiting = true
        pairing.context = tracer.getContext()
        stillWaiting += 1
      }
      return undefined
    } catch (err) {
      logNewRelic('fail to end a New Relic transaction: %O', err)
      return undefined
    }
  }

  /** A New Relic end still waiting when the sweep comes (a timer runs between events, never inside one) waits for nothing. */
  function endStillWaiting(): void {
    if (stillWaiting === 0) return
    // a copy: finish() deletes from the Map
    for (const pairing of Array.from(paired.values())) {
      if (!pairing.waiting) continue
      if (logNewRelic.enabled) logNewRelic('end New Relic transaction of %s before ours ended', pairing.ours.id)
      finish(pairing, pairing.context)
    }
  }

  function onEnd(message: unknown): void {
    try {
      const { transaction: ours, record } = message as TransactionEndMessage
      const pairing = pairings.get(ours)
      if (pairing === undefined) return
      pairings.delete(ours)
      pairing.ended = true
      pairing.record = record
      if (pairing.task && record?.error !== undefined) {
        // New Relic did not see the task throw or reject: notice it in its transaction
        const error = record.error
        store.run(pairing.context, () => internals.api.noticeError(error))
      }
      if (pairing.waiting || pairing.task) finish(pairing, pairing.context)
    } catch (err) {
      logNewRelic('fail to end a New Relic transaction: %O', err)
    }
  }

  /** Classify New Relic's transaction as ours ended (or is now), then let it end, in its own context. */
  function finish(pairing: Pairing, context: unknown): unknown {
    const { theirs } = pairing
    if (pairing.waiting) {
      pairing.waiting = false
      stillWaiting -= 1
    }
    // classified and handed back to New Relic's own end: a second end() goes straight to it
    paired.delete(theirs)
    live -= 1
    try {
      classify(internals, pairing)
    } catch (err) {
      logNewRelic('fail to classify a New Relic transaction: %O', err)
    }
    if (live === 0 && stopped) letGo()
    // Usually ours ends in the very context New Relic's end was called in: no need to enter it again.
    if (store.getStore() === context) return nrEnd.call(theirs)
    return store.run(context, endInContext, nrEnd, theirs)
  }

  /** Once stopped and nothing paired is in flight: the end channel and the prototype go back as they were. */
  function letGo(): void {
    clearInterval(sweeper)
    if (endChannel.hasSubscribers) endChannel.unsubscribe(onEnd)
    // wrapped again since by someone else: removing ours would remove theirs; ours passes through
    if (prototype.end === endWhenClassified) prototype.end = nrEnd
  }

  startChannel.bindStore(store, enterTaskTransaction)
  startChannel.subscribe(onStart)
  endChannel.subscribe(onEnd)
  logNewRelic('follow classifications in newrelic %s', internals.version)

  return {
    active: true,
    reason: undefined,
    stop: function stop() {
      if (stopped) return
      stopped = true
      startChannel.unbindStore(store)
      startChannel.unsubscribe(onStart)
      delete agentHolder[BRIDGED]
      // transactions in flight still end classified; then the end channel and the prototype are let go
      if (live === 0) letGo()
      logNewRelic('stop following classifications (%d transactions in flight)', live)
    }
  }
}

/** The agent's own end, run inside New Relic's context; not a closure per request. */
function endInContext(nrEnd: () => unknown, theirs: NrTransaction): unknown {
  return nrEnd.call(theirs)
}

/** Apply our final classification (ignored, type, Apdex suppression) to New Relic's transaction. */
function classify(internals: NewRelicInternals, pairing: Pairing): void {
  const { theirs, ours, record, ended } = pairing
  if (ended && record === undefined) {
    // ignoreTransaction: New Relic records nothing for it either
    theirs.setForceIgnore(true)
    theirs.ignore = true
    return
  }
  const type = record?.type ?? ours.type
  const wanted = type === 'background' ? NR_TYPE.BACKGROUND : NR_TYPE.WEB
  if (wanted === NR_TYPE.WEB && record?.suppressApdexMetric === true) theirs.ignoreApdex = true
  // a task's name is this package's (setName() included); a request keeps New Relic's own naming
  const rename = pairing.task && record !== undefined
  if (theirs.type === wanted && !rename) return
  if (theirs.type !== wanted) {
    // checked before anything changes: never half-changed
    const from = BOUND_RECORDER[theirs.type as 'web' | 'bg']
    if (theirs._recorders[0] !== pairing.baseRecorder || pairing.baseRecorder.name !== from) throw new Error(`its first recorder is not ${from}`)
    const recorder = wanted === NR_TYPE.WEB ? internals.recordWeb : internals.recordBackground
    theirs._recorders[0] = recorder.bind(null, theirs.baseSegment as object)
    theirs.type = wanted
  }
  if (rename) {
    const name = (record as TransactionRecord).name
    theirs._partialName = name.slice((name.startsWith(WEB_PREFIX) ? WEB_PREFIX : BACKGROUND_PREFIX).length)
  }
  // the name is computed again from the type (WebTransaction/ or OtherTransaction/ + the partial name)
  theirs.name = null
  theirs.finalizeName(null)
  if (logNewRelic.enabled) logNewRelic('end New Relic transaction of %s as %s', ours.id, theirs.name)
}

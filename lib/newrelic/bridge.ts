// bridgeNewRelic(): each New Relic transaction ends classified as this package's transaction ended.
import { channel, type Channel } from 'node:diagnostics_channel'
import { ChannelName, type TransactionEndMessage, type TransactionStartMessage } from '../index'
import type { Transaction, TransactionRecord } from '../types'
import { ErrorCode, OptionError } from '../options'
import { logNewRelic } from './debug'
import { findInternals, transactionProblem, BOUND_RECORDER, NR_TYPE, type NewRelicInternals, type NrTransaction } from './internals'
import { loadNewRelic } from './newrelic'
import { parseBridgeOptions } from './options'
import type { NewRelicBridge, NewRelicBridgeOptions } from './types'

const BACKGROUND_PREFIX = 'OtherTransaction/'
const WEB_PREFIX = 'WebTransaction/'
/** Marks an agent a bridge is running on, across copies of this package. */
const BRIDGED = Symbol.for('express-background-task:newrelic-bridge')

/** One of this package's transactions and the New Relic transaction that follows it. */
interface Pairing {
  readonly ours: Transaction
  readonly theirs: NrTransaction
  /** A background task's transaction, started by the bridge, which ends it. */
  readonly task: boolean
  /** New Relic's context for the transaction: where its end runs. */
  context: unknown
  /** Our transaction ended: its record (undefined when ignored). */
  ended: boolean
  record: TransactionRecord | undefined
  /** New Relic asked to end before ours did: its end waits for ours. */
  waiting: boolean
  /** Classified and handed back to New Relic's own end. */
  done: boolean
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
  const nrEnd = (internals.Transaction.prototype as NrTransaction).end
  const agentHolder = internals.api.agent as unknown as Record<symbol, unknown>
  if (agentHolder[BRIDGED] === true) {
    throw new OptionError(ErrorCode.ALREADY_REGISTERED, 'bridgeNewRelic() is already running on this New Relic agent: call it once, or stop() the first bridge')
  }
  agentHolder[BRIDGED] = true
  const startChannel: Channel = channel(ChannelName.START)
  const endChannel: Channel = channel(ChannelName.END)
  const pairings = new WeakMap<Transaction, Pairing>()
  /** New Relic transactions already paired (a nested task reuses its parent's: it is not paired twice). */
  const claimed = new WeakSet<NrTransaction>()
  /** New Relic transactions the bridge started for background tasks (it ends them). */
  const startedForTasks = new WeakSet<NrTransaction>()
  /** Pairings not yet ended on both sides; stop() lets them finish. */
  const live = new Set<Pairing>()
  /** Pairings whose New Relic end waits for ours; one shared setImmediate ends any still waiting then. */
  const waiting = new Set<Pairing>()
  let sweepScheduled = false
  let stopped = false

  const follows = (tx: Transaction): boolean => onlyAgent === undefined || tx.agent === onlyAgent

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
        if (theirs === null || theirs === parent || claimed.has(theirs)) return
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
      if (theirs === null || claimed.has(theirs)) return
      const problem = transactionProblem(internals, theirs)
      if (problem !== undefined) {
        if (logNewRelic.enabled) logNewRelic('leave New Relic transaction of %s as the agent makes it: %s', ours.id, problem)
        return
      }
      const pairing: Pairing = {
        ours,
        theirs,
        task: startedForTasks.has(theirs),
        context: tracer.getContext(),
        ended: false,
        record: undefined,
        waiting: false,
        done: false
      }
      claimed.add(theirs)
      pairings.set(ours, pairing)
      live.add(pairing)
      // New Relic's end waits for ours, which knows the final classification
      theirs.end = function endWhenClassified(this: NrTransaction) {
        return theirEnd(pairing)
      }
    } catch (err) {
      logNewRelic('fail to pair a transaction with New Relic: %O', err)
    }
  }

  function theirEnd(pairing: Pairing): unknown {
    if (pairing.done) return nrEnd.call(pairing.theirs)
    try {
      if (pairing.ended) return finish(pairing, tracer.getContext())
      if (!pairing.waiting) {
        pairing.waiting = true
        pairing.context = tracer.getContext()
        // ours ends on the same response event, just after; should it not, New Relic's end is not lost
        // (one setImmediate for every request waiting in this turn, not one each)
        waiting.add(pairing)
        if (!sweepScheduled) {
          sweepScheduled = true
          setImmediate(endStillWaiting)
        }
      }
      return undefined
    } catch (err) {
      logNewRelic('fail to end a New Relic transaction: %O', err)
      return undefined
    }
  }

  function endStillWaiting(): void {
    sweepScheduled = false
    for (const pairing of waiting) {
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
      waiting.delete(pairing)
    }
    pairing.done = true
    live.delete(pairing)
    try {
      classify(internals, pairing)
    } catch (err) {
      logNewRelic('fail to classify a New Relic transaction: %O', err)
    }
    if (live.size === 0 && stopped) unsubscribeEnd()
    // the wrapper stays (deleting it would turn the agent's object into a slow dictionary); once done it calls through.
    // Usually ours ends in the very context New Relic's end was called in: no need to enter it again.
    if (store.getStore() === context) return nrEnd.call(theirs)
    return store.run(context, () => nrEnd.call(theirs))
  }

  function unsubscribeEnd(): void {
    if (endChannel.hasSubscribers) endChannel.unsubscribe(onEnd)
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
      // transactions in flight still end classified; then the end channel is let go
      if (live.size === 0) unsubscribeEnd()
      logNewRelic('stop following classifications (%d transactions in flight)', live.size)
    }
  }
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
    const from = BOUND_RECORDER[theirs.type as 'web' | 'bg']
    const index = theirs._recorders.findIndex((recorder) => recorder.name === from)
    if (index === -1) throw new Error(`no ${from} recorder any more`)
    const recorder = wanted === NR_TYPE.WEB ? internals.recordWeb : internals.recordBackground
    theirs._recorders[index] = recorder.bind(null, theirs.baseSegment as object)
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

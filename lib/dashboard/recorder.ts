// The channel subscriber: every start and end of the watched agents, into a ring of seconds and the in-flight set.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { ChannelName, TransactionType, type Agent, type Transaction, type TransactionEndMessage, type TransactionStartMessage } from '../index'
import { logDashboard } from './debug'
import { InFlight } from './in-flight'
import { SecondRing } from './ring'
import { zoneOf } from './stats'

/** Aggregates one process's transactions; the same in a page's process and in a cluster worker that reports. */
export class Recorder {
  readonly ring: SecondRing
  readonly inFlight = new InFlight()
  /**
   * The dashboard's own streams: background like any other, but never counted in "had they stayed
   * web", where a page left open for an hour would otherwise weigh on the figures it shows.
   */
  readonly ownStreams = new WeakSet<Transaction>()
  private subscribed = false
  private readonly onStart: (message: unknown) => void
  private readonly onEnd: (message: unknown) => void

  /** @param agent - when given, only its transactions are recorded. */
  constructor(agent: Agent | undefined, ringSeconds?: number) {
    const ring = (this.ring = new SecondRing(ringSeconds))
    const inFlight = this.inFlight
    const ownStreams = this.ownStreams
    function mine(transaction: Transaction | undefined): transaction is Transaction {
      return transaction !== undefined && transaction !== null && (agent === undefined || transaction.agent === agent)
    }
    // A throwing diagnostics_channel subscriber would surface in the publishing request: each catches everything.
    this.onStart = function dashboardOnStart(message) {
      try {
        const { transaction } = message as TransactionStartMessage
        if (mine(transaction)) inFlight.start(transaction, Date.now())
      } catch (err) {
        logDashboard('fail to record a start: %O', err)
      }
    }
    this.onEnd = function dashboardOnEnd(message) {
      try {
        const { transaction, record } = message as TransactionEndMessage
        if (!mine(transaction)) return
        inFlight.end(transaction)
        if (record === undefined) return // ignored: it only balances its start
        const ms = record.duration
        if (!(ms >= 0 && ms < Infinity)) return
        const web = record.type === TransactionType.WEB
        const statusCode = record.statusCode
        const error = record.error !== undefined || (statusCode !== undefined && statusCode >= 500)
        // a client gone before any response was sent frustrates, as metrics() counts it
        const failed = error || (statusCode === undefined && record.aborted === true)
        const apdexT = transaction.agent.apdexT
        const zone = record.suppressApdexMetric ? undefined : zoneOf(ms, apdexT, failed)
        ring.record(Math.floor(Date.now() / 1000), { name: record.name, web, request: record.method !== undefined && !ownStreams.has(transaction), ms, error, zone, apdexT })
      } catch (err) {
        logDashboard('fail to record an end: %O', err)
      }
    }
  }

  subscribe(): void {
    if (this.subscribed) return
    this.subscribed = true
    subscribe(ChannelName.START, this.onStart)
    subscribe(ChannelName.END, this.onEnd)
  }

  unsubscribe(): void {
    if (!this.subscribed) return
    this.subscribed = false
    unsubscribe(ChannelName.START, this.onStart)
    unsubscribe(ChannelName.END, this.onEnd)
  }
}

// The channel handlers: start, classify and end of every transaction become observations. None may throw.
import { TransactionType, type Agent, type Transaction, type TransactionClassifyMessage, type TransactionEndMessage, type TransactionStartMessage } from '../index'
import { apdexZoneOf } from './apdex'
import { logPrometheus } from './debug'
import type { ExporterMetrics } from './metrics'
import { NameLabels } from './names'

/** The three handlers, each a named function that reports its own failures through debug. */
export interface ChannelHandlers {
  onStart(message: unknown): void
  onClassify(message: unknown): void
  onEnd(message: unknown): void
}

/**
 * Handlers feeding `metrics` from the diagnostics channels. A throwing diagnostics_channel subscriber
 * becomes an uncaught exception in the publishing request, so each handler catches everything.
 * @param agent - when given, only its transactions are recorded.
 */
export function createChannelHandlers(metrics: ExporterMetrics, agent: Agent | undefined): ChannelHandlers {
  const { requestDuration, backgroundDuration, tallies } = metrics
  const inFlight = tallies.inFlight
  const names = new NameLabels()
  // The type each counted transaction is counted under in the gauge. Only transactions seen starting
  // are counted, so one already running when the exporter was created cannot drive the gauge below 0.
  const counted = new WeakMap<Transaction, TransactionType>()

  function mine(transaction: Transaction | undefined): transaction is Transaction {
    return transaction !== undefined && transaction !== null && (agent === undefined || transaction.agent === agent)
  }

  return {
    onStart: function prometheusOnStart(message) {
      try {
        const { transaction } = message as TransactionStartMessage
        if (!mine(transaction)) return
        const type = transaction.type
        if (!isType(type)) return
        counted.set(transaction, type)
        inFlight[type] += 1
      } catch (err) {
        logPrometheus('fail to record a start: %O', err)
      }
    },

    onClassify: function prometheusOnClassify(message) {
      try {
        const { transaction, type } = message as TransactionClassifyMessage
        if (!mine(transaction)) return
        const previous = counted.get(transaction)
        if (previous === undefined || previous === type || !isType(type)) return
        counted.set(transaction, type)
        inFlight[previous] -= 1
        inFlight[type] += 1
      } catch (err) {
        logPrometheus('fail to record a classification: %O', err)
      }
    },

    onEnd: function prometheusOnEnd(message) {
      try {
        const { transaction, record } = message as TransactionEndMessage
        if (!mine(transaction)) return
        const previous = counted.get(transaction)
        if (previous !== undefined) {
          counted.delete(transaction)
          inFlight[previous] -= 1
        }
        // ignored: it balances the start above, and is recorded nowhere
        if (record === undefined) return
        const seconds = record.duration / 1000
        if (!(seconds >= 0 && seconds < Infinity)) {
          logPrometheus('skip %s: duration %o is not a number of milliseconds', record.name, record.duration)
          return
        }
        if (record.type !== TransactionType.WEB) {
          backgroundDuration.observe({ name: names.label(record.name, false) }, seconds)
          return
        }
        const name = names.label(record.name, true)
        requestDuration.observe(
          {
            // a background task turned web has no request: its name stands in for the route
            method: record.method ?? '',
            route: record.path ?? name,
            status_code: record.statusCode === undefined ? '' : String(record.statusCode)
          },
          seconds
        )
        if (record.suppressApdexMetric) return
        const zone = apdexZoneOf(record, seconds, transaction.agent.apdexT)
        let counts = tallies.apdex.get(name)
        if (counts === undefined) tallies.apdex.set(name, (counts = { satisfying: 0, tolerating: 0, frustrating: 0 }))
        counts[zone] += 1
      } catch (err) {
        logPrometheus('fail to record an end: %O', err)
      }
    }
  }
}

function isType(type: unknown): type is TransactionType {
  return type === TransactionType.WEB || type === TransactionType.BACKGROUND
}

// instrumentOpenTelemetry(): subscribe to the package's diagnostics channels and send what they carry to OpenTelemetry.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { inspect } from 'node:util'
import createDebug from 'debug'
import type { MeterProvider } from '@opentelemetry/api'
import { ChannelName, ErrorCode } from '../index'
import type { TransactionClassifyMessage, TransactionEndMessage, TransactionStartMessage } from '../index'
import { OptionError } from '../options'
import type { Agent } from '../types'
import { createDurationRecorder } from './metrics'
import { parseOpenTelemetryOptions } from './options'
import { createSpanTracker } from './spans'
import type { OpenTelemetryInstrumentation, OpenTelemetryOptions } from './types'

const log = createDebug('express-background-task:opentelemetry')

/** Stands for "every agent" and for "the global meter provider" in the registrations below. */
const ALL = Symbol('all')
/** Live instrumentations by meter provider: the agents each records, so no transaction is recorded twice on one provider. */
const registrations = new Map<MeterProvider | typeof ALL, Set<Agent | typeof ALL>>()

/**
 * Send the classification to OpenTelemetry: web transactions on the stable
 * `http.server.request.duration` histogram, background ones on `background_transaction.duration`
 * (never both for one transaction), and the type on the span active when each transaction starts
 * (`express_background_task.type`, an `express_background_task.classify` event at each change).
 * Nothing it does can throw into a request: its failures go to `debug`
 * (`express-background-task:opentelemetry`).
 * @param options - `meterProvider`, `tracerProvider` (default: the global ones) and `agent` (default: every agent).
 * @returns `{ stop() }`, which unsubscribes.
 * @throws {TypeError} `ERR_EBT_OPTIONS_TYPE` or `ERR_EBT_UNKNOWN_OPTION` for bad options;
 *   `ERR_EBT_ALREADY_REGISTERED` when a live instrumentation already records the same agent's
 *   transactions on the same meter provider.
 */
export function instrumentOpenTelemetry(options?: OpenTelemetryOptions): OpenTelemetryInstrumentation {
  const config = parseOpenTelemetryOptions(options)
  const agent = config.agent
  const release = register(config.meterProvider ?? ALL, agent ?? ALL)
  const recorder = createDurationRecorder(config.meterProvider)
  const spans = createSpanTracker(config.tracerProvider)

  function onStart(message: unknown): void {
    try {
      const { transaction } = message as TransactionStartMessage
      if (agent === undefined || transaction.agent === agent) spans.start(transaction)
    } catch (err) {
      log('fail on transaction start: %s', describeError(err))
    }
  }

  function onClassify(message: unknown): void {
    try {
      const { transaction, type, previousType } = message as TransactionClassifyMessage
      if (agent === undefined || transaction.agent === agent) spans.classify(transaction, type, previousType)
    } catch (err) {
      log('fail on transaction classify: %s', describeError(err))
    }
  }

  function onEnd(message: unknown): void {
    try {
      const { transaction, record } = message as TransactionEndMessage
      if (agent !== undefined && transaction.agent !== agent) return
      const urlScheme = spans.end(transaction, record)
      if (record !== undefined) recorder.record(record, urlScheme)
    } catch (err) {
      log('fail on transaction end: %s', describeError(err))
    }
  }

  subscribe(ChannelName.START, onStart)
  subscribe(ChannelName.CLASSIFY, onClassify)
  subscribe(ChannelName.END, onEnd)
  log('start recording %s', agent === undefined ? 'every agent' : 'one agent')
  let stopped = false

  return {
    stop() {
      if (stopped) return
      stopped = true
      unsubscribe(ChannelName.START, onStart)
      unsubscribe(ChannelName.CLASSIFY, onClassify)
      unsubscribe(ChannelName.END, onEnd)
      release()
      log('stop recording')
    }
  }
}

/** Claim (provider, agent) while live; every agent conflicts with any, an agent with itself. @returns the release. */
function register(provider: MeterProvider | typeof ALL, agent: Agent | typeof ALL): () => void {
  let agents = registrations.get(provider)
  if (agents !== undefined && (agents.has(ALL) || agents.has(agent) || (agent === ALL && agents.size > 0))) {
    throw new OptionError(
      ErrorCode.ALREADY_REGISTERED,
      `instrumentOpenTelemetry is already recording ${agent === ALL ? 'transactions' : "this agent's transactions"} on ` +
        `${provider === ALL ? 'the global meter provider' : 'this meter provider'}; call stop() on the first one, or give each an agent of its own`
    )
  }
  if (agents === undefined) registrations.set(provider, (agents = new Set()))
  agents.add(agent)
  return function releaseRegistration() {
    agents.delete(agent)
    if (agents.size === 0) registrations.delete(provider)
  }
}

/** One line for debug, safe against errors whose own inspection throws. */
function describeError(err: unknown): string {
  try {
    return inspect(err, { depth: 1, breakLength: Infinity })
  } catch {
    return `(${typeof err} that cannot be inspected)`
  }
}

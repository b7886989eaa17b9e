// Bridge options: validation at the call, with coded TypeErrors.
import { inspect } from 'node:util'
import { assertOptionsObject, ErrorCode, OptionError } from '../options'
import type { Agent } from '../types'
import type { NewRelicBridgeOptions } from './types'

/** Bridge options after validation. */
export interface BridgeConfig {
  readonly agent: Agent | undefined
  readonly newrelic: object | undefined
}

const OPTION_KEYS = ['agent', 'newrelic'] as const
const WHERE = 'bridgeNewRelic'
const AGENT_METHODS = ['middleware', 'backgroundTask', 'onTransactionEnd'] as const

/** Validate the bridge's options once. @throws {OptionError} `ERR_EBT_OPTIONS_TYPE` or `ERR_EBT_UNKNOWN_OPTION` */
export function parseBridgeOptions(passed: Readonly<NewRelicBridgeOptions> | undefined): BridgeConfig {
  const { agent, newrelic } = assertOptionsObject(passed, WHERE, OPTION_KEYS)
  if (agent !== undefined && !isAgent(agent)) {
    throw new OptionError(ErrorCode.OPTIONS_TYPE, `${WHERE} option agent must be an agent from createAgent(), got ${inspect(agent, { depth: 0 })}`)
  }
  if (newrelic !== undefined && (typeof newrelic !== 'object' || newrelic === null)) {
    throw new OptionError(
      ErrorCode.OPTIONS_TYPE,
      `${WHERE} option newrelic must be the newrelic module (require('newrelic')), got ${inspect(newrelic, { depth: 0 })}`
    )
  }
  return { agent: agent as Agent | undefined, newrelic: newrelic as object | undefined }
}

function isAgent(agent: unknown): boolean {
  if (typeof agent !== 'object' || agent === null) return false
  const apdexT = (agent as { apdexT?: unknown }).apdexT
  return AGENT_METHODS.every((method) => typeof (agent as Record<string, unknown>)[method] === 'function') && typeof apdexT === 'number'
}

// Bridge options: validation at the call, with coded TypeErrors.
import { inspect } from 'node:util'
import { assertOptionsObject, ErrorCode, OptionError, parseAgentOption } from '../options'
import type { Agent } from '../types'
import type { NewRelicBridgeOptions } from './types'

/** Bridge options after validation. */
export interface BridgeConfig {
  readonly agent: Agent | undefined
  readonly newrelic: object | undefined
}

const OPTION_KEYS = ['agent', 'newrelic'] as const
const WHERE = 'bridgeNewRelic'

/** Validate the bridge's options once. @throws {OptionError} `ERR_EBT_OPTIONS_TYPE` or `ERR_EBT_UNKNOWN_OPTION` */
export function parseBridgeOptions(passed: Readonly<NewRelicBridgeOptions> | undefined): BridgeConfig {
  const options = assertOptionsObject(passed, WHERE, OPTION_KEYS)
  const agent = options.agent === undefined ? undefined : parseAgentOption(options.agent, WHERE)
  const newrelic = options.newrelic
  if (newrelic !== undefined && (typeof newrelic !== 'object' || newrelic === null)) {
    throw new OptionError(
      ErrorCode.OPTIONS_TYPE,
      `${WHERE} option newrelic must be the newrelic module (require('newrelic')), got ${inspect(newrelic, { depth: 0 })}`
    )
  }
  return { agent, newrelic: newrelic as object | undefined }
}

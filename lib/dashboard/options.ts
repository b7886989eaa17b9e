// Options of dashboard() and reportToPrimary(): validated once, at construction, with coded TypeErrors.
import cluster from 'node:cluster'
import { inspect } from 'node:util'
import { ErrorCode, type Agent } from '../index'
import { assertOptionsObject, OptionError, parseAgentOption } from '../options'
import type { DashboardOptions, ReportToPrimaryOptions } from './types'

/** Dashboard options after validation. */
export interface DashboardConfig {
  readonly authorize: ((req: never) => unknown) | undefined
  readonly agent: Agent | undefined
  readonly cluster: boolean
}

const DASHBOARD_KEYS = ['authorize', 'agent', 'cluster'] as const
const REPORT_KEYS = ['agent'] as const

/** @throws {OptionError} `ERR_EBT_OPTIONS_TYPE` or `ERR_EBT_UNKNOWN_OPTION` */
export function parseDashboardOptions(passed: Readonly<DashboardOptions> | undefined): DashboardConfig {
  const options = assertOptionsObject(passed, 'dashboard', DASHBOARD_KEYS)
  const { authorize } = options
  if (authorize !== undefined && typeof authorize !== 'function') {
    throw new OptionError(ErrorCode.OPTIONS_TYPE, `dashboard option authorize must be a function (req) => boolean, got ${shown(authorize)}`)
  }
  if (options.cluster !== undefined && typeof options.cluster !== 'boolean') {
    throw new OptionError(ErrorCode.OPTIONS_TYPE, `dashboard option cluster must be true or false, got ${shown(options.cluster)}`)
  }
  if (options.cluster === true && !cluster.isPrimary) {
    throw new OptionError(
      ErrorCode.OPTIONS_TYPE,
      'dashboard option cluster: true belongs in the primary process; a worker calls reportToPrimary() instead'
    )
  }
  return {
    authorize: authorize as DashboardConfig['authorize'],
    agent: parseAgent(options.agent, 'dashboard'),
    cluster: options.cluster === true
  }
}

/** @throws {OptionError} `ERR_EBT_OPTIONS_TYPE` or `ERR_EBT_UNKNOWN_OPTION` */
export function parseReportOptions(passed: Readonly<ReportToPrimaryOptions> | undefined): { agent: Agent | undefined } {
  const options = assertOptionsObject(passed, 'reportToPrimary', REPORT_KEYS)
  return { agent: parseAgent(options.agent, 'reportToPrimary') }
}

function parseAgent(agent: unknown, where: string): Agent | undefined {
  return agent === undefined ? undefined : parseAgentOption(agent, where)
}

function shown(value: unknown): string {
  try {
    return inspect(value, { depth: 0 })
  } catch {
    return typeof value
  }
}

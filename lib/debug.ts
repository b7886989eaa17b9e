// The package's debug loggers, one namespace per concern under express-background-task:*.
import { inspect } from 'node:util'
import createDebug from 'debug'

const log = createDebug('express-background-task')

export const logAgent = log.extend('agent')
export const logContext = log.extend('context')
export const logFlags = log.extend('flags')
export const logNaming = log.extend('naming')
export const logMetrics = log.extend('metrics')
export const logTransaction = log.extend('transaction')

/**
 * Describe a value on one debug line, as debug's `%o` does; unlike `%o`, a value whose own
 * inspection throws (a custom inspect, a hostile proxy) cannot break the request.
 */
export function describeValue(value: unknown): string {
  try {
    return inspect(value, { depth: 1, breakLength: Infinity }).replace(/\s*\n\s*/g, ' ')
  } catch {
    return `(${typeof value} that cannot be inspected)`
  }
}

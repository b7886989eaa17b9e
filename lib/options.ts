// Options: defaults, validation at construction, and the error codes users can match on.
import { inspect } from 'node:util'
import { describeValue } from './debug'
import type { Agent, AgentOptions, BackgroundTaskOptions, ClsNamespaceLike, MetricsOptions, MiddlewareOptions } from './types'

/** Error codes of the `TypeError`s thrown for misconfiguration. */
export const ErrorCode = {
  OPTIONS_TYPE: 'ERR_EBT_OPTIONS_TYPE',
  UNKNOWN_OPTION: 'ERR_EBT_UNKNOWN_OPTION',
  CONTEXT: 'ERR_EBT_CONTEXT',
  APDEX_T: 'ERR_EBT_APDEX_T',
  MIDDLEWARE_NOT_CALLED: 'ERR_EBT_MIDDLEWARE_NOT_CALLED',
  LISTENER: 'ERR_EBT_LISTENER',
  TASK_NAME: 'ERR_EBT_TASK_NAME',
  TASK_FUNCTION: 'ERR_EBT_TASK_FUNCTION',
  TASK_GROUP: 'ERR_EBT_TASK_GROUP',
  /** An integration's optional peer dependency is not installed. */
  PEER_MISSING: 'ERR_EBT_PEER_MISSING',
  /** An integration was registered twice on one registry or provider. */
  ALREADY_REGISTERED: 'ERR_EBT_ALREADY_REGISTERED'
} as const
/** One of {@link ErrorCode}'s values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** A `TypeError` with a stable `code`, thrown for misconfiguration. */
export class OptionError extends TypeError {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string) {
    super(`express-background-task: ${message}`)
    this.name = 'TypeError'
    this.code = code
  }
}

export const ContextEngineName = { ASYNC_LOCAL_STORAGE: 'async-local-storage', CLS_HOOKED: 'cls-hooked' } as const

/** Agent options after validation. */
export interface AgentConfig {
  context: 'async-local-storage' | 'cls-hooked' | ClsNamespaceLike
  apdexT: number
}

const AGENT_DEFAULTS: AgentConfig = { context: ContextEngineName.ASYNC_LOCAL_STORAGE, apdexT: 0.5 }
const AGENT_OPTION_KEYS = ['context', 'apdexT'] as const
const MIDDLEWARE_OPTION_KEYS = [] as const
const TASK_OPTION_KEYS = ['group'] as const
const METRICS_OPTION_KEYS = ['reset'] as const
const CLS_NAMESPACE_METHODS = ['get', 'set', 'createContext', 'enter', 'exit'] as const

/** Validate agent options once, at construction. @throws {OptionError} */
export function parseAgentOptions(passed: Readonly<AgentOptions> | undefined): AgentConfig {
  const options = assertOptionsObject(passed, 'createAgent', AGENT_OPTION_KEYS)
  const config = { ...AGENT_DEFAULTS }
  if (options.context !== undefined) config.context = parseContext(options.context)
  if (options.apdexT !== undefined) {
    const apdexT = options.apdexT
    if (typeof apdexT !== 'number' || !Number.isFinite(apdexT) || apdexT <= 0) {
      throw new OptionError(
        ErrorCode.APDEX_T,
        `apdexT must be a finite number of seconds greater than 0, got ${shown(apdexT)}`
      )
    }
    config.apdexT = apdexT
  }
  return config
}

/** Validate per-mount middleware options. @throws {OptionError} */
export function parseMiddlewareOptions(passed: Readonly<MiddlewareOptions> | undefined): void {
  assertFactoryCalled(passed, 'middleware')
  assertOptionsObject(passed, 'middleware', MIDDLEWARE_OPTION_KEYS)
}

/** Validate the options of metrics(); returns whether to reset. @throws {OptionError} */
export function parseMetricsOptions(passed: Readonly<MetricsOptions> | undefined): boolean {
  const { reset } = assertOptionsObject(passed, 'metrics', METRICS_OPTION_KEYS)
  if (reset === undefined || typeof reset === 'boolean') return reset === true
  throw new OptionError(ErrorCode.OPTIONS_TYPE, `metrics option reset must be true or false, got ${shown(reset)}`)
}

/**
 * A factory (`middleware`, `errorHandler`) given a request was mounted uncalled.
 * @throws {OptionError} `ERR_EBT_MIDDLEWARE_NOT_CALLED`
 */
export function assertFactoryCalled(firstArgument: unknown, factory: string): void {
  if (isRequestLike(firstArgument)) {
    throw new OptionError(
      ErrorCode.MIDDLEWARE_NOT_CALLED,
      `${factory} was given a request: write app.use(${factory}()), not app.use(${factory})`
    )
  }
}

/** Validate the arguments of backgroundTask(). @throws {OptionError} */
export function parseTaskArguments(name: unknown, fn: unknown, passed: Readonly<BackgroundTaskOptions> | undefined): string {
  if (typeof name !== 'string' || name === '') {
    throw new OptionError(ErrorCode.TASK_NAME, `backgroundTask needs a non-empty string name, got ${shown(name)}`)
  }
  if (typeof fn !== 'function') {
    throw new OptionError(ErrorCode.TASK_FUNCTION, `backgroundTask needs a function to run, got ${shown(fn)}`)
  }
  const options = assertOptionsObject(passed, 'backgroundTask', TASK_OPTION_KEYS)
  if (options.group === undefined) return 'Nodejs'
  if (typeof options.group !== 'string' || options.group === '') {
    throw new OptionError(ErrorCode.TASK_GROUP, `backgroundTask group must be a non-empty string, got ${shown(options.group)}`)
  }
  return options.group
}

/** Validate a listener of onTransactionEnd(). @throws {OptionError} */
export function assertListener(listener: unknown): void {
  if (typeof listener !== 'function') {
    throw new OptionError(ErrorCode.LISTENER, `onTransactionEnd needs a function, got ${shown(listener)}`)
  }
}

function parseContext(context: unknown): AgentConfig['context'] {
  if (context === ContextEngineName.ASYNC_LOCAL_STORAGE || context === ContextEngineName.CLS_HOOKED) return context
  if (typeof context === 'object' && context !== null) {
    let missing: string[]
    try {
      missing = CLS_NAMESPACE_METHODS.filter((method) => typeof (context as Record<string, unknown>)[method] !== 'function')
    } catch (err) {
      throw new OptionError(ErrorCode.CONTEXT, `context could not be read: ${shown(err)}`)
    }
    if (missing.length === 0) return context as ClsNamespaceLike
    throw new OptionError(
      ErrorCode.CONTEXT,
      `context must be a cls-hooked namespace, but the object given lacks ${missing.join(', ')}`
    )
  }
  throw new OptionError(
    ErrorCode.CONTEXT,
    `context must be 'async-local-storage', 'cls-hooked' or a cls-hooked namespace, got ${shown(context)}`
  )
}

/** Read an options object once into a plain one, checking its keys. @throws {OptionError} `ERR_EBT_OPTIONS_TYPE`, `ERR_EBT_UNKNOWN_OPTION` */
export function assertOptionsObject<K extends string>(
  passed: unknown,
  where: string,
  allowed: readonly K[]
): { readonly [key in K]?: unknown } {
  if (passed === undefined) return {}
  if (typeof passed !== 'object' || passed === null || isArray(passed)) {
    throw new OptionError(ErrorCode.OPTIONS_TYPE, `${where} options must be an object, got ${shown(passed)}`)
  }
  // Read once, into a plain object: a hostile one (a revoked proxy, a throwing getter) fails here, with a code.
  const read: Record<string, unknown> = {}
  let unknown: string | undefined
  try {
    for (const key of Object.keys(passed)) {
      const value = (passed as Record<string, unknown>)[key]
      if ((allowed as readonly string[]).includes(key)) read[key] = value
      else if (value !== undefined && unknown === undefined) unknown = key
    }
  } catch (err) {
    throw new OptionError(ErrorCode.OPTIONS_TYPE, `${where} options could not be read: ${shown(err)}`)
  }
  if (unknown !== undefined) {
    const hint = allowed.length === 0 ? 'it takes no options' : `allowed: ${allowed.join(', ')}`
    throw new OptionError(ErrorCode.UNKNOWN_OPTION, `unknown ${where} option ${shown(unknown)} (${hint})`)
  }
  return read as { readonly [key in K]?: unknown }
}

/** A request passed where options were expected means the factory was mounted uncalled. */
function isRequestLike(value: unknown): boolean {
  try {
    return (
      typeof value === 'object' &&
      value !== null &&
      typeof (value as { method?: unknown }).method === 'string' &&
      typeof (value as { headers?: unknown }).headers === 'object' &&
      typeof (value as { on?: unknown }).on === 'function'
    )
  } catch {
    return false // a hostile object is no request; the options check says what is wrong with it
  }
}

/** What an integration's `agent` option must have (duck-typed: an agent of another installed copy of the package is one too). */
const AGENT_OPTION_METHODS = ['middleware', 'backgroundTask', 'onTransactionEnd'] as const

/**
 * An integration's `agent` option: an agent from `createAgent()`, with these methods as well.
 * @throws {OptionError} `ERR_EBT_OPTIONS_TYPE`
 */
export function parseAgentOption(agent: unknown, where: string, moreMethods: readonly string[] = []): Agent {
  if (looksLikeAgent(agent, moreMethods)) return agent as Agent
  throw new OptionError(ErrorCode.OPTIONS_TYPE, `${where} option agent must be an agent from createAgent(), got ${shown(agent, 0)}`)
}

function looksLikeAgent(agent: unknown, moreMethods: readonly string[]): boolean {
  if (typeof agent !== 'object' || agent === null) return false
  try {
    const apdexT = (agent as { apdexT?: unknown }).apdexT
    const has = (method: string): boolean => typeof (agent as Record<string, unknown>)[method] === 'function'
    return typeof apdexT === 'number' && apdexT > 0 && AGENT_OPTION_METHODS.every(has) && moreMethods.every(has)
  } catch {
    return false // a hostile object is no agent
  }
}

/** A received value as `inspect` shows it; one whose inspection throws still gets a coded error. */
function shown(value: unknown, depth?: number): string {
  try {
    return depth === undefined ? inspect(value) : inspect(value, { depth })
  } catch {
    return describeValue(value)
  }
}

/** `Array.isArray`, which throws for a revoked proxy: that is no options object either. */
function isArray(value: unknown): boolean {
  try {
    return Array.isArray(value)
  } catch {
    return true
  }
}

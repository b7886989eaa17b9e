// The New Relic agent's internals the bridge reaches, found and shape-checked once, at start.
import { AsyncLocalStorage } from 'node:async_hooks'
import path from 'node:path'

/** One of a transaction's metric recorders, bound to its segment. */
export type NrRecorder = (name: string | null, tx: NrTransaction) => void

/** The agent's internal transaction (lib/transaction/index.js), as far as the bridge uses it. */
export interface NrTransaction {
  type: string
  name: string | null
  _partialName: string | null
  ignore: boolean
  ignoreApdex?: boolean
  handledExternally: boolean
  baseSegment: object | null
  _recorders: NrRecorder[]
  end(): unknown
  finalizeName(name: string | null): void
  setForceIgnore(ignore: boolean): void
  isActive(): boolean
}

type Recorder = (segment: object, scope: string | null, tx: NrTransaction) => void

/** The public API object `require('newrelic')` returns, with the agent it fronts. */
interface NrApi {
  agent: {
    tracer: {
      getTransaction(): NrTransaction | null
      getContext(): unknown
      _contextManager: { _asyncLocalStorage: AsyncLocalStorage<unknown> }
    }
    config: { apdex_t: number }
  }
  startBackgroundTransaction(name: string, group: string, handle: () => void): unknown
  noticeError(error: Error): void
}

/** What the bridge works with; every piece checked present and of the expected shape. */
export interface NewRelicInternals {
  readonly api: NrApi
  readonly version: string
  readonly tracer: NrApi['agent']['tracer']
  /** The agent's context store: bound to the start channel so a background task runs in New Relic's own transaction. */
  readonly store: AsyncLocalStorage<unknown>
  /** The agent's Transaction constructor. */
  readonly Transaction: { prototype: object }
  /** The metric recorders of web and background transactions' base segments. */
  readonly recordWeb: Recorder
  readonly recordBackground: Recorder
}

/** The agent's transaction types the bridge maps to this package's two. */
export const NR_TYPE = { WEB: 'web', BACKGROUND: 'bg' } as const
/** What bound recorders are called, to find the base segment's one among a transaction's recorders. */
export const BOUND_RECORDER = { web: 'bound recordWeb', bg: 'bound recordBackground' } as const

const TRANSACTION_METHODS = ['end', 'finalizeName', 'getFullName', 'record', 'isActive', 'setForceIgnore', 'isWeb'] as const

/** The internals, or the reason they cannot be used (the bridge then changes nothing). */
export type InternalsResult = { internals: NewRelicInternals; reason?: undefined } | { internals?: undefined; reason: string }

/** The module files of Express; one in require.cache ahead of the agent's was loaded before it. */
const EXPRESS_FILE = /[\\/]node_modules[\\/]express[\\/]/

/** Find and check the agent's internals behind the `newrelic` module instance `api`. */
export function findInternals(api: object): InternalsResult {
  const file = moduleFile(api)
  const agent = (api as { agent?: unknown }).agent
  if (!isObject(agent)) return { reason: stubReason(file) }
  const config = (agent as { config?: { license_key?: unknown; serverless_mode?: { enabled?: unknown } } }).config
  if (isObject(config) && !config.license_key && config.serverless_mode?.enabled !== true) {
    return { reason: 'the New Relic agent has no licence key, so it does not start (set NEW_RELIC_LICENSE_KEY)' }
  }
  const agentProblem = agentShapeProblem(api, agent)
  if (agentProblem !== undefined) return { reason: `the newrelic agent is shaped unlike the agents the bridge supports: ${agentProblem}` }
  if (file === undefined) return { reason: 'cannot find where the newrelic module instance was loaded from (it is not in require.cache)' }
  const early = loadedBefore(file)
  if (early !== undefined) {
    return { reason: `express was loaded before newrelic (${early}), so the agent does not instrument it: require('newrelic') first, before express` }
  }
  const dir = path.dirname(file)
  let version: string
  let Transaction: unknown
  let recordWeb: unknown
  let recordBackground: unknown
  try {
    version = String(require(path.join(dir, 'package.json')).version)
    Transaction = require(path.join(dir, 'lib', 'transaction', 'index.js'))
    recordWeb = require(path.join(dir, 'lib', 'metrics', 'recorders', 'http.js'))
    recordBackground = require(path.join(dir, 'lib', 'metrics', 'recorders', 'other.js'))
  } catch (err) {
    return { reason: `the newrelic agent's files moved (${(err as Error)?.message})` }
  }
  const problem = moduleShapeProblem(Transaction, recordWeb, recordBackground)
  if (problem !== undefined) return { reason: `newrelic ${version} is shaped unlike the agents the bridge supports: ${problem}` }
  const tracer = (api as NrApi).agent.tracer
  return {
    internals: {
      api: api as NrApi,
      version,
      tracer,
      store: tracer._contextManager._asyncLocalStorage,
      Transaction: Transaction as NewRelicInternals['Transaction'],
      recordWeb: recordWeb as Recorder,
      recordBackground: recordBackground as Recorder
    }
  }
}

/** What differs in the API and agent objects from the shape the bridge was written against (agents 12 to 14), or undefined. */
function agentShapeProblem(api: object, agent: object): string | undefined {
  if (typeof (api as NrApi).startBackgroundTransaction !== 'function') return 'no startBackgroundTransaction()'
  if (typeof (api as NrApi).noticeError !== 'function') return 'no noticeError()'
  const tracer = (agent as { tracer?: unknown }).tracer
  if (!isObject(tracer) || typeof (tracer as NrApi['agent']['tracer']).getTransaction !== 'function' || typeof (tracer as NrApi['agent']['tracer']).getContext !== 'function') {
    return 'agent.tracer has no getTransaction() / getContext()'
  }
  const store = (tracer as { _contextManager?: { _asyncLocalStorage?: unknown } })._contextManager?._asyncLocalStorage
  if (!(store instanceof AsyncLocalStorage)) return 'agent.tracer keeps its context elsewhere than an AsyncLocalStorage'
  if (typeof (agent as { config?: { apdex_t?: unknown } }).config?.apdex_t !== 'number') return 'agent.config.apdex_t is not a number'
  return undefined
}

/** What differs in the agent's modules (Transaction, the two recorders), or undefined. */
function moduleShapeProblem(Transaction: unknown, recordWeb: unknown, recordBackground: unknown): string | undefined {
  if (typeof Transaction !== 'function') return 'lib/transaction is not the Transaction constructor'
  const types = (Transaction as { TYPES?: Record<string, unknown> }).TYPES
  if (types?.WEB !== NR_TYPE.WEB || types?.BG !== NR_TYPE.BACKGROUND) return 'Transaction.TYPES differ'
  const missing = TRANSACTION_METHODS.filter((method) => typeof (Transaction.prototype as Record<string, unknown>)[method] !== 'function')
  if (missing.length > 0) return `Transaction.prototype lacks ${missing.join(', ')}`
  if (typeof recordWeb !== 'function' || recordWeb.name !== 'recordWeb') return 'lib/metrics/recorders/http.js is not recordWeb'
  if (typeof recordBackground !== 'function' || recordBackground.name !== 'recordBackground') return 'lib/metrics/recorders/other.js is not recordBackground'
  return undefined
}

/**
 * Whether one live transaction has the fields the bridge changes: the agent's own Transaction, its
 * `end` not replaced on the instance, and a first metric recorder, its base segment's (the agent
 * binds it as it creates the transaction's first segment). Returns that recorder, or the problem.
 * Its name (`bound recordWeb`) is checked only when the type changes: a bound function's name is
 * built at each read, and most transactions keep their type.
 */
export function baseRecorderOf(internals: NewRelicInternals, tx: NrTransaction): NrRecorder | string {
  if (!(tx instanceof (internals.Transaction as unknown as new () => object))) return 'not the agent\'s Transaction'
  if (Object.prototype.hasOwnProperty.call(tx, 'end')) return 'its end() is replaced on the instance'
  if (tx.type !== NR_TYPE.WEB && tx.type !== NR_TYPE.BACKGROUND) return `type ${String(tx.type)}`
  if (!isObject(tx.baseSegment)) return 'no base segment'
  if (!Array.isArray(tx._recorders) || typeof tx.handledExternally !== 'boolean' || typeof tx.ignore !== 'boolean') return 'no _recorders, handledExternally or ignore'
  const first = tx._recorders[0]
  return typeof first === 'function' ? first : 'no base-segment recorder'
}

/** The file of the newrelic module whose exports are `api` (its index.js), as require.cache keys it. */
function moduleFile(api: object): string | undefined {
  for (const key of Object.keys(require.cache)) {
    const mod = require.cache[key]
    if (mod !== undefined && mod !== null && (mod as { exports?: unknown }).exports === api && typeof mod.filename === 'string') return key
  }
  return undefined
}

/**
 * An Express file loaded before the agent, or undefined. require.cache keys are in the order modules
 * started loading (Node caches a module before running it), so a key ahead of the agent's own was
 * loaded first and escaped the agent's require hooks: the check the agent's lib/uninstrumented.js
 * makes at its start (it only logs it).
 */
function loadedBefore(agentFile: string): string | undefined {
  for (const key of Object.keys(require.cache)) {
    if (key === agentFile) return undefined
    if (EXPRESS_FILE.test(key)) return key
  }
  return undefined
}

/** Why the module has no agent: the generic reason, or the Node version its package does not support. */
function stubReason(file: string | undefined): string {
  const reason = 'the New Relic agent is not running (newrelic loaded its stub API: disabled, no licence key, or a Node version it does not support)'
  if (file === undefined) return reason
  try {
    const pkg = require(path.join(path.dirname(file), 'package.json')) as { version?: unknown; engines?: { node?: unknown } }
    const needs = /^>=\s*v?(\d+)/.exec(String(pkg.engines?.node ?? ''))
    if (needs !== null && Number(process.versions.node.split('.')[0]) < Number(needs[1])) {
      return `the New Relic agent is not running: newrelic ${String(pkg.version)} needs Node ${String(pkg.engines?.node)} and this is Node ${process.version}, so it loaded its stub API`
    }
  } catch {
    // no package.json next to it: the generic reason
  }
  return reason
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null
}

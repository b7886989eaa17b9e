// Public types of express-background-task/newrelic.
import type { Agent } from '../types'

/** Options of {@link bridgeNewRelic}; all optional. */
export interface NewRelicBridgeOptions {
  /**
   * Follow only the transactions of this agent (from `createAgent()`). Defaults to every agent's,
   * the default agent's included.
   */
  readonly agent?: Agent
  /**
   * The `newrelic` module instance (what `require('newrelic')` returns). Defaults to the app's
   * `require('newrelic')`, which is loaded when the subpath is imported.
   */
  readonly newrelic?: object
}

/** What {@link bridgeNewRelic} returns. */
export interface NewRelicBridge {
  /** Whether New Relic's transactions now follow this package's classification. */
  readonly active: boolean
  /** Why the bridge is not active (the agent is not running, or its internals differ); undefined when active. */
  readonly reason: string | undefined
  /**
   * Undo what the bridge changed in the agent: transactions that start afterwards are left as the
   * agent makes them; those in flight still end classified. Idempotent.
   */
  stop(): void
}

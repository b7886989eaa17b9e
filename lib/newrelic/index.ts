// express-background-task/newrelic: the classification in the New Relic agent's own transactions (peer: newrelic).
export { bridgeNewRelic } from './bridge'
export type { NewRelicBridge, NewRelicBridgeOptions } from './types'

// Type test: express-background-task/newrelic as a CommonJS consumer uses it.
import { createAgent } from 'express-background-task'
import { bridgeNewRelic, type NewRelicBridge, type NewRelicBridgeOptions } from 'express-background-task/newrelic'

const bridge: NewRelicBridge = bridgeNewRelic()
const active: boolean = bridge.active
const reason: string | undefined = bridge.reason
bridge.stop()
// the newrelic module is any object (the agent ships no types)
const options: NewRelicBridgeOptions = { agent: createAgent(), newrelic: {} }
bridgeNewRelic(options)
// @ts-expect-error -- an unknown option
bridgeNewRelic({ agnet: createAgent() })
export { active, reason }

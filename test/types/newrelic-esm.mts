// Type test: express-background-task/newrelic as an ESM consumer imports it.
import { bridgeNewRelic, type NewRelicBridge } from 'express-background-task/newrelic'

export const bridge: NewRelicBridge = bridgeNewRelic({})
export const reason: string | undefined = bridge.reason

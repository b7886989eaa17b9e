// The bridge's debug logger: everything it cannot do goes here, never into a request.
import createDebug from 'debug'

export const logNewRelic = createDebug('express-background-task:newrelic')

// The dashboard's debug logger: everything it cannot do goes here, never into a request.
import createDebug from 'debug'

export const logDashboard = createDebug('express-background-task:dashboard')

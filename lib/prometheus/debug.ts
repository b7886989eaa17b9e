// The exporter's debug logger: everything it cannot do goes here, never into a request.
import createDebug from 'debug'

export const logPrometheus = createDebug('express-background-task:prometheus')

// The package's debug loggers, one namespace per concern under express-background-task:*.
import createDebug from 'debug'

const log = createDebug('express-background-task')

export const logAgent = log.extend('agent')
export const logContext = log.extend('context')
export const logFlags = log.extend('flags')
export const logNaming = log.extend('naming')
export const logTransaction = log.extend('transaction')

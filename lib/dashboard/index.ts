// express-background-task/dashboard: a live page of web vs background, served by the app itself.
export { dashboard } from './handler'
export { reportToPrimary, CLUSTER_MESSAGE_TYPE } from './cluster'
export { DASHBOARD_WINDOWS, DASHBOARD_POINTS } from './view'
export type {
  DashboardFigures,
  DashboardHandler,
  DashboardInFlight,
  DashboardNameRow,
  DashboardOpenGroup,
  DashboardOptions,
  DashboardSeries,
  DashboardView,
  DashboardWindow,
  PrimaryReport,
  ReportToPrimaryOptions
} from './types'

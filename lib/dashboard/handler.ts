// dashboard(): the handler serving the page, its files and its event stream, with the recording behind them.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ErrorCode, getTransaction, setBackgroundTask } from '../index'
import { assertFactoryCalled, OptionError } from '../options'
import { loadAssets, renderPage, SCRIPT_FILE, STYLE_FILE, type Asset } from './assets'
import { ClusterSource } from './cluster'
import { logDashboard } from './debug'
import { mergeInFlight } from './in-flight'
import { parseDashboardOptions } from './options'
import { Recorder } from './recorder'
import { everySecond } from './ticker'
import type { DashboardHandler, DashboardOptions, DashboardView, DashboardWindow } from './types'
import { computeView, DASHBOARD_WINDOWS } from './view'

/** The default agent's T (createAgent's default), shown before any transaction says otherwise. */
const DEFAULT_APDEX_T = 0.5
const DEFAULT_WINDOW: DashboardWindow = 5
/** Names in flight listed on the page. */
const OPEN_GROUPS = 10
/** How long a browser waits before reconnecting a dropped stream. */
const RETRY_MS = 2000

const Route = { PAGE: 'page', SCRIPT: 'script', STYLE: 'style', EVENTS: 'events' } as const
type Route = (typeof Route)[keyof typeof Route]
const ROUTES: ReadonlyMap<string, Route> = new Map<string, Route>([
  ['/', Route.PAGE],
  ['', Route.PAGE],
  ['/index.html', Route.PAGE],
  [`/${SCRIPT_FILE}`, Route.SCRIPT],
  [`/${STYLE_FILE}`, Route.STYLE],
  ['/events', Route.EVENTS]
])

/** Sent with every answer: the page loads nothing from elsewhere, cannot be framed, leaks no referrer. */
const COMMON_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY'
} as const
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** An open event stream and the window it shows. */
interface Stream {
  readonly res: ServerResponse
  readonly windowMinutes: DashboardWindow
}

/**
 * A live page of this package's figures: web and background throughput, web response time
 * p50/p95/p99, Apdex over time, error rates, transactions in flight, the busiest names, and what
 * web response time and Apdex would read had the requests marked background stayed web. Updated
 * every second over server-sent events (the stream is itself marked background; the page and its
 * files are ignored), over windows of 1, 5 and 15 minutes.
 *
 * Safe by default: with `NODE_ENV=production` every request answers 404 unless `authorize(req)`
 * returns true. Nothing is written through it; it shows names and aggregates, no URLs or headers.
 *
 * @param options - authorize (defaults to none), agent (defaults to every agent), cluster (in a
 *   cluster's primary, also the workers' figures; defaults to false).
 * @returns a `(req, res, next?)` handler with `view()` and `close()`.
 * @throws {TypeError} `ERR_EBT_OPTIONS_TYPE` or `ERR_EBT_UNKNOWN_OPTION` for a bad option;
 *   `ERR_EBT_MIDDLEWARE_NOT_CALLED` when mounted uncalled (`app.use(dashboard)`).
 * @example
 * app.use('/_background', dashboard({ authorize: (req) => req.user?.isAdmin === true }))
 */
export function dashboard(options?: DashboardOptions): DashboardHandler {
  assertFactoryCalled(options, 'dashboard')
  const config = parseDashboardOptions(options)
  const assets = loadAssets()
  const recorder = new Recorder(config.agent)
  recorder.subscribe()
  const clusterSource = config.cluster ? new ClusterSource(recorder.ring) : undefined
  clusterSource?.start()
  const fallbackApdexT = config.agent?.apdexT ?? DEFAULT_APDEX_T
  const streams = new Set<Stream>()
  let closed = false

  function inFlightNow(now: number) {
    const own = recorder.inFlight.summary(now, OPEN_GROUPS)
    return clusterSource === undefined ? own : mergeInFlight([own, ...clusterSource.inFlight(now)], OPEN_GROUPS)
  }

  function view(windowMinutes: DashboardWindow = DEFAULT_WINDOW, at: number = Date.now()): DashboardView {
    if (!DASHBOARD_WINDOWS.includes(windowMinutes)) {
      throw new OptionError(ErrorCode.OPTIONS_TYPE, `dashboard view window must be one of ${DASHBOARD_WINDOWS.join(', ')} minutes, got ${String(windowMinutes)}`)
    }
    if (typeof at !== 'number' || !Number.isFinite(at)) throw new OptionError(ErrorCode.OPTIONS_TYPE, `dashboard view at must be epoch milliseconds, got ${String(at)}`)
    const workers = clusterSource === undefined ? null : clusterSource.inFlight(at).length
    return computeView({ ring: recorder.ring, inFlight: inFlightNow(at), fallbackApdexT, workers }, windowMinutes, at)
  }

  // In a primary, a little after the workers' reports of the second that just ended.
  const ticker = everySecond(clusterSource === undefined ? 10 : 250, function dashboardTick(now) {
    try {
      sampleInFlight(now)
      if (streams.size === 0) return
      const at = Math.floor(now / 1000) * 1000
      const views = new Map<DashboardWindow, string>()
      for (const stream of streams) {
        let event = views.get(stream.windowMinutes)
        if (event === undefined) views.set(stream.windowMinutes, (event = viewEvent(view(stream.windowMinutes, at))))
        send(stream.res, event)
      }
    } catch (err) {
      logDashboard('fail to update the open pages: %O', err)
    }
  })

  /** In flight at the end of the second that just ended, for the chart. */
  function sampleInFlight(now: number): void {
    const second = recorder.ring.at(Math.floor(now / 1000) - 1)
    if (second === undefined) return
    let { web, background } = recorder.inFlight.counts()
    if (clusterSource !== undefined) {
      for (const worker of clusterSource.inFlight(now)) {
        web += worker.web
        background += worker.background
      }
    }
    second.inFlightWeb = web
    second.inFlightBackground = background
    second.sampled = true
  }

  function serveEvents(req: IncomingMessage, res: ServerResponse, query: string): void {
    markBackground(req)
    const own = getTransaction(req)
    if (own !== undefined) recorder.ownStreams.add(own)
    const windowMinutes = parseWindow(query)
    res.writeHead(200, { ...COMMON_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' })
    if (req.method === 'HEAD') return void res.end()
    const stream: Stream = { res, windowMinutes }
    streams.add(stream)
    res.on('close', function dashboardStreamClosed() {
      streams.delete(stream)
    })
    send(res, `retry: ${RETRY_MS}\n\n`)
    // the page paints at once, not a second later
    send(res, viewEvent(view(windowMinutes)))
  }

  function serve(req: IncomingMessage, res: ServerResponse, route: Route, query: string): void {
    if (route === Route.EVENTS) return serveEvents(req, res, query)
    ignore(req)
    if (route === Route.SCRIPT) return serveAsset(req, res, assets.script)
    if (route === Route.STYLE) return serveAsset(req, res, assets.style)
    const body = renderPage(assets.page, basePath(req))
    res.writeHead(200, {
      ...COMMON_HEADERS,
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
      'Content-Security-Policy': PAGE_CSP
    })
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  function authorized(req: IncomingMessage, then: (ok: boolean) => void): void {
    const authorize = config.authorize
    if (authorize === undefined) return then(process.env.NODE_ENV !== 'production')
    let result: unknown
    try {
      result = authorize(req as never)
    } catch (err) {
      logDashboard('deny a request: authorize threw %O', err)
      return then(false)
    }
    if (!isThenable(result)) return then(result === true)
    let settled = false
    const once = (ok: boolean): void => {
      if (settled) return
      settled = true
      then(ok)
    }
    try {
      result.then(
        (ok) => once(ok === true),
        (err: unknown) => {
          logDashboard('deny a request: authorize rejected %O', err)
          once(false)
        }
      )
    } catch (err) {
      logDashboard('deny a request: authorize returned a broken promise %O', err)
      once(false)
    }
  }

  const handler = function dashboardHandler(req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void {
    const url = req.url ?? '/'
    const queryAt = url.indexOf('?')
    const path = queryAt === -1 ? url : url.slice(0, queryAt)
    const route = ROUTES.get(path)
    if (route === undefined) {
      if (typeof next === 'function') return next()
      return notFound(req, res)
    }
    if (closed) return notFound(req, res)
    authorized(req, function answer(ok) {
      try {
        if (!ok) return notFound(req, res)
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          ignore(req)
          res.writeHead(405, { ...COMMON_HEADERS, Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' })
          return void res.end('Method Not Allowed\n')
        }
        serve(req, res, route, queryAt === -1 ? '' : url.slice(queryAt + 1))
      } catch (err) {
        logDashboard('fail to answer %s: %O', route, err)
        if (!res.headersSent) notFound(req, res)
        else res.destroy()
      }
    })
  } as DashboardHandler

  handler.view = view
  handler.close = function close(): void {
    if (closed) return
    closed = true
    ticker.stop()
    recorder.unsubscribe()
    clusterSource?.stop()
    for (const { res } of streams) res.end()
    streams.clear()
    logDashboard('close the dashboard')
  }
  logDashboard('serve a dashboard of %s%s', config.agent === undefined ? 'every agent' : 'one agent', config.cluster ? ', with the cluster workers' : '')
  return handler
}

/** The stream itself is background, so an open page never weighs on the web figures it shows. */
function markBackground(req: IncomingMessage): void {
  try {
    if (!setBackgroundTask(true)) getTransaction(req)?.setBackgroundTask(true)
  } catch (err) {
    logDashboard('fail to mark the stream background: %O', err)
  }
}

/** The page, its files and refused requests are recorded nowhere. */
function ignore(req: IncomingMessage): void {
  try {
    getTransaction(req)?.ignore()
  } catch (err) {
    logDashboard('fail to ignore a dashboard request: %O', err)
  }
}

function notFound(req: IncomingMessage, res: ServerResponse): void {
  ignore(req)
  res.writeHead(404, { ...COMMON_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' })
  res.end(req.method === 'HEAD' ? undefined : 'Not Found\n')
}

function serveAsset(req: IncomingMessage, res: ServerResponse, asset: Asset): void {
  if (req.headers['if-none-match'] === asset.etag) {
    res.writeHead(304, { ...COMMON_HEADERS, ETag: asset.etag, 'Cache-Control': 'no-cache' })
    return void res.end()
  }
  res.writeHead(200, { ...COMMON_HEADERS, 'Content-Type': asset.type, 'Content-Length': asset.body.length, ETag: asset.etag, 'Cache-Control': 'no-cache' })
  res.end(req.method === 'HEAD' ? undefined : asset.body)
}

/** One server-sent event carrying a view. */
function viewEvent(view: DashboardView): string {
  return `event: view\ndata: ${JSON.stringify(view)}\n\n`
}

/** Write to a stream unless it is backed up (a slow client skips seconds rather than growing a buffer). */
function send(res: ServerResponse, chunk: string): void {
  if (res.writableEnded || res.destroyed || res.writableNeedDrain) return
  res.write(chunk)
  // a compression middleware holds writes back until flushed
  const flush = (res as { flush?: unknown }).flush
  if (typeof flush === 'function') flush.call(res)
}

function parseWindow(query: string): DashboardWindow {
  const asked = Number(new URLSearchParams(query).get('window'))
  return DASHBOARD_WINDOWS.includes(asked as DashboardWindow) ? (asked as DashboardWindow) : DEFAULT_WINDOW
}

/**
 * Where the dashboard is mounted, from the part of the original URL the framework stripped
 * (`/_background` for `app.use('/_background', ...)`); '' when served at the root.
 */
function basePath(req: IncomingMessage): string {
  const path = (req.url ?? '/').split('?')[0]
  const original = ((req as { originalUrl?: unknown }).originalUrl as string | undefined)?.split('?')[0]
  if (typeof original !== 'string') return ''
  let base = original.endsWith(path) ? original.slice(0, original.length - path.length) : path === '/' ? original : ''
  if (base.endsWith('/')) base = base.slice(0, -1)
  // never a protocol-relative URL (//host) in the page
  return base.replace(/^\/+/, '/')
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function'
}

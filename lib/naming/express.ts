// Express: the route template that answered, found by walking the app's router stacks with each layer's own match().
import type { IncomingMessage, ServerResponse } from 'node:http'
import { describeValue, logNaming } from '../debug'
import { inferredMountTemplate } from './express4-mounts'
import { matchLayer, type AppLike, type ExpressRequest, type LayerLike, type MatchResult, type RouteLike } from './layers'
import { joinTemplates, NOT_FOUND, pathname, serverOf, stringifyPath, UNKNOWN_MOUNT } from './paths'

export function isExpressApp(app: unknown): app is AppLike {
  return typeof app === 'function' && typeof (app as AppLike).handle === 'function' && typeof (app as AppLike).set === 'function'
}

export function expressPath(req: ExpressRequest, innermostApp: AppLike, res: ServerResponse): string {
  const apps: AppLike[] = []
  for (let app: AppLike | undefined = innermostApp; app !== undefined; app = app.parent) apps.unshift(app)
  const path = pathname(req.originalUrl ?? req.url ?? '/')
  try {
    const roots = rootApps(req, apps[0])
    if (req.route !== undefined) {
      // A route of the app's own router has one template whatever the URL: found once, then looked up.
      const simple = apps.length === 1 && roots.length === 1
      if (simple) {
        const known = topRouteTemplates.get(req.route)
        if (known !== undefined) return known
      }
      const search: RouteSearch = { target: req.route, apps, opaque: [], matchRoute: true }
      for (const root of roots) {
        const found = findRoute(stackOf(root), path, root, '', search)
        if (found === undefined) continue
        const template = found === '' ? '/' : found
        if (simple && stackOf(root)?.some((layer) => layer.route === req.route)) topRouteTemplates.set(req.route, template)
        return template
      }
      // Express has left the sub-app the route is in (an error handler of a parent answers): when one
      // such mount leads there, the route is taken to be the sub-app's own, under that mount.
      if (search.opaque.length === 1) return joinTemplates(search.opaque[0], stringifyPath(req.route.path)) || '/'
      // a middleware rewrote `req.url` on the way: the route as found, whatever its own path
      search.matchRoute = false
      for (const root of roots) {
        const found = findRoute(stackOf(root), path, root, '', search)
        if (found !== undefined) return found === '' ? '/' : found
      }
      if (logNaming.enabled) logNaming('find no mount for route %s; name it by its own path', describeValue(req.route.path))
      return routeTemplate(req.route)
    }
    const baseUrl = req.baseUrl ?? ''
    if (baseUrl !== '') {
      for (const root of roots) {
        const found = findMount(stackOf(root), path, baseUrl, apps, root)
        if (found !== undefined) return found === '' ? '/' : found
      }
      if (logNaming.enabled) logNaming('find no mount for a middleware that answered')
      return UNKNOWN_MOUNT
    }
  } catch (err) {
    if (logNaming.enabled) logNaming('fail to walk the router stack: %s', describeValue(err))
    return UNKNOWN_MOUNT
  }
  return res.statusCode === 404 ? NOT_FOUND : '/'
}

const serverApps = new WeakMap<object, AppLike | null>()
/** Templates of routes registered on a root app's own router (no mount in between). */
const topRouteTemplates = new WeakMap<RouteLike, string>()

/**
 * The app whose server received the request, tried before the top of `req.app`'s chain: an app
 * used as a plain middleware (`router.use(subApp)`) has no `parent`, so the chain starts there.
 */
function rootApps(req: IncomingMessage, top: AppLike): AppLike[] {
  const server = serverOf(req)
  if (server === undefined) return [top]
  let app = serverApps.get(server)
  if (app === undefined) {
    app = server.listeners('request').find(isExpressApp) ?? null
    serverApps.set(server, app)
  }
  return app === null || app === top ? [top] : [app, top]
}

interface RouteSearch {
  target: RouteLike
  /** The request's chain of apps, outermost first. */
  apps: AppLike[]
  /** Templates of matching sub-app mounts that could not be entered. */
  opaque: string[]
  /** Whether the route's own layer must match too (the same router may be mounted at `/` and at `/v1`). */
  matchRoute: boolean
}

/** The template of the route searched for under `prefix`, with the templates of the mounts that lead to it. */
function findRoute(stack: LayerLike[] | undefined, path: string, owner: AppLike, prefix: string, search: RouteSearch): string | undefined {
  if (stack === undefined) return undefined
  for (const layer of stack) {
    if (layer.route !== undefined) {
      if (layer.route === search.target && (!search.matchRoute || matchLayer(layer, path) !== undefined)) {
        return joinTemplates(prefix, stringifyPath(layer.route.path))
      }
      continue
    }
    const child = childOf(layer, search.apps, owner)
    if (child === undefined) continue
    const match = matchLayer(layer, path)
    if (match === undefined) continue
    const template = joinTemplates(prefix, mountTemplate(layer, match, child.app))
    if (child.stack === undefined) {
      if (!search.opaque.includes(template)) search.opaque.push(template)
      continue
    }
    const found = findRoute(child.stack, remainder(path, match.path), child.owner, template, search)
    if (found !== undefined) return found
  }
  return undefined
}

/** The template of the middleware mounted at the concrete prefix `baseUrl` (it answered the request). */
function findMount(stack: LayerLike[] | undefined, path: string, baseUrl: string, apps: AppLike[], owner: AppLike): string | undefined {
  if (stack === undefined) return undefined
  for (const layer of stack) {
    if (layer.route !== undefined) continue
    const match = matchLayer(layer, path)
    if (match === undefined) continue
    // Express leaves a mount's trailing slash out of baseUrl
    const matched = match.path.endsWith('/') ? match.path.slice(0, -1) : match.path
    if (!baseUrl.startsWith(matched)) continue
    const rest = baseUrl.slice(matched.length)
    if (rest !== '' && rest[0] !== '/') continue
    const child = childOf(layer, apps, owner)
    if (rest === '') return mountTemplate(layer, match, child?.app)
    if (child === undefined) continue
    const found = findMount(child.stack, remainder(path, match.path), rest, apps, child.owner)
    if (found !== undefined) return joinTemplates(mountTemplate(layer, match, child.app), found)
  }
  return undefined
}

/**
 * What a layer leads into: a mounted router's stack, an app used as a plain middleware, or, for a
 * sub-app mounted with `app.use` (a closure Express made), the app of the request's chain whose
 * parent is `owner`. `stack` is undefined when that sub-app is not in the chain any more.
 */
function childOf(layer: LayerLike, apps: AppLike[], owner: AppLike): { stack: LayerLike[] | undefined; app?: AppLike; owner: AppLike } | undefined {
  const handle = layer.handle
  if (handle === undefined || handle === null) return undefined
  if (Array.isArray(handle.stack)) return { stack: handle.stack as LayerLike[], owner }
  if (isExpressApp(handle)) return { stack: stackOf(handle), owner: handle }
  if (handle.name === 'mounted_app') {
    const app = apps.find((candidate) => candidate.parent === owner)
    return app === undefined ? { stack: undefined, owner } : { stack: stackOf(app), app, owner: app }
  }
  return undefined
}

function stackOf(app: AppLike): LayerLike[] | undefined {
  // Express 4 keeps the router in `_router` (its `router` getter throws); Express 5 makes it lazily behind `router`.
  if (app._router !== undefined) return app._router.stack
  try {
    return app.router?.stack
  } catch {
    return undefined
  }
}

/** The template a mount layer was registered with ('' for the root). */
function mountTemplate(layer: LayerLike, match: MatchResult, app: AppLike | undefined): string {
  if (app !== undefined && app.mountpath !== undefined && !Array.isArray(app.mountpath)) return stringifyPath(app.mountpath)
  if (match.pattern !== undefined) return stringifyPath(match.pattern)
  if (match.path === '') return ''
  return inferredMountTemplate(layer, match)
}

function routeTemplate(route: RouteLike): string {
  return joinTemplates('', stringifyPath(route.path)) || '/'
}

/** The path a mounted router sees, as Express computes it: the mount trimmed off, a leading slash kept. */
function remainder(path: string, matched: string): string {
  const rest = path.slice(matched.length)
  return rest[0] === '/' ? rest : `/${rest}`
}

// Express: the route template that answered, found by walking the app's router stacks with each layer's own match().
import type { ServerResponse } from 'node:http'
import { describeValue, logNaming } from '../debug'
import { inferredMountTemplate, readsAsMount } from './express4-mounts'
import { matchLayer, type AppLike, type ExpressRequest, type LayerLike, type MatchResult, type RouteLike } from './layers'
import { joinTemplates, NOT_FOUND, pathname, serverOf, stringifyPath, UNKNOWN_MOUNT } from './paths'
import { EXPRESS_GROUP, RequestRoute } from './route'

export function isExpressApp(app: unknown): app is AppLike {
  return typeof app === 'function' && typeof (app as AppLike).handle === 'function' && typeof (app as AppLike).set === 'function'
}

/**
 * The template of what answered. Called when the response ends, while `req.baseUrl` and `req.url`
 * are what the answering handler saw: together they are the path Express matched, after any
 * rewrite of `req.url` on the way (a locale prefix taken off), so the walk matches that path, and
 * `req.originalUrl` only when that finds nothing. The first walk knows layers by their handles, as
 * Express made them; only when it finds nothing does a second one look behind handles other
 * instrumentations wrapped, and into routers used as route handlers, so apps without either pay
 * nothing for them. `route` is `req.route`, read once by the caller.
 */
export function expressPath(req: ExpressRequest, innermostApp: AppLike, res: ServerResponse, route: RouteLike | undefined): string {
  const apps: AppLike[] = []
  for (let app: AppLike | undefined = innermostApp; app !== undefined; app = app.parent) apps.unshift(app)
  try {
    const roots = rootApps(req, apps[0])
    if (route !== undefined) {
      const simple = apps.length === 1 && roots.length === 1
      const matched = matchedPath(req)
      const search: RouteSearch = { target: route, apps, opaque: [], matchRoute: true, deep: false }
      const found = eachWalk(req, matched, (path, deep) => {
        search.deep = deep
        for (const root of roots) {
          const template = findRoute(stackOf(root), path, root, '', search)
          if (template === undefined) continue
          const named = template === '' ? '/' : template
          if (simple && stackOf(root)?.some((layer) => layer.route === route)) topRoutes.set(route, new RequestRoute(EXPRESS_GROUP, named, true))
          return named
        }
        // Express has left the sub-app the route is in (an error handler of a parent answers): when one
        // such mount leads there, the route is taken to be the sub-app's own, under that mount.
        if (search.opaque.length === 1) return joinTemplates(search.opaque[0], stringifyPath(route.path)) || '/'
        return undefined
      })
      if (found !== undefined) return found
      // the route as found, whatever its own path (nothing above matched the way Express did)
      search.matchRoute = false
      for (const root of roots) {
        const found = findRoute(stackOf(root), matched, root, '', search)
        if (found !== undefined) return found === '' ? '/' : found
      }
      if (logNaming.enabled) logNaming('find no mount for route %s; name it by its own path', describeValue(route.path))
      return routeTemplate(route)
    }
    const baseUrl = req.baseUrl ?? ''
    if (baseUrl !== '') {
      const matched = matchedPath(req)
      const walk: MountWalk = { baseUrl, apps, deep: false }
      const found = eachWalk(req, matched, (path, deep) => {
        walk.deep = deep
        for (const root of roots) {
          const template = findMount(stackOf(root), path, baseUrl, root, walk)
          if (template !== undefined) return template === '' ? '/' : template
        }
        return undefined
      })
      if (found !== undefined) return found
      if (logNaming.enabled) logNaming('find no mount for a middleware that answered')
      return UNKNOWN_MOUNT
    }
  } catch (err) {
    if (logNaming.enabled) logNaming('fail to walk the router stack: %s', describeValue(err))
    return UNKNOWN_MOUNT
  }
  return res.statusCode === 404 ? NOT_FOUND : '/'
}

/**
 * Try `attempt` on the walks, cheapest first, until one names the request: the path Express
 * matched, then the original URL (when a rewrite changed it), each first as Express made the
 * layers and then deep (behind other instrumentations' wrappers, into routers used as handlers).
 */
function eachWalk(req: ExpressRequest, matched: string, attempt: (path: string, deep: boolean) => string | undefined): string | undefined {
  let original: string | undefined
  for (let pass = 0; pass < 4; pass++) {
    let path = matched
    if (pass % 2 === 1) {
      original ??= pathname(req.originalUrl ?? '/')
      if (original === matched) continue
      path = original
    }
    const found = attempt(path, pass >= 2)
    if (found !== undefined) return found
  }
  return undefined
}

/** `req.baseUrl` + `req.url` without the query: the path the outermost router matched, as the answering handler saw it. */
function matchedPath(req: ExpressRequest): string {
  const url = req.url
  const original = req.originalUrl
  if (typeof url !== 'string') return pathname(original ?? '/')
  const baseUrl = typeof req.baseUrl === 'string' ? req.baseUrl : ''
  // nothing rewrote the URL (the usual case): the original URL is that path, no string to build
  if (typeof original === 'string' && original.length === baseUrl.length + url.length && original.endsWith(url) && original.startsWith(baseUrl)) {
    return pathname(original)
  }
  const rest = pathname(url)
  // Express puts a slash in front of an empty rest (`/api` under `/api`): it was not in the path
  return rest === '/' && baseUrl !== '' ? baseUrl : baseUrl + rest
}

const serverApps = new WeakMap<object, AppLike | null>()
/**
 * The server last asked about and its app: most processes have one server, found without a lookup.
 * (A closed server stays referenced until a request of another one ends: one server, never more.)
 */
let lastServer: object | undefined
let lastServerApp: AppLike | null = null
/** Routes registered on a root app's own router (no mount in between), with their template. */
const topRoutes = new WeakMap<RouteLike, RequestRoute>()

/**
 * The shared {@link RequestRoute} of a route of the app's own router, which has one template
 * whatever the URL: found once by the walk, then looked up before anything is built for one.
 */
export function knownTopRoute(req: ExpressRequest, innermostApp: AppLike, route: RouteLike | undefined): RequestRoute | undefined {
  if (route === undefined || innermostApp.parent !== undefined) return undefined
  const known = topRoutes.get(route)
  return known !== undefined && rootApp(req, innermostApp) === null ? known : undefined
}
/** Mount layers whose handle another instrumentation wrapped, and the sub-app each was found to lead into. */
const wrappedMounts = new WeakMap<LayerLike, AppLike>()

/**
 * The app whose server received the request, tried before the top of `req.app`'s chain: an app
 * used as a plain middleware (`router.use(subApp)`) has no `parent`, so the chain starts there.
 */
function rootApps(req: ExpressRequest, top: AppLike): AppLike[] {
  const app = rootApp(req, top)
  return app === null ? [top] : [app, top]
}

/** The app whose server received the request when it is not `top` itself; null when there is none other. */
function rootApp(req: ExpressRequest, top: AppLike): AppLike | null {
  const server = serverOf(req)
  if (server === undefined) return null
  if (server === lastServer) return lastServerApp === top ? null : lastServerApp
  let app = serverApps.get(server)
  if (app === undefined) {
    app = server.listeners('request').find(isExpressApp) ?? null
    serverApps.set(server, app)
  }
  lastServer = server
  lastServerApp = app
  return app === top ? null : app
}

interface RouteSearch {
  target: RouteLike
  /** The request's chain of apps, outermost first. */
  apps: AppLike[]
  /** Templates of matching sub-app mounts that could not be entered. */
  opaque: string[]
  /** Whether the route's own layer must match too (the same router may be mounted at `/` and at `/v1`). */
  matchRoute: boolean
  /** The second walk: behind wrapped handles, and into routers used as route handlers. */
  deep: boolean
}

interface MountWalk {
  /** The concrete prefix the answering middleware was mounted under. */
  baseUrl: string
  apps: AppLike[]
  deep: boolean
}

/** The template of the route searched for under `prefix`, with the templates of the mounts that lead to it. */
function findRoute(stack: LayerLike[] | undefined, path: string, owner: AppLike, prefix: string, search: RouteSearch): string | undefined {
  if (stack === undefined) return undefined
  for (const layer of stack) {
    const route = layer.route
    if (route !== undefined) {
      if (route === search.target) {
        if (!search.matchRoute || matchLayer(layer, path) !== undefined) return joinTemplates(prefix, stringifyPath(route.path))
        continue
      }
      if (!search.deep) continue
      // a router used as a route's handler (`outer.get('/*splat', inner)`) sees the path the route saw
      const routers = routersOf(route)
      if (routers === undefined || matchLayer(layer, path) === undefined) continue
      for (const router of routers) {
        const found = findRoute(router, path, owner, prefix, search)
        if (found !== undefined) return found
      }
      continue
    }
    let child = childOf(layer, search.apps, owner, search.deep)
    let match: MatchResult | undefined
    if (child === undefined) {
      if (!search.deep || !mayLeadIntoApp(search.apps, owner)) continue
      match = matchLayer(layer, path)
      if (match === undefined) continue
      child = wrappedChildOf(layer, match, search.apps, owner)
      if (child === undefined) continue
    } else {
      match = matchLayer(layer, path)
      if (match === undefined) continue
    }
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
function findMount(stack: LayerLike[] | undefined, path: string, baseUrl: string, owner: AppLike, walk: MountWalk): string | undefined {
  if (stack === undefined) return undefined
  for (const layer of stack) {
    const route = layer.route
    if (route !== undefined) {
      if (!walk.deep) continue
      const routers = routersOf(route)
      if (routers === undefined || matchLayer(layer, path) === undefined) continue
      for (const router of routers) {
        const found = findMount(router, path, baseUrl, owner, walk)
        if (found !== undefined) return found
      }
      continue
    }
    const match = matchLayer(layer, path)
    if (match === undefined) continue
    // Express leaves a mount's trailing slash out of baseUrl
    const matched = match.path.endsWith('/') ? match.path.slice(0, -1) : match.path
    if (!baseUrl.startsWith(matched)) continue
    const rest = baseUrl.slice(matched.length)
    if (rest !== '' && rest[0] !== '/') continue
    let child = childOf(layer, walk.apps, owner, walk.deep)
    if (child === undefined && walk.deep && mayLeadIntoApp(walk.apps, owner)) child = wrappedChildOf(layer, match, walk.apps, owner)
    if (rest === '') return mountTemplate(layer, match, child?.app)
    if (child === undefined) continue
    const found = findMount(child.stack, remainder(path, match.path), rest, child.owner, walk)
    if (found !== undefined) return joinTemplates(mountTemplate(layer, match, child.app), found)
  }
  return undefined
}

interface Child {
  /** The stack the layer leads into; undefined for a sub-app that is not in the request's chain any more. */
  stack: LayerLike[] | undefined
  /** A sub-app mounted with `app.use(path, subApp)`: its `mountpath` is the mount's template. */
  app?: AppLike
  /** The app whose stack `stack` is (or is inside). */
  owner: AppLike
}

/**
 * What a layer leads into, told by the handle: a router's stack, an app used as a plain middleware,
 * or Express's `mounted_app` closure around a sub-app mounted with `app.use` (then the app of the
 * request's chain whose parent is `owner`). Another instrumentation may have wrapped the handle:
 * OpenTelemetry's copies a router's properties onto its wrapper and keeps the original as
 * `__original` (shimmer); New Relic's keeps the function's name. A wrapper that shows neither is
 * left to `wrappedChildOf`.
 */
function childOf(layer: LayerLike, apps: AppLike[], owner: AppLike, deep: boolean): Child | undefined {
  let handle = layer.handle
  for (let depth = 0; handle !== undefined && handle !== null; depth++) {
    if (Array.isArray(handle.stack)) return { stack: handle.stack as LayerLike[], owner }
    if (isExpressApp(handle)) return { stack: stackOf(handle), owner: handle }
    if (handle.name === MOUNTED_APP) {
      const app = apps.find((candidate) => candidate.parent === owner)
      return app === undefined ? { stack: undefined, owner } : { stack: stackOf(app), app, owner: app }
    }
    if (!deep || depth === MAX_UNWRAP) return undefined
    handle = originalOf(handle)
  }
  return undefined
}

const MOUNTED_APP = 'mounted_app'
/** Wrappers around wrappers (two instrumentations on one app) are followed this deep. */
const MAX_UNWRAP = 4

/** The function a wrapper wraps, where the wrapper shows it (shimmer's `__original`, `__wrapped` as a function). */
function originalOf(handle: NonNullable<LayerLike['handle']>): LayerLike['handle'] | undefined {
  const wrapper = handle as { __original?: unknown; __wrapped?: unknown }
  const original = typeof wrapper.__original === 'function' ? wrapper.__original : wrapper.__wrapped
  return typeof original === 'function' && original !== handle ? (original as LayerLike['handle']) : undefined
}

/** Whether the request is inside an app that a layer of `owner` could lead into, when the layer's handle says nothing. */
function mayLeadIntoApp(apps: AppLike[], owner: AppLike): boolean {
  return apps.length > 1 || apps[0] !== owner
}

/**
 * A sub-app behind a handle that a wrapper hides, recognised by structure: the app of the request's
 * chain mounted by `owner` (its `parent`), when this layer was registered with that app's
 * `mountpath`; or, for the outermost app of the chain when it has no parent (an app used as a
 * plain middleware of a router), a layer outside the chain that matched part of the path — the
 * walk only accepts what it finds there when the route or mount searched for is in it.
 */
function wrappedChildOf(layer: LayerLike, match: MatchResult, apps: AppLike[], owner: AppLike): Child | undefined {
  const known = wrappedMounts.get(layer)
  if (known !== undefined && apps.includes(known)) return { stack: stackOf(known), app: known, owner: known }
  const index = apps.indexOf(owner)
  if (index === -1) {
    const top = apps[0]
    return top.parent === undefined && match.path !== '' ? { stack: stackOf(top), owner: top } : undefined
  }
  const app = apps[index + 1]
  if (app === undefined || !sameMount(layer, match, app.mountpath)) return undefined
  wrappedMounts.set(layer, app)
  return { stack: stackOf(app), app, owner: app }
}

/** Whether a layer was registered with `mountpath`: the same path on Express 5; on Express 4, its regexp matches the template as a path, whole, or reads back to it. */
function sameMount(layer: LayerLike, match: MatchResult, mountpath: unknown): boolean {
  if (layer.rawPath !== undefined) return samePath(layer.rawPath, mountpath)
  if (mountpath instanceof RegExp) return layer.regexp === mountpath || String(layer.regexp) === String(mountpath)
  const paths = Array.isArray(mountpath) ? mountpath.flat(Infinity) : [mountpath]
  if (paths.length > 1) return readsAsMount(layer, match, paths)
  const path = paths[0]
  if (typeof path !== 'string') return false
  const self = matchLayer(layer, path)
  const whole = self !== undefined && trimSlash(self.path) === trimSlash(path)
  if (match.keys.length > 0) matchLayer(layer, match.path) // put back the state Express 4 keeps on the layer
  return whole || readsAsMount(layer, match, paths)
}

function samePath(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (Array.isArray(a) && Array.isArray(b)) {
    const flat = b.flat(Infinity)
    return a.length === flat.length && a.every((path, i) => samePath(path, flat[i]))
  }
  return a instanceof RegExp && b instanceof RegExp && String(a) === String(b)
}

function trimSlash(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
}

/** The stacks of routers used as handlers of a route (`outer.get('/*splat', inner)`); undefined when it has none. */
function routersOf(route: RouteLike): LayerLike[][] | undefined {
  const stack = route.stack
  if (!Array.isArray(stack)) return undefined
  let routers: LayerLike[][] | undefined
  for (const layer of stack as LayerLike[]) {
    const handle = layer.handle
    if (handle !== undefined && handle !== null && Array.isArray(handle.stack)) (routers ??= []).push(handle.stack as LayerLike[])
  }
  return routers
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

/**
 * The template a mount layer was registered with ('' for the root). A path array is named as New
 * Relic names it, the alternatives joined by `,` (as routes are), whichever one matched.
 */
function mountTemplate(layer: LayerLike, match: MatchResult, app: AppLike | undefined): string {
  if (app !== undefined && app.mountpath !== undefined) return stringifyPath(app.mountpath)
  if (Array.isArray(layer.rawPath)) return stringifyPath(layer.rawPath)
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

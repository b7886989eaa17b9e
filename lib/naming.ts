// Route templates -> transaction names, recovered from the app's own router stacks at the end of a request.
//
// Nothing of Express is patched, so it works whichever copy of Express the app loaded and however
// late the package was loaded. At the end of a request we know the route that answered
// (`req.route`) or the concrete prefix a middleware answered under (`req.baseUrl`); we walk the
// app's router stacks from the top with the layers' own `match()`, so mounted routers, sub-apps,
// `mergeParams` and error handlers are followed exactly as Express followed them, and we read each
// mount's template: the pattern the layer reports (router >= 2.3), a sub-app's `mountpath`, the
// literal of an Express 4 layer's regexp, or, for an Express 4 mount with parameters, the template
// inferred by probing which segments the layer captures as parameters.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { logNaming } from './debug'

export const NOT_FOUND = '(not found)'
/** A mount whose template could not be recovered; never a raw URL value. */
export const UNKNOWN_MOUNT = '(unknown)'
const EXPRESS_GROUP = 'Expressjs'
const CONNECT_GROUP = 'Connect'
/** Probes which segments a layer captures as parameters; URL-safe, never a real route segment. */
const SENTINEL = 'ebt-probe-4f1d9c'

interface RouteLike {
  path: unknown
}
interface MatchResult {
  path: string
  params: Record<string, unknown>
  keys: string[]
  pattern: unknown
}
interface LayerLike {
  route?: RouteLike
  handle?: { stack?: unknown; name?: string }
  name?: string
  match(path: string): unknown
  path?: string
  params?: Record<string, unknown>
  keys?: Array<string | { name: string | number }>
  regexp?: RegExp
  matchers?: unknown[]
}
interface AppLike {
  mountpath?: unknown
  parent?: AppLike
  _router?: { stack: LayerLike[] }
  router?: { stack: LayerLike[] }
  handle?: unknown
  set?: unknown
}
type ExpressRequest = IncomingMessage & { app?: AppLike; route?: RouteLike; baseUrl?: string; originalUrl?: string }

/** The group (`Expressjs` or `Connect`) and the template part of a web transaction's name. */
export function webTransactionPath(req: IncomingMessage, res: ServerResponse): { group: string; path: string } {
  const expressReq = req as ExpressRequest
  const app = expressReq.app
  if (isExpressApp(app)) return { group: EXPRESS_GROUP, path: expressPath(expressReq, app, res) }
  return { group: CONNECT_GROUP, path: connectPath(expressReq, res) }
}

function isExpressApp(app: unknown): app is AppLike {
  return typeof app === 'function' && typeof (app as AppLike).handle === 'function' && typeof (app as AppLike).set === 'function'
}

// ---------------------------------------------------------------------------------------- Express

function expressPath(req: ExpressRequest, innermostApp: AppLike, res: ServerResponse): string {
  const apps: AppLike[] = []
  for (let app: AppLike | undefined = innermostApp; app !== undefined; app = app.parent) apps.unshift(app)
  const path = pathname(req.originalUrl ?? req.url ?? '/')
  try {
    if (req.route !== undefined) {
      const found = findRoute(stackOf(apps[0]), path, req.route, apps, 0)
      if (found !== undefined) return found === '' ? '/' : found
      if (logNaming.enabled) logNaming('find no mount for route %o; name it by its own path', req.route.path)
      return routeTemplate(req.route)
    }
    const baseUrl = req.baseUrl ?? ''
    if (baseUrl !== '') {
      const found = findMount(stackOf(apps[0]), path, baseUrl, apps, 0)
      if (found !== undefined) return found === '' ? '/' : found
      if (logNaming.enabled) logNaming('find no mount for a middleware that answered')
      return UNKNOWN_MOUNT
    }
  } catch (err) {
    if (logNaming.enabled) logNaming('fail to walk the router stack: %o', err)
    return UNKNOWN_MOUNT
  }
  return res.statusCode === 404 ? NOT_FOUND : '/'
}

/** The template of the route `target`, with the templates of the mounts that lead to it. */
function findRoute(stack: LayerLike[] | undefined, path: string, target: RouteLike, apps: AppLike[], depth: number): string | undefined {
  if (stack === undefined) return undefined
  for (const layer of stack) {
    if (layer.route !== undefined) {
      if (layer.route === target) return stringifyPath(target.path)
      continue
    }
    const child = childOf(layer, apps, depth)
    if (child === undefined) continue
    const match = matchLayer(layer, path)
    if (match === undefined) continue
    const found = findRoute(child.stack, remainder(path, match.path), target, apps, child.depth)
    if (found !== undefined) return joinTemplates(mountTemplate(layer, match, child.app), found)
  }
  return undefined
}

/** The template of the middleware mounted at the concrete prefix `baseUrl` (it answered the request). */
function findMount(stack: LayerLike[] | undefined, path: string, baseUrl: string, apps: AppLike[], depth: number): string | undefined {
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
    const child = childOf(layer, apps, depth)
    if (rest === '') return mountTemplate(layer, match, child?.app)
    if (child === undefined) continue
    const found = findMount(child.stack, remainder(path, match.path), rest, apps, child.depth)
    if (found !== undefined) return joinTemplates(mountTemplate(layer, match, child.app), found)
  }
  return undefined
}

/** A mounted router's stack, or, for a mounted sub-app (a closure Express made), the next app of the request's chain. */
function childOf(layer: LayerLike, apps: AppLike[], depth: number): { stack: LayerLike[] | undefined; app?: AppLike; depth: number } | undefined {
  const handle = layer.handle
  if (handle === undefined || handle === null) return undefined
  if (Array.isArray(handle.stack)) return { stack: handle.stack as LayerLike[], depth }
  if (handle.name === 'mounted_app' && depth + 1 < apps.length) {
    const app = apps[depth + 1]
    return { stack: stackOf(app), app, depth: depth + 1 }
  }
  return undefined
}

function stackOf(app: AppLike): LayerLike[] | undefined {
  // Express 4 keeps the router in `_router`; Express 5 makes it lazily behind the `router` getter.
  return (app._router ?? app.router)?.stack
}

/** Run a layer's own matcher. Router >= 2.3 returns the match; older ones store it on the layer. */
function matchLayer(layer: LayerLike, path: string): MatchResult | undefined {
  let result: unknown
  try {
    result = layer.match(path)
  } catch {
    return undefined
  }
  if (result === true) {
    return { path: layer.path ?? '', params: layer.params ?? {}, keys: keyNames(layer.keys), pattern: undefined }
  }
  if (typeof result === 'object' && result !== null) return result as MatchResult
  return undefined
}

function keyNames(keys: LayerLike['keys']): string[] {
  if (keys === undefined) return []
  return keys.map((key) => (typeof key === 'object' ? String(key.name) : String(key)))
}

const templateCache = new WeakMap<LayerLike, string>()

/** The template a mount layer was registered with ('' for the root). */
function mountTemplate(layer: LayerLike, match: MatchResult, app: AppLike | undefined): string {
  if (app !== undefined && app.mountpath !== undefined && !Array.isArray(app.mountpath)) return stringifyPath(app.mountpath)
  if (match.pattern !== undefined) return stringifyPath(match.pattern)
  if (match.path === '') return ''
  const cached = templateCache.get(layer)
  if (cached !== undefined) return cached
  return inferTemplate(layer, match)
}

/**
 * Express 4 keeps no template for `app.use(path, fn)`, only a regexp, which is read back (casing
 * and all). For a layer whose regexp is not path-to-regexp 0.1's (older router 2.x reports no
 * pattern either), each segment of the concrete match is replaced by a probe in turn, and a segment
 * the layer then captures as parameter `:name` is that parameter. Anything left that holds a
 * parameter's value becomes `*`, so a raw value never reaches a name.
 */
function inferTemplate(layer: LayerLike, match: MatchResult): string {
  const keys = match.keys
  const read = templateOfRegexp(layer.regexp, keys)
  if (read !== undefined) {
    templateCache.set(layer, read)
    return read
  }
  if (keys.length === 0) return match.path
  const segments = match.path.split('/')
  const resolved: Array<string | undefined> = new Array(segments.length)
  let found = 0
  for (let i = 1; i < segments.length; i++) {
    if (segments[i] === '') continue
    const probe = segments.slice()
    probe[i] = SENTINEL
    const probed = matchLayer(layer, probe.join('/'))
    if (probed === undefined) continue
    for (const key of keys) {
      if (probed.params[key] === SENTINEL) {
        resolved[i] = `:${key}`
        found++
        break
      }
    }
  }
  matchLayer(layer, match.path) // put back the state Express 4 keeps on the layer
  let exact = found === keys.length && !(layer.matchers !== undefined && layer.matchers.length > 1)
  for (let i = 1; i < segments.length; i++) {
    if (resolved[i] !== undefined) {
      segments[i] = resolved[i] as string
      continue
    }
    const segment = safeDecode(segments[i])
    for (const key of keys) {
      const value = match.params[key]
      if (typeof value !== 'string' || value === '' || !segment.includes(value)) continue
      segments[i] = segment === value ? `:${key}` : '*'
      exact = false
      break
    }
  }
  const template = segments.join('/')
  if (exact) templateCache.set(layer, template)
  return template
}

/** The pieces path-to-regexp 0.1 (Express 4) writes for a path, and what each was in the template. */
const REGEXP_TOKENS: Array<[string, (key: string) => string]> = [
  ['(?:\\/([^/]+?))?', (key) => `/:${key}?`],
  ['(?:\\/([^/]+?))', (key) => `/:${key}`],
  ['(?:\\.([^/\\.]+?))?', (key) => `.:${key}?`],
  ['(?:\\.([^/\\.]+?))', (key) => `.:${key}`],
  ['(.*)', () => '*']
]
const MOUNT_SUFFIX = '\\/?(?=\\/|$)'
const LITERAL_CHAR = /[\w~!$&'+,;=:@%-]/

/** `^\/org(?:\/([^/]+?))\/?(?=\/|$)` -> `/org/:orgId`; undefined for anything it does not know. */
function templateOfRegexp(regexp: RegExp | undefined, keys: string[]): string | undefined {
  if (regexp === undefined) return undefined
  let source = regexp.source
  if (!source.startsWith('^') || !source.endsWith(MOUNT_SUFFIX)) return undefined
  source = source.slice(1, -MOUNT_SUFFIX.length)
  let template = ''
  let key = 0
  let i = 0
  next: while (i < source.length) {
    for (const [token, write] of REGEXP_TOKENS) {
      if (source.startsWith(token, i)) {
        if (key >= keys.length) return undefined
        template += write(keys[key++])
        i += token.length
        continue next
      }
    }
    const char = source[i]
    if (char === '\\' && i + 1 < source.length && (source[i + 1] === '/' || source[i + 1] === '.')) {
      template += source[i + 1]
      i += 2
    } else if (LITERAL_CHAR.test(char)) {
      template += char
      i++
    } else return undefined
  }
  return key === keys.length ? template.replace(/\/$/, '') : undefined
}

function routeTemplate(route: RouteLike): string {
  return stringifyPath(route.path) || '/'
}

function stringifyPath(path: unknown): string {
  if (typeof path === 'string') return path === '/' ? '' : path
  if (Array.isArray(path)) return path.map(stringifyPath).join(',')
  return String(path)
}

function joinTemplates(prefix: string, rest: string): string {
  return prefix.endsWith('/') && rest.startsWith('/') ? prefix + rest.slice(1) : prefix + rest
}

/** The path a mounted router sees, as Express computes it: the mount trimmed off, a leading slash kept. */
function remainder(path: string, matched: string): string {
  const rest = path.slice(matched.length)
  return rest[0] === '/' ? rest : `/${rest}`
}

// ---------------------------------------------------------------------------------------- Connect

type ConnectLayer = { route: string; handle: unknown }
const connectStacks = new WeakMap<object, ConnectLayer[] | null>()

/**
 * Plain Connect has no routes: the name is the mount path of the middleware that answered, spelled
 * as registered. Connect leaves `req.url` trimmed by that mount while the middleware runs, so the
 * concrete prefix is what `originalUrl` has in front of `url`.
 */
function connectPath(req: ExpressRequest, res: ServerResponse): string {
  const original = pathname(req.originalUrl ?? req.url ?? '/')
  const current = pathname(req.url ?? '/')
  let removed = ''
  if (original.length > current.length && original.endsWith(current)) removed = original.slice(0, original.length - current.length)
  else if (current === '/' && original !== '/') removed = original
  removed = removed.replace(/\/$/, '')
  if (removed === '') return res.statusCode === 404 ? NOT_FOUND : '/'
  const registered = connectStack(req)?.find((layer) => layer.route.toLowerCase() === removed.toLowerCase())
  return registered !== undefined ? registered.route : removed
}

/** Connect does not put the app on the request; find it among the server's request listeners. */
function connectStack(req: IncomingMessage): ConnectLayer[] | undefined {
  const server = (req.socket as unknown as { server?: { listeners?: (event: string) => unknown[] } } | null)?.server
  if (server === undefined || typeof server.listeners !== 'function') return undefined
  let stack = connectStacks.get(server)
  if (stack === undefined) {
    const app = server.listeners('request').find((listener) => Array.isArray((listener as { stack?: unknown }).stack))
    stack = app === undefined ? null : ((app as { stack: ConnectLayer[] }).stack)
    connectStacks.set(server, stack)
  }
  return stack ?? undefined
}

function pathname(url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

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
    const roots = rootApps(req, apps[0])
    if (req.route !== undefined) {
      const search: RouteSearch = { target: req.route, apps, opaque: [], matchRoute: true }
      for (const root of roots) {
        const found = findRoute(stackOf(root), path, root, '', search)
        if (found !== undefined) return found === '' ? '/' : found
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
      if (logNaming.enabled) logNaming('find no mount for route %o; name it by its own path', req.route.path)
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
    if (logNaming.enabled) logNaming('fail to walk the router stack: %o', err)
    return UNKNOWN_MOUNT
  }
  return res.statusCode === 404 ? NOT_FOUND : '/'
}

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
 * and all; for a path array, the alternative that matched). A RegExp mount is named by the RegExp.
 * For a layer whose regexp cannot be read (older router 2.x reports no pattern either), each
 * segment of the concrete match is replaced by a probe in turn, and a segment the layer then
 * captures as parameter `:name` is that parameter. A segment found as a literal in the regexp is
 * spelled as the regexp has it (without a regexp, a segment no probe may replace is a literal);
 * anything else is a value: `:name` when it is a whole parameter's, else `*`, so a raw value never
 * reaches a name.
 */
function inferTemplate(layer: LayerLike, match: MatchResult): string {
  const keys = match.keys
  const regexp = layer.regexp
  const read = regexp === undefined ? undefined : templateOfSource(regexp.source, keys)
  if (read !== undefined) {
    templateCache.set(layer, read)
    return read
  }
  if (regexp !== undefined) {
    // Express 4 keeps a RegExp mount as given; name it as Express 5 does, by the RegExp
    if (!regexp.source.endsWith(LOOKAHEAD)) {
      const template = String(regexp)
      templateCache.set(layer, template)
      return template
    }
    const alternative = templateOfAlternatives(regexp, keys, match.path)
    if (alternative !== undefined) return alternative
  }
  const segments = match.path.split('/')
  const resolved: Array<string | undefined> = new Array(segments.length)
  /** Segments the layer still matches with a probe in their place: not literals. */
  const free: boolean[] = new Array(segments.length).fill(false)
  let found = 0
  for (let i = 1; i < segments.length && keys.length > 0; i++) {
    if (segments[i] === '') continue
    const probe = segments.slice()
    probe[i] = SENTINEL
    const probed = matchLayer(layer, probe.join('/'))
    if (probed === undefined) continue
    free[i] = true
    for (const key of keys) {
      if (probed.params[key] === SENTINEL) {
        resolved[i] = `:${key}`
        found++
        break
      }
    }
  }
  if (keys.length > 0) matchLayer(layer, match.path) // put back the state Express 4 keeps on the layer
  let exact = found === keys.length && !(layer.matchers !== undefined && layer.matchers.length > 1)
  for (let i = 1; i < segments.length; i++) {
    if (resolved[i] !== undefined) {
      segments[i] = resolved[i] as string
      continue
    }
    if (segments[i] === '') continue
    // a literal, spelled as the regexp has it; without a regexp, a segment the layer needs as it is
    const spelled = regexp === undefined ? (free[i] ? undefined : segments[i]) : registeredSpelling(regexp, segments[i])
    if (spelled !== undefined) {
      segments[i] = spelled
      continue
    }
    exact = false
    // neither a probed parameter nor a literal of the regexp: a value, named if it is a whole parameter
    const segment = safeDecode(segments[i])
    const key = keys.find((name) => match.params[name] === segment)
    segments[i] = key === undefined ? '*' : `:${key}`
  }
  const template = segments.join('/')
  if (exact) templateCache.set(layer, template)
  return template
}

/** A whole literal segment of the regexp, spelled as the regexp has it (`users` -> `Users`); undefined when there is none. */
function registeredSpelling(regexp: RegExp, segment: string): string | undefined {
  const source = regexp.source
  const escaped = `\\/${segment.replace(/\./g, '\\.')}`
  const haystack = regexp.flags.includes('i') ? source.toLowerCase() : source
  const needle = regexp.flags.includes('i') ? escaped.toLowerCase() : escaped
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + 1)) {
    const after = source[at + escaped.length]
    if (after === undefined || !LITERAL_CHAR.test(after)) return source.slice(at + 2, at + escaped.length).replace(/\\\./g, '.')
  }
  return undefined
}

/** A path array's regexp (`^\/a...|^\/b...`): the template of the alternative that matches `path`. */
function templateOfAlternatives(regexp: RegExp, keys: string[], path: string): string | undefined {
  const parts = regexp.source.split('|^')
  if (parts.length < 2) return undefined
  let first = 0
  for (let p = 0; p < parts.length; p++) {
    const source = p === 0 ? parts[p] : `^${parts[p]}`
    const count = countCaptures(source)
    let alternative: RegExp
    try {
      alternative = new RegExp(source, regexp.flags)
    } catch {
      return undefined
    }
    if (alternative.test(path)) return templateOfSource(source, keys.slice(first, first + count))
    first += count
  }
  return undefined
}

function countCaptures(source: string): number {
  let count = 0
  for (const found of source.matchAll(/\\.|\((?!\?)/g)) if (found[0][0] !== '\\') count++
  return count
}

/** The pieces path-to-regexp 0.1 (Express 4) writes for a path, the keys each holds, and what each was in the template. */
const REGEXP_TOKENS: Array<[string, number, (key: string) => string]> = [
  ['(?:\\/([^/]+?)((?:[/].+?)?))?', 2, (key) => `/:${key}*?`],
  ['(?:\\/([^/]+?)((?:[/].+?)?))', 2, (key) => `/:${key}*`],
  ['(?:\\/([^/]+?))?', 1, (key) => `/:${key}?`],
  ['(?:\\/([^/]+?))', 1, (key) => `/:${key}`],
  ['(?:\\.([^/\\.]+?))?', 1, (key) => `.:${key}?`],
  ['(?:\\.([^/\\.]+?))', 1, (key) => `.:${key}`],
  ['(.*)', 1, () => '*']
]
/** A parameter with its own pattern (`/:id(\\d+)`), after a slash, a dot, or nothing. */
const CUSTOM_CAPTURES: Array<[string, string]> = [
  ['(?:\\/(', '/'],
  ['(?:\\.(', '.'],
  ['(?:(', '']
]
const LOOKAHEAD = '(?=\\/|$)'
const MOUNT_SUFFIX = '\\/?' + LOOKAHEAD
/** A parameter after a literal in its segment (`/pre-:id`): a capture that stops at that literal. */
const BACKTRACK_START = '(?:((?:(?!\\/|'
const BACKTRACK_END = ').)+?))'
const LITERAL_CHAR = /[\w~!$&'+,;=:@%-]/

/** `^\/org(?:\/([^/]+?))\/?(?=\/|$)` -> `/org/:orgId`; undefined for anything it does not know. */
function templateOfSource(full: string, keys: string[]): string | undefined {
  if (!full.startsWith('^') || !full.endsWith(MOUNT_SUFFIX)) return undefined
  const source = full.slice(1, -MOUNT_SUFFIX.length)
  let template = ''
  let key = 0
  let i = 0
  next: while (i < source.length) {
    for (const [token, count, write] of REGEXP_TOKENS) {
      if (source.startsWith(token, i)) {
        if (key + count > keys.length) return undefined
        template += write(keys[key])
        key += count
        i += token.length
        continue next
      }
    }
    if (source.startsWith(BACKTRACK_START, i)) {
      const end = source.indexOf(BACKTRACK_END, i + BACKTRACK_START.length)
      if (end === -1 || key >= keys.length) return undefined
      i = end + BACKTRACK_END.length
      template += `:${keys[key++]}`
      if (source[i] === '?') template += source[i++]
      continue
    }
    for (const [start, separator] of CUSTOM_CAPTURES) {
      if (!source.startsWith(start, i)) continue
      const end = closingParen(source, i + start.length)
      if (end === -1 || source[end + 1] !== ')' || key >= keys.length) return undefined
      template += `${separator}:${keys[key++]}(${source.slice(i + start.length, end)})`
      i = end + 2
      if (source[i] === '?') template += source[i++]
      continue next
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

/** Index of the `)` that closes a group whose content starts at `from`; -1 if none. */
function closingParen(source: string, from: number): number {
  let depth = 1
  for (let i = from; i < source.length; i++) {
    const char = source[i]
    if (char === '\\') i++
    else if (char === '(') depth++
    else if (char === ')' && --depth === 0) return i
  }
  return -1
}

function routeTemplate(route: RouteLike): string {
  return joinTemplates('', stringifyPath(route.path)) || '/'
}

function stringifyPath(path: unknown): string {
  if (typeof path === 'string') return path === '/' ? '' : path
  if (Array.isArray(path)) return path.map(stringifyPath).join(',')
  return String(path)
}

/** Join with one slash between; a template without a leading slash (Express 4's `*`) gets one. */
function joinTemplates(prefix: string, rest: string): string {
  if (rest === '') return prefix
  if (prefix.endsWith('/')) return rest.startsWith('/') ? prefix + rest.slice(1) : prefix + rest
  return rest.startsWith('/') ? prefix + rest : `${prefix}/${rest}`
}

/** The path a mounted router sees, as Express computes it: the mount trimmed off, a leading slash kept. */
function remainder(path: string, matched: string): string {
  const rest = path.slice(matched.length)
  return rest[0] === '/' ? rest : `/${rest}`
}

// ---------------------------------------------------------------------------------------- Connect

type ConnectLayer = { route: string; handle: unknown }
type ServerLike = { listeners(event: string): unknown[] }
const connectStacks = new WeakMap<object, ConnectLayer[] | null>()
const serverApps = new WeakMap<object, AppLike | null>()

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
  // Connect adds a slash when the rest does not start with one (`/api` and `/api.json` under `/api`)
  else if (original.endsWith(current.slice(1))) removed = original.slice(0, original.length - current.length + 1)
  removed = removed.replace(/\/$/, '')
  if (removed === '') return res.statusCode === 404 ? NOT_FOUND : '/'
  const registered = connectStack(req)?.find((layer) => layer.route.toLowerCase() === removed.toLowerCase())
  return registered !== undefined ? registered.route : removed
}

/** Connect does not put the app on the request; find it among the server's request listeners. */
function connectStack(req: IncomingMessage): ConnectLayer[] | undefined {
  const server = serverOf(req)
  if (server === undefined) return undefined
  let stack = connectStacks.get(server)
  if (stack === undefined) {
    const app = server.listeners('request').find((listener) => Array.isArray((listener as { stack?: unknown }).stack))
    stack = app === undefined ? null : ((app as { stack: ConnectLayer[] }).stack)
    connectStacks.set(server, stack)
  }
  return stack ?? undefined
}

/** The server that received the request, to find the app among its request listeners. */
function serverOf(req: IncomingMessage): ServerLike | undefined {
  const server = (req.socket as unknown as { server?: Partial<ServerLike> } | null)?.server
  return server !== undefined && server !== null && typeof server.listeners === 'function' ? (server as ServerLike) : undefined
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

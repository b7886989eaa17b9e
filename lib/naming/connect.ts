// Connect: the mount path, spelled as registered, of the middleware that answered.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ExpressRequest } from './layers'
import { NOT_FOUND, pathname, serverOf } from './paths'

type ConnectLayer = { route: unknown; handle: unknown } | null | undefined

const connectStacks = new WeakMap<object, ConnectLayer[] | null>()

/**
 * Plain Connect has no routes: the name is the mount path of the middleware that answered, spelled
 * as registered. Connect leaves `req.url` trimmed by that mount while the middleware runs, so the
 * concrete prefix is what `originalUrl` has in front of `url`.
 */
export function connectPath(req: ExpressRequest, res: ServerResponse): string {
  const original = pathname(req.originalUrl ?? req.url ?? '/')
  const current = pathname(req.url ?? '/')
  let removed = ''
  if (original.length > current.length && original.endsWith(current)) removed = original.slice(0, original.length - current.length)
  // Connect adds a slash when the rest does not start with one (`/api` and `/api.json` under `/api`)
  else if (original.endsWith(current.slice(1))) removed = original.slice(0, original.length - current.length + 1)
  removed = removed.replace(/\/$/, '')
  if (removed === '') return res.statusCode === 404 ? NOT_FOUND : '/'
  const lower = removed.toLowerCase()
  const registered = connectStack(req)?.find((layer) => typeof layer?.route === 'string' && layer.route.toLowerCase() === lower)
  return registered?.route !== undefined ? (registered.route as string) : removed
}

/** Connect does not put the app on the request; find it among the server's request listeners. */
function connectStack(req: IncomingMessage): ConnectLayer[] | undefined {
  const server = serverOf(req)
  if (server === undefined) return undefined
  let stack = connectStacks.get(server)
  if (stack === undefined) {
    // a layer pushed by hand may be anything; only string routes are compared
    const app = server.listeners('request').find((listener) => Array.isArray((listener as { stack?: unknown }).stack))
    stack = app === undefined ? null : ((app as { stack: ConnectLayer[] }).stack)
    connectStacks.set(server, stack)
  }
  return stack ?? undefined
}

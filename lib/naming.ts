// Route templates -> transaction names, recovered from the app's own router stacks at the end of a request.
//
// Nothing of Express is patched, so it works whichever copy of Express the app loaded and however
// late the package was loaded. At the end of a request we know the route that answered
// (`req.route`) or the concrete prefix a middleware answered under (`req.baseUrl`); we walk the
// app's router stacks from the top with the layers' own `match()`, so mounted routers, sub-apps,
// `mergeParams` and error handlers are followed exactly as Express followed them, and we read each
// mount's template: the pattern the layer reports (router >= 2.3), a sub-app's `mountpath`, or an
// Express 4 layer's regexp read back (naming/express4-mounts.ts). Connect has no routes: its name
// is the mount path that answered (naming/connect.ts).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { describeValue, logNaming } from './debug'
import { connectPath } from './naming/connect'
import { expressPath, isExpressApp, knownTopRoute } from './naming/express'
import type { ExpressRequest } from './naming/layers'
import { UNKNOWN_MOUNT } from './naming/paths'
import { CONNECT_GROUP, EXPRESS_GROUP, RequestRoute } from './naming/route'

/**
 * The group (`Expressjs` or `Connect`) and the template part of a web transaction's name. It runs
 * inside the app's `res.end()` and Node's `emit`, so it never throws: whatever the request, the
 * app or another library made of them (a throwing getter, odd layers), a failure names the
 * request `(unknown)`.
 */
export function webTransactionPath(req: IncomingMessage, res: ServerResponse): RequestRoute {
  let group = CONNECT_GROUP
  try {
    const expressReq = req as ExpressRequest
    const app = expressReq.app
    if (isExpressApp(app)) {
      group = EXPRESS_GROUP
      // read once, for both: every read of `req` misses V8's caches (carrier.ts)
      const route = expressReq.route
      return knownTopRoute(expressReq, app, route) ?? new RequestRoute(group, expressPath(expressReq, app, res, route))
    }
    return new RequestRoute(group, connectPath(expressReq, res))
  } catch (err) {
    if (logNaming.enabled) logNaming('fail to name a request: %s', describeValue(err))
    return new RequestRoute(group, UNKNOWN_MOUNT)
  }
}

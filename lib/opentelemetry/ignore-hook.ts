// A ready-made ignoreIncomingRequestHook for instrumentation-http: requests known to be long-lived before they start.
import type { IncomingMessage } from 'node:http'

/**
 * Whether a request is long-lived from its first byte: a server-sent events stream (`Accept:
 * text/event-stream`) or a protocol upgrade (`Upgrade`, WebSockets). Pass it as instrumentation-http's
 * `ignoreIncomingRequestHook` to make no server span for them at all; the transaction is still
 * recorded by this package (as background once the app marks it).
 * @param req - the incoming request.
 * @returns `true` for an event stream or an upgrade.
 */
export function isLongLivedRequest(req: IncomingMessage): boolean {
  const headers = req.headers
  if (headers.upgrade !== undefined) return true
  const accept = headers.accept
  return typeof accept === 'string' && accept.toLowerCase().includes('text/event-stream')
}

// Small path helpers and the names shared by the Express and Connect naming.
import type { IncomingMessage } from 'node:http'

/** The name's template when nothing answered the request. */
export const NOT_FOUND = '(not found)'

/** A mount whose template could not be recovered; never a raw URL value. */
export const UNKNOWN_MOUNT = '(unknown)'

export type ServerLike = { listeners(event: string): unknown[] }

/** The server that received the request, to find the app among its request listeners. */
export function serverOf(req: IncomingMessage): ServerLike | undefined {
  const server = (req.socket as unknown as { server?: Partial<ServerLike> } | null)?.server
  return server !== undefined && server !== null && typeof server.listeners === 'function' ? (server as ServerLike) : undefined
}

/** The URL without its query string. */
export function pathname(url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

/** A decoded path segment, or the segment itself when it is not valid percent-encoding. */
export function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

/** A registered path as it goes into a name: `/` is the empty root, arrays are joined with `,`, a RegExp is its source. */
export function stringifyPath(path: unknown): string {
  if (typeof path === 'string') return path === '/' ? '' : path
  if (Array.isArray(path)) return path.map(stringifyPath).join(',')
  return String(path)
}

/** Join with one slash between; a template without a leading slash (Express 4's `*`) gets one. */
export function joinTemplates(prefix: string, rest: string): string {
  if (rest === '') return prefix
  if (prefix.endsWith('/')) return rest.startsWith('/') ? prefix + rest.slice(1) : prefix + rest
  return rest.startsWith('/') ? prefix + rest : `${prefix}/${rest}`
}

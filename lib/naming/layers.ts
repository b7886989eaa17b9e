// The shapes of Express's apps, layers and routes the walk relies on, and running a layer's own matcher.
import type { IncomingMessage } from 'node:http'

export interface RouteLike {
  path: unknown
  stack?: unknown
}

export interface MatchResult {
  path: string
  params: Record<string, unknown>
  keys: string[]
  pattern: unknown
}

export interface LayerLike {
  route?: RouteLike
  handle?: { stack?: unknown; name?: string }
  name?: string
  match(path: string): unknown
  path?: string
  params?: Record<string, unknown>
  keys?: Array<string | { name: string | number }>
  regexp?: RegExp
  matchers?: unknown[]
  /** The path as registered (router >= 2.3, Express 5); an array for a path array. */
  rawPath?: unknown
}

export interface AppLike {
  mountpath?: unknown
  parent?: AppLike
  _router?: { stack: LayerLike[] }
  router?: { stack: LayerLike[] }
  handle?: unknown
  set?: unknown
}

export type ExpressRequest = IncomingMessage & { app?: AppLike; route?: RouteLike; baseUrl?: string; originalUrl?: string }

/** Run a layer's own matcher. Router >= 2.3 returns the match; older ones store it on the layer. */
export function matchLayer(layer: LayerLike, path: string): MatchResult | undefined {
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

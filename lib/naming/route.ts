// A request's group and route template, as naming found it; the one of a known route is shared by its requests and keeps their names.

/** The groups of request names: the app's framework. */
export const EXPRESS_GROUP = 'Expressjs'
export const CONNECT_GROUP = 'Connect'

/**
 * The group (`Expressjs`, `Connect`) and route template of a request. The fast path of naming hands
 * every request of a known top-level route the same one, which remembers the full names of the last
 * method it was named for, so ending such a request looks nothing up.
 */
export class RequestRoute {
  /** The method `web` and `background` are the names for. */
  namedMethod: string | undefined = undefined
  web: string | undefined = undefined
  background: string | undefined = undefined

  constructor(
    readonly group: string,
    readonly path: string,
    /** Kept per route and shared by its requests: worth remembering names in. */
    readonly shared = false
  ) {}
}

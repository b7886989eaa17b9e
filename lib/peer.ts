// Loading an integration's optional peer dependency, with one clear error when it is not installed.
import { ErrorCode, OptionError } from './options'

/**
 * `require` a peer dependency for the integration `subpath` (e.g. `prometheus`).
 * @throws {OptionError} `ERR_EBT_PEER_MISSING`, naming the package and the command that installs it.
 */
export function requirePeer<T>(peer: string, subpath: string): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(peer) as T
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code !== 'MODULE_NOT_FOUND' || !String((err as Error).message).includes(`'${peer}'`)) throw err
    throw new OptionError(
      ErrorCode.PEER_MISSING,
      `express-background-task/${subpath} needs the package ${peer}, which is not installed: run npm install ${peer}`
    )
  }
}

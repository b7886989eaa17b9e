// The newrelic peer, loaded with the subpath: without it, importing the subpath fails with ERR_EBT_PEER_MISSING.
import { requirePeer } from '../peer'

/** The app's `newrelic` module (an optional peer dependency): the agent that is running, or its stub API. */
export const newrelic: object = requirePeer<object>('newrelic', 'newrelic')

/** The module instance the bridge follows by default. */
export function loadNewRelic(): object {
  return newrelic
}

// The prom-client peer, loaded with the subpath: without it, importing the subpath fails with ERR_EBT_PEER_MISSING.
import type * as PromClient from 'prom-client'
import { requirePeer } from '../peer'

/** The app's prom-client (an optional peer dependency), so metrics land in the registry the app serves. */
export const promClient: typeof PromClient = requirePeer<typeof PromClient>('prom-client', 'prometheus')

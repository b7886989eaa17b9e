// The optional peer @opentelemetry/api, loaded once when the subpath is imported, with one clear error when it is missing.
import { requirePeer } from '../peer'

/** `@opentelemetry/api`, or an `ERR_EBT_PEER_MISSING` TypeError thrown at import. */
export const api = requirePeer<typeof import('@opentelemetry/api')>('@opentelemetry/api', 'opentelemetry')

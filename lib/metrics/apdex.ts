// Apdex: the zone of one web transaction, and the score of a window's counts.

/** The three Apdex zones, as New Relic counts them. */
export const ApdexZone = { SATISFYING: 0, TOLERATING: 1, FRUSTRATING: 2 } as const
export type ApdexZone = (typeof ApdexZone)[keyof typeof ApdexZone]

/**
 * A failed transaction (a noticed error, a 5xx status, or an aborted request that got no response) frustrates whatever its speed; otherwise
 * up to T satisfies, up to 4T is tolerated, and slower frustrates.
 * @param seconds - the transaction's duration.
 * @param apdexT - the threshold T in seconds.
 */
export function apdexZone(seconds: number, apdexT: number, failed: boolean): ApdexZone {
  if (failed) return ApdexZone.FRUSTRATING
  if (seconds <= apdexT) return ApdexZone.SATISFYING
  return seconds <= 4 * apdexT ? ApdexZone.TOLERATING : ApdexZone.FRUSTRATING
}

/** The counts of one Apdex metric in a window. */
export class ApdexCounts {
  satisfying = 0
  tolerating = 0
  frustrating = 0

  add(zone: ApdexZone): void {
    if (zone === ApdexZone.SATISFYING) this.satisfying += 1
    else if (zone === ApdexZone.TOLERATING) this.tolerating += 1
    else this.frustrating += 1
  }

  /** (S + T/2) / (S + T + F); only called on counts that hold at least one transaction. */
  score(): number {
    return (this.satisfying + this.tolerating / 2) / (this.satisfying + this.tolerating + this.frustrating)
  }
}

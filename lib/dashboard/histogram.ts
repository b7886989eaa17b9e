// Durations of one aggregate: a sparse log-scale histogram, mergeable across seconds and cluster workers.

/** A bucket's upper edge is 5% above its lower edge: a percentile reads at most 5% high. */
const RATIO = 1.05
const LOG_RATIO = Math.log(RATIO)
/** Bucket 0 holds everything up to 10 µs. */
const SMALLEST_MS = 0.01
/** The last bucket (about 280 days) holds everything above; it reads back as the max. */
const LAST_INDEX = 800

/** The bucket of a duration in milliseconds. */
export function bucketOf(ms: number): number {
  if (!(ms > SMALLEST_MS)) return 0
  return Math.min(LAST_INDEX, Math.ceil(Math.log(ms / SMALLEST_MS) / LOG_RATIO))
}

/** A histogram holding only the buckets it saw: a second of a dozen requests costs a dozen entries. */
export class SparseHistogram {
  readonly counts = new Map<number, number>()

  /** Count one duration, by its {@link bucketOf} (computed once per transaction, for all its aggregates). */
  addBucket(index: number): void {
    this.counts.set(index, (this.counts.get(index) ?? 0) + 1)
  }

  merge(other: SparseHistogram): void {
    for (const [index, count] of other.counts) this.counts.set(index, (this.counts.get(index) ?? 0) + count)
  }

  /** Add buckets sent as a flat `[index, count, index, count, ...]` array (see {@link toFlat}). */
  mergeFlat(flat: readonly number[]): void {
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const index = flat[i]
      const count = flat[i + 1]
      if (!Number.isInteger(index) || index < 0 || index > LAST_INDEX || !(count > 0)) continue
      this.counts.set(index, (this.counts.get(index) ?? 0) + count)
    }
  }

  toFlat(): number[] {
    const flat: number[] = []
    for (const [index, count] of this.counts) flat.push(index, count)
    return flat
  }

  /**
   * The nearest-rank quantiles `ps` (ascending, 0 < p <= 1) of `total` durations, each the upper edge of
   * its bucket kept within the exact min and max, so one duration, or p = 1, reads back exactly.
   */
  quantiles(ps: readonly number[], total: number, min: number, max: number): number[] {
    const indexes = [...this.counts.keys()].sort((a, b) => a - b)
    const out: number[] = []
    let seen = 0
    let at = 0
    for (const p of ps) {
      const rank = Math.max(1, Math.ceil(p * total))
      while (at < indexes.length && seen + this.counts.get(indexes[at])! < rank) seen += this.counts.get(indexes[at++])!
      const index = indexes[at]
      const edge = index === undefined || index === LAST_INDEX ? max : SMALLEST_MS * RATIO ** index
      out.push(Math.min(max, Math.max(min, edge)))
    }
    return out
  }
}

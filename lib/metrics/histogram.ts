// Response-time percentiles of a rollup: a fixed log-scale histogram, so recording is O(1) and allocation-free.

/** The upper edge of a bucket is 2% above its lower edge: a percentile is off by at most 2%. */
const RATIO = 1.02
const LOG_RATIO = Math.log(RATIO)
/** Bucket 0 holds everything up to 1 µs; the last one everything from 11 days up (read back as the max). */
const SMALLEST = 1e-6
const BUCKETS = Math.ceil(Math.log(1e6 / SMALLEST) / LOG_RATIO) + 1

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS)
  private count = 0

  add(seconds: number): void {
    const index = seconds <= SMALLEST ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(seconds / SMALLEST) / LOG_RATIO))
    this.counts[index] += 1
    this.count += 1
  }

  /**
   * The nearest-rank `p` quantile (0 < p <= 1), as the upper edge of its bucket, kept within the
   * exact min and max so a single value, or p = 1, reads back exactly.
   */
  quantile(p: number, min: number, max: number): number {
    const rank = Math.max(1, Math.ceil(p * this.count))
    let seen = 0
    for (let index = 0; index < BUCKETS - 1; index += 1) {
      seen += this.counts[index]
      if (seen >= rank) return Math.min(max, Math.max(min, SMALLEST * RATIO ** index))
    }
    // the last bucket has no upper edge
    return max
  }
}

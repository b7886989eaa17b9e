// The figures of a set of transactions (a second, a point of a chart, a window): counts, times, errors, Apdex zones.
import { SparseHistogram } from './histogram'

/** New Relic's Apdex zones: 0 satisfying, 1 tolerating, 2 frustrating. */
export type Zone = 0 | 1 | 2

/**
 * A transaction's Apdex zone: a failure (a noticed error, a 5xx, or a client gone before any
 * response) frustrates whatever its speed; otherwise up to T satisfies, up to 4T is tolerated.
 */
export function zoneOf(ms: number, apdexT: number, failed: boolean): Zone {
  if (failed) return 2
  const seconds = ms / 1000
  if (seconds <= apdexT) return 0
  return seconds <= 4 * apdexT ? 1 : 2
}

/** {@link Stats} on the wire between a worker and the primary: `[count, sum, min, max, errors, s, t, f, buckets]`. */
export type StatsData = [number, number, number, number, number, number, number, number, number[]]

export class Stats {
  count = 0
  /** Milliseconds. */
  sum = 0
  min = Infinity
  max = 0
  /** Noticed errors and 5xx responses. */
  errors = 0
  satisfying = 0
  tolerating = 0
  frustrating = 0
  readonly durations = new SparseHistogram()

  /**
   * @param bucket - `bucketOf(ms)`.
   * @param zone - undefined when the transaction is not in Apdex (background, suppressed).
   */
  add(ms: number, bucket: number, error: boolean, zone: Zone | undefined): void {
    this.count += 1
    this.sum += ms
    if (ms < this.min) this.min = ms
    if (ms > this.max) this.max = ms
    if (error) this.errors += 1
    if (zone === 0) this.satisfying += 1
    else if (zone === 1) this.tolerating += 1
    else if (zone === 2) this.frustrating += 1
    this.durations.addBucket(bucket)
  }

  merge(other: Stats): void {
    if (other.count === 0) return
    this.count += other.count
    this.sum += other.sum
    if (other.min < this.min) this.min = other.min
    if (other.max > this.max) this.max = other.max
    this.errors += other.errors
    this.satisfying += other.satisfying
    this.tolerating += other.tolerating
    this.frustrating += other.frustrating
    this.durations.merge(other.durations)
  }

  toData(): StatsData {
    return [this.count, this.sum, this.count === 0 ? 0 : this.min, this.max, this.errors, this.satisfying, this.tolerating, this.frustrating, this.durations.toFlat()]
  }

  /** Add what a worker sent; anything malformed is skipped by the caller's check, {@link isStatsData}. */
  mergeData([count, sum, min, max, errors, s, t, f, buckets]: StatsData): void {
    if (count === 0) return
    this.count += count
    this.sum += sum
    if (min < this.min) this.min = min
    if (max > this.max) this.max = max
    this.errors += errors
    this.satisfying += s
    this.tolerating += t
    this.frustrating += f
    this.durations.mergeFlat(buckets)
  }

  /** Web Apdex score, or null when no transaction was in Apdex. */
  apdexScore(): number | null {
    const total = this.satisfying + this.tolerating + this.frustrating
    return total === 0 ? null : (this.satisfying + this.tolerating / 2) / total
  }
}

/** Whether a worker's message holds a well-formed {@link StatsData}. */
export function isStatsData(value: unknown): value is StatsData {
  if (!Array.isArray(value) || value.length !== 9 || !Array.isArray(value[8])) return false
  for (let i = 0; i < 8; i += 1) {
    const n = value[i]
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return false
  }
  return value[8].every((n: unknown) => typeof n === 'number' && Number.isFinite(n))
}

// Response-time percentiles of a rollup: a fixed log-linear histogram, so recording is O(1) and allocation-free.

/** Bucket 0 holds everything up to 1 µs; values are bucketed in µs. */
const SMALLEST = 1e-6
/**
 * Each power of two above 1 µs is cut into 64 buckets read off the float's own exponent and top
 * mantissa bits, not a logarithm (Math.log was most of recording's cost): a bucket's upper edge is
 * at most 1/64 (1.6%) above its lower edge, so a percentile is off by less than 2%.
 */
const SUB_BITS = 6
const SUBS = 1 << SUB_BITS
/** 2^40 µs is 12.7 days; the last bucket holds everything above (read back as the max). */
const EXPONENTS = 40
const BUCKETS = 1 + EXPONENTS * SUBS + 1

const bits = new Float64Array(1)
const words = new Uint32Array(bits.buffer)
/** The word of a double that holds its sign, exponent and top mantissa bits. */
const HIGH = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS)
  private count = 0

  add(seconds: number): void {
    this.counts[bucketOf(seconds / SMALLEST)] += 1
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
      if (seen >= rank) return Math.min(max, Math.max(min, upperEdge(index)))
    }
    // the last bucket has no upper edge
    return max
  }
}

/** The bucket of a duration in µs: 0 up to 1 µs, then 64 per power of two. */
function bucketOf(micros: number): number {
  // also NaN: a duration is never negative or NaN, but nothing lands outside the array
  if (!(micros > 1)) return 0
  bits[0] = micros
  const high = words[HIGH]
  const exponent = (high >>> 20) - 1023
  if (exponent >= EXPONENTS) return BUCKETS - 1
  return 1 + exponent * SUBS + ((high >>> (20 - SUB_BITS)) & (SUBS - 1))
}

/** Seconds at the upper edge of a bucket below the last. */
function upperEdge(index: number): number {
  if (index === 0) return SMALLEST
  const exponent = Math.floor((index - 1) / SUBS)
  const sub = (index - 1) % SUBS
  return SMALLEST * 2 ** exponent * (1 + (sub + 1) / SUBS)
}

// Timeslice stats of one metric name: call count, total, min, max and sum of squares, in seconds.

export class Timeslice {
  callCount = 0
  total = 0
  min = 0
  max = 0
  sumOfSquares = 0

  add(seconds: number): void {
    if (this.callCount === 0 || seconds < this.min) this.min = seconds
    if (seconds > this.max) this.max = seconds
    this.callCount += 1
    this.total += seconds
    this.sumOfSquares += seconds * seconds
  }
}

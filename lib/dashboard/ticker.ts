// A callback just after each second boundary, on an unref'd timer: it never keeps a process alive.

/** Call `tick(now)` `offsetMs` after every whole second, until stopped. */
export function everySecond(offsetMs: number, tick: (now: number) => void): { stop(): void } {
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  function schedule(): void {
    if (stopped) return
    const now = Date.now()
    timer = setTimeout(fire, 1000 - (now % 1000) + offsetMs)
    timer.unref()
  }
  function fire(): void {
    try {
      tick(Date.now())
    } finally {
      schedule()
    }
  }
  schedule()
  return {
    stop() {
      stopped = true
      clearTimeout(timer)
    }
  }
}

// The last minutes, one aggregate per second in a ring: bounded memory, and the name cap of metrics().
import { MAX_TRANSACTION_NAMES, OVERFLOW_NAME } from '../index'
import { logDashboard } from './debug'
import { bucketOf } from './histogram'
import { isStatsData, Stats, type StatsData, type Zone } from './stats'

/** Seconds the ring holds: the longest window (15 minutes) and a margin for late cluster reports. */
export const RING_SECONDS = 15 * 60 + 30

/** What one ended transaction adds to its second. */
export interface EndedFigures {
  readonly name: string
  readonly web: boolean
  /** A request (it has a method): marked background, it would otherwise have been web. */
  readonly request: boolean
  readonly ms: number
  /** A noticed error or a 5xx. */
  readonly error: boolean
  /** Its Apdex zone had it been web; undefined when suppressed. */
  readonly zone: Zone | undefined
  readonly apdexT: number
}

/** One second of one process, or of the whole cluster in the primary. */
export class Second {
  constructor(readonly second: number) {}
  readonly web = new Stats()
  readonly background = new Stats()
  /** What web would read had the requests marked background stayed web: web + background requests. */
  readonly asWeb = new Stats()
  readonly names = new Map<string, { web: boolean; stats: Stats }>()
  /** The Apdex T of the transactions seen (one, unless agents differ). */
  readonly apdexT = new Set<number>()
  /** Transactions in flight when the second ended, sampled. */
  inFlightWeb = 0
  inFlightBackground = 0
  sampled = false
}

/** {@link Second} on the wire: `{ second, web, background, asWeb, names: [name, web 0|1, stats][], apdexT }`. */
export interface SecondData {
  second: number
  web: StatsData
  background: StatsData
  asWeb: StatsData
  names: [string, 0 | 1, StatsData][]
  apdexT: number[]
}

export function secondToData(second: Second): SecondData {
  const names: [string, 0 | 1, StatsData][] = []
  for (const [name, { web, stats }] of second.names) names.push([name, web ? 1 : 0, stats.toData()])
  return {
    second: second.second,
    web: second.web.toData(),
    background: second.background.toData(),
    asWeb: second.asWeb.toData(),
    names,
    apdexT: [...second.apdexT]
  }
}

export class SecondRing {
  private readonly slots: (Second | undefined)[]
  /** How many seconds of the ring hold each name: at most MAX_TRANSACTION_NAMES names, then the overflow names. */
  private readonly nameRefs = new Map<string, number>()
  private overflowLogged = false

  constructor(readonly size: number = RING_SECONDS) {
    this.slots = new Array(size)
  }

  /** The second, if the ring holds it. */
  get(second: number): Second | undefined {
    const slot = this.slots[second % this.size]
    return slot !== undefined && slot.second === second ? slot : undefined
  }

  /** The second, made (replacing the oldest) when new; undefined when it is older than the ring. */
  at(second: number): Second | undefined {
    const index = second % this.size
    const slot = this.slots[index]
    if (slot !== undefined) {
      if (slot.second === second) return slot
      if (slot.second > second) return undefined
      for (const name of slot.names.keys()) this.release(name)
    }
    const fresh = new Second(second)
    this.slots[index] = fresh
    return fresh
  }

  record(second: number, figures: EndedFigures): void {
    const slot = this.at(second)
    if (slot === undefined) return
    const { ms, error, zone, web } = figures
    const bucket = bucketOf(ms)
    slot.apdexT.add(figures.apdexT)
    if (web) slot.web.add(ms, bucket, error, zone)
    else slot.background.add(ms, bucket, error, undefined)
    if (web || figures.request) slot.asWeb.add(ms, bucket, error, zone)
    this.statsFor(slot, figures.name, web).add(ms, bucket, error, web ? zone : undefined)
  }

  /** Add a worker's second; a malformed one is skipped, with a debug line. */
  mergeData(data: SecondData): void {
    if (!isSecondData(data)) {
      logDashboard('skip a malformed second from a worker')
      return
    }
    const slot = this.at(data.second)
    if (slot === undefined) return
    slot.web.mergeData(data.web)
    slot.background.mergeData(data.background)
    slot.asWeb.mergeData(data.asWeb)
    for (const t of data.apdexT) slot.apdexT.add(t)
    for (const [name, web, stats] of data.names) this.statsFor(slot, name, web === 1).mergeData(stats)
  }

  /** Seconds from `first` to `last`, oldest first, that the ring holds. */
  *between(first: number, last: number): Generator<Second> {
    for (let second = Math.max(first, last - this.size + 1); second <= last; second += 1) {
      const slot = this.get(second)
      if (slot !== undefined) yield slot
    }
  }

  private statsFor(slot: Second, name: string, web: boolean): Stats {
    const existing = slot.names.get(name)
    if (existing !== undefined) return existing.stats
    const admitted = this.admit(name, web)
    let entry = slot.names.get(admitted)
    if (entry === undefined) {
      entry = { web, stats: new Stats() }
      slot.names.set(admitted, entry)
      this.nameRefs.set(admitted, (this.nameRefs.get(admitted) ?? 0) + 1)
    }
    return entry.stats
  }

  /** The name itself while the ring holds fewer than the cap of names, else its prefix's overflow name. */
  private admit(name: string, web: boolean): string {
    if (this.nameRefs.has(name)) return name
    if (this.nameRefs.size < MAX_TRANSACTION_NAMES && name !== OVERFLOW_NAME.web && name !== OVERFLOW_NAME.background) return name
    const overflow = web ? OVERFLOW_NAME.web : OVERFLOW_NAME.background
    if (!this.overflowLogged) {
      this.overflowLogged = true
      logDashboard('fold %s and later new names into %s: %d names in the last minutes', name, overflow, MAX_TRANSACTION_NAMES)
    }
    return overflow
  }

  private release(name: string): void {
    const refs = (this.nameRefs.get(name) ?? 1) - 1
    if (refs > 0) this.nameRefs.set(name, refs)
    else this.nameRefs.delete(name)
  }
}

function isSecondData(value: unknown): value is SecondData {
  const data = value as SecondData | null
  return (
    typeof data === 'object' && data !== null &&
    Number.isSafeInteger(data.second) && data.second >= 0 &&
    isStatsData(data.web) && isStatsData(data.background) && isStatsData(data.asWeb) &&
    Array.isArray(data.apdexT) && data.apdexT.every((t) => typeof t === 'number' && t > 0 && t < Infinity) &&
    Array.isArray(data.names) &&
    data.names.every((entry) => Array.isArray(entry) && typeof entry[0] === 'string' && (entry[1] === 0 || entry[1] === 1) && isStatsData(entry[2]))
  )
}

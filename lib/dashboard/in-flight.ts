// Transactions started and not yet ended: counted by their current type, the long ones named (open streams).
import { TransactionType, type Transaction } from '../index'
import type { DashboardInFlight, DashboardOpenGroup } from './types'

/** Names read per summary at most: a server holding many thousands of streams costs a bounded read a second. */
const MAX_NAMED = 2000

export class InFlight {
  /** Each transaction in flight and when it started (epoch ms). Every start is balanced by an end on the channel. */
  private readonly started = new Map<Transaction, number>()

  start(transaction: Transaction, now: number): void {
    this.started.set(transaction, now)
  }

  end(transaction: Transaction): void {
    this.started.delete(transaction)
  }

  /** Counts by type now (a type read each, no names). */
  counts(): { web: number; background: number } {
    let web = 0
    let background = 0
    for (const transaction of this.started.keys()) {
      try {
        const type = transaction.type
        if (type === TransactionType.WEB) web += 1
        else if (type === TransactionType.BACKGROUND) background += 1
      } catch {}
    }
    return { web, background }
  }

  /** Counts by type now, and the `limit` busiest names in flight with how long the oldest has run. */
  summary(now: number, limit: number): DashboardInFlight {
    let web = 0
    let background = 0
    let named = 0
    const groups = new Map<string, DashboardOpenGroup>()
    for (const [transaction, since] of this.started) {
      let type: unknown
      let name: string
      try {
        type = transaction.type
        if (type === TransactionType.WEB) web += 1
        else if (type === TransactionType.BACKGROUND) background += 1
        else continue
        if (named >= MAX_NAMED) continue
        named += 1
        name = transaction.name
      } catch {
        continue // a transaction that cannot say its name is counted, not listed
      }
      const key = `${type as string} ${name}`
      const group = groups.get(key)
      const ms = Math.max(0, now - since)
      if (group === undefined) groups.set(key, { type: type as TransactionType, name, count: 1, longestMs: ms })
      else {
        group.count += 1
        if (ms > group.longestMs) group.longestMs = ms
      }
    }
    return { web, background, open: busiest([...groups.values()], limit) }
  }
}

/** Merge summaries (the primary's own and each worker's) into one. */
export function mergeInFlight(summaries: readonly DashboardInFlight[], limit: number): DashboardInFlight {
  let web = 0
  let background = 0
  const groups = new Map<string, DashboardOpenGroup>()
  for (const summary of summaries) {
    web += summary.web
    background += summary.background
    for (const { type, name, count, longestMs } of summary.open) {
      const key = `${type} ${name}`
      const group = groups.get(key)
      if (group === undefined) groups.set(key, { type, name, count, longestMs })
      else {
        group.count += count
        group.longestMs = Math.max(group.longestMs, longestMs)
      }
    }
  }
  return { web, background, open: busiest([...groups.values()], limit) }
}

/** Whether a worker's message holds a well-formed summary. */
export function isInFlight(value: unknown): value is DashboardInFlight {
  const summary = value as DashboardInFlight | null
  const count = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0
  return (
    typeof summary === 'object' && summary !== null && count(summary.web) && count(summary.background) && Array.isArray(summary.open) &&
    summary.open.every((group) =>
      typeof group === 'object' && group !== null && (group.type === TransactionType.WEB || group.type === TransactionType.BACKGROUND) &&
      typeof group.name === 'string' && count(group.count) && typeof group.longestMs === 'number' && group.longestMs >= 0 && group.longestMs < Infinity)
  )
}

function busiest(groups: DashboardOpenGroup[], limit: number): DashboardOpenGroup[] {
  return groups.sort((a, b) => b.count - a.count || b.longestMs - a.longestMs || (a.name < b.name ? -1 : 1)).slice(0, limit)
}

// The integration seam: the node:diagnostics_channel channels every agent publishes transactions on.
import { channel } from 'node:diagnostics_channel'
import type { Transaction as PublicTransaction, TransactionRecord, TransactionType } from './types'

/**
 * The channel names, a contract: another installed copy of the package publishes on the same ones,
 * and an integration subscribes to them as a third-party plugin would.
 */
export const ChannelName = {
  /** `{ transaction }`, when a transaction starts, with the flags set before the middleware applied. */
  START: 'express-background-task:transaction:start',
  /** `{ transaction, type, previousType }`, when a flag or helper changes the type, at that moment. */
  CLASSIFY: 'express-background-task:transaction:classify',
  /** `{ transaction, record }` for every transaction that started; `record` is undefined when it was ignored. */
  END: 'express-background-task:transaction:end'
} as const
/** One of {@link ChannelName}'s values. */
export type ChannelName = (typeof ChannelName)[keyof typeof ChannelName]

/** The message published on {@link ChannelName.START}. */
export interface TransactionStartMessage {
  readonly transaction: PublicTransaction
}
/** The message published on {@link ChannelName.CLASSIFY}. */
export interface TransactionClassifyMessage {
  readonly transaction: PublicTransaction
  readonly type: TransactionType
  readonly previousType: TransactionType
}
/** The message published on {@link ChannelName.END}. */
export interface TransactionEndMessage {
  readonly transaction: PublicTransaction
  /** The frozen record; undefined for an ignored transaction (nothing is recorded for it). */
  readonly record: TransactionRecord | undefined
}

const startChannel = channel(ChannelName.START)
const classifyChannel = channel(ChannelName.CLASSIFY)
const endChannel = channel(ChannelName.END)

// Each publish is guarded by hasSubscribers: with nobody listening, no message is built.

export function publishStart(transaction: PublicTransaction): void {
  if (startChannel.hasSubscribers) startChannel.publish({ transaction } satisfies TransactionStartMessage)
}

export function publishClassify(transaction: PublicTransaction, type: TransactionType, previousType: TransactionType): void {
  if (classifyChannel.hasSubscribers) classifyChannel.publish({ transaction, type, previousType } satisfies TransactionClassifyMessage)
}

/**
 * Start a background task: publish its start and run `fn` inside the stores an integration bound to
 * the start channel (`bindStore`), so the integration's own context surrounds the task's function.
 */
export function runWithStart<A extends unknown[], R>(transaction: PublicTransaction, fn: (...args: A) => R, thisArg: unknown, ...args: A): R {
  if (!startChannel.hasSubscribers) return fn.apply(thisArg, args)
  return startChannel.runStores({ transaction } satisfies TransactionStartMessage, fn, thisArg, ...args)
}

/** Whether an end message would reach anyone (so the record is built only when it will). */
export function endHasSubscribers(): boolean {
  return endChannel.hasSubscribers
}

export function publishEnd(transaction: PublicTransaction, record: TransactionRecord | undefined): void {
  endChannel.publish({ transaction, record } satisfies TransactionEndMessage)
}

// Node cluster: each worker sends its completed seconds to the primary over cluster IPC; the primary merges them.
import cluster, { type Worker } from 'node:cluster'
import { logDashboard } from './debug'
import { isInFlight } from './in-flight'
import { parseReportOptions } from './options'
import { Recorder } from './recorder'
import { secondToData, type SecondData, type SecondRing } from './ring'
import { everySecond } from './ticker'
import type { DashboardInFlight, PrimaryReport, ReportToPrimaryOptions } from './types'

/** The `type` of the messages; any other message on the IPC channel is the app's and left alone. */
export const CLUSTER_MESSAGE_TYPE = 'express-background-task:dashboard'
const VERSION = 1
/** Seconds a worker keeps before sending: a few, in case a tick runs late. */
const WORKER_RING_SECONDS = 10
/** In-flight names a worker sends; the primary keeps the busiest of all. */
const WORKER_OPEN_GROUPS = 50
/** A worker silent for this long no longer counts (it died, or hangs). */
const STALE_MS = 5000

interface ClusterMessage {
  type: typeof CLUSTER_MESSAGE_TYPE
  version: typeof VERSION
  seconds: SecondData[]
  inFlight: DashboardInFlight
}

/**
 * In a cluster worker: send this process's transactions, aggregated per second, to the primary,
 * where `dashboard({ cluster: true })` shows them with every other worker's. Once a second, just
 * after the second ends; nothing when there is no IPC channel.
 * @param options - agent (defaults to every agent's transactions).
 * @returns `{ active, close() }`; `active` is false outside a cluster worker (then nothing is sent).
 * @throws {TypeError} `ERR_EBT_OPTIONS_TYPE` or `ERR_EBT_UNKNOWN_OPTION` for a bad option.
 * @example
 * if (cluster.isWorker) reportToPrimary()
 */
export function reportToPrimary(options?: ReportToPrimaryOptions): PrimaryReport {
  const { agent } = parseReportOptions(options)
  if (!cluster.isWorker || typeof process.send !== 'function') {
    logDashboard('report nothing: this process is not a cluster worker')
    return { active: false, close() {} }
  }
  const recorder = new Recorder(agent, WORKER_RING_SECONDS)
  recorder.subscribe()
  let lastSent = Math.floor(Date.now() / 1000) - 1
  const ticker = everySecond(20, function sendSeconds(now) {
    const current = Math.floor(now / 1000)
    const seconds: SecondData[] = []
    for (const second of recorder.ring.between(lastSent + 1, current - 1)) seconds.push(secondToData(second))
    lastSent = current - 1
    if (!process.connected || process.send === undefined) return
    const message: ClusterMessage = { type: CLUSTER_MESSAGE_TYPE, version: VERSION, seconds, inFlight: recorder.inFlight.summary(now, WORKER_OPEN_GROUPS) }
    try {
      process.send(message, undefined, undefined, function sent(err) {
        if (err) logDashboard('fail to send a second to the primary: %s', err.message)
      })
    } catch (err) {
      logDashboard('fail to send a second to the primary: %O', err)
    }
  })
  logDashboard('report to the primary every second')
  let closed = false
  return {
    active: true,
    close() {
      if (closed) return
      closed = true
      ticker.stop()
      recorder.unsubscribe()
    }
  }
}

/** In the primary: merges what the workers send into the dashboard's ring, and keeps each one's in-flight counts. */
export class ClusterSource {
  private readonly workers = new Map<number, { inFlight: DashboardInFlight; seen: number }>()
  private readonly onMessage: (worker: Worker, message: unknown) => void
  private readonly onExit: (worker: Worker) => void

  constructor(ring: SecondRing) {
    const workers = this.workers
    this.onMessage = function dashboardWorkerMessage(worker, message) {
      const sent = message as ClusterMessage | null
      if (typeof sent !== 'object' || sent === null || sent.type !== CLUSTER_MESSAGE_TYPE) return
      try {
        if (sent.version !== VERSION || !Array.isArray(sent.seconds) || !isInFlight(sent.inFlight)) {
          logDashboard('skip a message of worker %d: version %o or shape not understood', worker.id, sent.version)
          return
        }
        for (const second of sent.seconds) ring.mergeData(second)
        workers.set(worker.id, { inFlight: sent.inFlight, seen: Date.now() })
      } catch (err) {
        logDashboard('fail to merge a message of worker %d: %O', worker.id, err)
      }
    }
    this.onExit = function dashboardWorkerExit(worker) {
      workers.delete(worker.id)
    }
  }

  start(): void {
    cluster.on('message', this.onMessage)
    cluster.on('exit', this.onExit)
  }

  stop(): void {
    cluster.off('message', this.onMessage)
    cluster.off('exit', this.onExit)
    this.workers.clear()
  }

  /** The in-flight summaries of the workers heard from lately. */
  inFlight(now: number): DashboardInFlight[] {
    const fresh: DashboardInFlight[] = []
    for (const [id, { inFlight, seen }] of this.workers) {
      if (now - seen > STALE_MS) this.workers.delete(id)
      else fresh.push(inFlight)
    }
    return fresh
  }
}

'use strict'
// The New Relic bridge's own time per request, read with clocks from outside it: a second measure
// next to bench/newrelic-bridge.js's profile (EBT_BENCH_TIME_BRIDGE=1 in the bridged server). The
// profile counts what V8 inlines of the agent's own end() into the bridge's frame as the bridge's;
// here the agent's end is timed by itself and taken out exactly. Nothing of the bridge is changed:
// - the agent's Transaction.prototype.end is wrapped before the bridge starts, so the end the
//   bridge hands back to is timed;
// - on the start and end channels, a subscriber before the bridge's and one after it time what the
//   bridge's subscribers take;
// - the bridge's own wrapper on the agent's end is wrapped in turn.
// Each interval holds about one clock read of its own (the tail of the read that starts it and the
// head of the one that ends it), four per request in all: the reads are timed as they go and
// taken out. The seam (the record, the publish) cannot be timed from outside the package; the
// profile gives it.
const dc = require('node:diagnostics_channel')
const { ChannelName } = require('..')

const now = process.hrtime.bigint
/** Clock reads inside the timed intervals of one request: start, end, the end wrapper, and the read that closes the agent's end's interval. */
const READS_PER_REQUEST = 4

/**
 * Start the bridge with `startBridge()` between the timers.
 * @returns {{ bridge, reset: () => void, read: () => { bridgeNs: number, agentEndNs: number, clockNs: number, requests: number } }}
 *   read(): nanoseconds per request since reset(): the bridge's own, the agent's end, and one clock read.
 */
function timeBridge(startBridge) {
  const Transaction = require(require.resolve('newrelic/lib/transaction/index.js'))
  let totals
  const reset = () => {
    totals = { around: 0n, agentEnd: 0n, clock: 0n, reads: 0, requests: 0 }
  }
  reset()
  /** `fn` with the time of each call added to `totals[key]`. */
  const timed = (fn, key) =>
    function timedCall() {
      const t0 = now()
      try {
        return Reflect.apply(fn, this, arguments)
      } finally {
        totals[key] += now() - t0
      }
    }
  Transaction.prototype.end = timed(Transaction.prototype.end, 'agentEnd')
  let mark = 0n
  const before = () => {
    mark = now()
  }
  const after = () => {
    const t = now()
    totals.around += t - mark
    // what one clock read costs here and now
    totals.clock += now() - t
    totals.reads += 1
  }
  const countRequest = () => {
    totals.requests += 1
  }
  dc.subscribe(ChannelName.START, before)
  dc.subscribe(ChannelName.END, before)
  const bridge = startBridge()
  dc.subscribe(ChannelName.START, after)
  dc.subscribe(ChannelName.END, after)
  dc.subscribe(ChannelName.START, countRequest)
  Transaction.prototype.end = timed(Transaction.prototype.end, 'around')
  const read = () => {
    const requests = Math.max(1, totals.requests)
    const clockNs = Number(totals.clock) / Math.max(1, totals.reads)
    return {
      bridgeNs: Number(totals.around - totals.agentEnd) / requests - READS_PER_REQUEST * clockNs,
      agentEndNs: Number(totals.agentEnd) / requests,
      clockNs,
      requests: totals.requests
    }
  }
  return { bridge, reset, read }
}

module.exports = { timeBridge }

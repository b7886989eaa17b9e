'use strict'
// CPU time of this process by thread kind, read from Linux's /proc: the main thread (JavaScript),
// V8's and libuv's other threads (concurrent and parallel GC, background compilation, the thread
// pool), and V8's CPU profiler's own thread, which a profiled window adds and a request never pays.
// bench/newrelic-bridge.js takes a profile's shares of the main thread over to the whole CPU of a
// request with it. Elsewhere than Linux there is no such file: undefined.
const fs = require('node:fs')

/** The profiler's event-processing thread, as V8 names it. */
const PROFILER_THREAD = 'v8:ProfEvntProc'

/** Clock ticks (utime + stime) of this process's threads so far: `{ main, others, profiler }`, or undefined. */
function threadCpu() {
  const dir = `/proc/${process.pid}/task`
  let tids
  try {
    tids = fs.readdirSync(dir)
  } catch {
    return undefined
  }
  const ticks = { main: 0, others: 0, profiler: 0 }
  for (const tid of tids) {
    let stat
    try {
      stat = fs.readFileSync(`${dir}/${tid}/stat`, 'utf8')
    } catch {
      continue // the thread ended in between
    }
    // the name is in parentheses and may hold spaces; utime and stime are the 12th and 13th fields after it
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const used = Number(fields[11]) + Number(fields[12])
    if (Number(tid) === process.pid) ticks.main += used
    else if (name === PROFILER_THREAD) ticks.profiler += used
    else ticks.others += used
  }
  return ticks
}

/** What the threads used between two readings of threadCpu(). */
function threadCpuSince(before) {
  const now = threadCpu()
  if (before === undefined || now === undefined) return undefined
  return { main: now.main - before.main, others: now.others - before.others, profiler: now.profiler - before.profiler }
}

module.exports = { threadCpu, threadCpuSince, PROFILER_THREAD }

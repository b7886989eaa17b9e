'use strict'
// bench/thread-cpu.js: the CPU time of this process by thread kind, which bench/newrelic-bridge.js
// uses to take a profile's main-thread shares over to a request's whole CPU.
const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { Session } = require('node:inspector')
const { threadCpu, threadCpuSince, PROFILER_THREAD } = require('../bench/thread-cpu')

const linux = process.platform === 'linux'

describe('bench/thread-cpu.js', () => {
  it('counts work on the main thread as the main thread\'s', { skip: !linux && 'reads /proc' }, () => {
    const before = threadCpu()
    assert.ok(before !== undefined && before.main > 0, 'the main thread has used some CPU by now')
    // well over one clock tick (10 ms at the usual 100 Hz) of work on this thread alone
    const until = process.cpuUsage().user + 300_000
    while (process.cpuUsage().user < until);
    const used = threadCpuSince(before)
    assert.ok(used.main >= 10, `the main thread's ticks grew by ${used.main}`)
    assert.ok(used.others >= 0 && used.profiler === 0, `no profiler ran: ${JSON.stringify(used)}`)
  })

  it('knows the CPU profiler\'s thread by the name V8 gives it', { skip: !linux && 'reads /proc' }, async () => {
    const threadNames = () => fs.readdirSync(`/proc/${process.pid}/task`).map((tid) => fs.readFileSync(`/proc/${process.pid}/task/${tid}/comm`, 'utf8').trim())
    assert.ok(!threadNames().includes(PROFILER_THREAD), 'no profiler thread before a profile starts')
    const session = new Session()
    session.connect()
    const post = (method) => new Promise((resolve, reject) => session.post(method, (err, result) => (err ? reject(err) : resolve(result))))
    await post('Profiler.enable')
    await post('Profiler.start')
    try {
      assert.ok(threadNames().includes(PROFILER_THREAD), `threads while profiling: ${threadNames().join(', ')}`)
    } finally {
      await post('Profiler.stop')
      session.disconnect()
    }
  })

  it('says nothing when there is nothing to read', () => {
    assert.equal(threadCpuSince(undefined), undefined)
  })
})

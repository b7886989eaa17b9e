'use strict'
// Benchmark load generator: on a 'run' message from bench/run.js, loads several servers at once with autocannon and replies with each one's results.
//
// One process drives both servers of a pair, one autocannon instance each, started in the same tick
// with the same settings, so neither server is favoured by the load it gets.
const autocannon = require('autocannon')

process.on('disconnect', () => process.exit(0))
process.on('message', function onMessage(message) {
  if (message.type === 'exit') process.exit(0)
  if (message.type === 'run') {
    runAll(message).then(
      (results) => process.send({ type: 'done', results }),
      (err) => process.send({ type: 'done', error: String(err?.stack ?? err) })
    )
  }
})
process.send({ type: 'ready', node: process.version })

/**
 * @param {{ targets: { port: number, path: string }[], connections: number, seconds: number, amount?: number }} run
 *   `seconds` alone for a measured window; with `amount` (requests per target), a warm-up that stops
 *   after that many requests or `seconds`, whichever comes first.
 */
function runAll({ targets, connections, seconds, amount }) {
  return Promise.all(targets.map((target) => runOne(target, { connections, seconds, amount })))
}

function runOne({ port, path }, { connections, seconds, amount }) {
  return new Promise((resolve, reject) => {
    // autocannon checks its deadline once per sampleInt: 100 ms instead of 1 s keeps a 1.5 s window 1.5 s.
    const options = { url: `http://127.0.0.1:${port}${path}`, connections, pipelining: 1, timeout: 10, sampleInt: 100 }
    // autocannon spreads its defaults under these, so an absent one must not be passed as undefined.
    if (amount !== undefined) options.amount = amount
    else options.duration = seconds
    const instance = autocannon(
      options,
      function onResult(err, result) {
        if (err) return reject(err)
        resolve({
          ok: result['2xx'],
          // Anything but a 2xx: errors, timeouts, other statuses.
          failed: result.errors + result.timeouts + result.non2xx,
          p99Ms: result.latency.p99,
          p50Ms: result.latency.p50
        })
      }
    )
    if (amount !== undefined) setTimeout(() => instance.stop(), seconds * 1000).unref()
  })
}

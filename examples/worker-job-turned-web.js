'use strict'
// A job worker whose jobs are background transactions, with one job turned into a web transaction:
// the reverse example of New Relic's page. Nobody waits for a digest email, so `send-digest` stays
// OtherTransaction/Nodejs/send-digest; a user stares at a spinner until `render-preview` is done, so
// its latency is user-facing and it calls setBackgroundTask(false): WebTransaction/Nodejs/render-preview.
//
//   node examples/worker-job-turned-web.js
//   curl -X POST -H 'Content-Type: application/json' -d '{"userId":1}' http://127.0.0.1:3000/digests
//   curl -X POST -H 'Content-Type: application/json' -d '{"documentId":7}' http://127.0.0.1:3000/previews
const express = require('express')
const { setTimeout: sleep } = require('node:timers/promises')
const ebt = require('express-background-task')

const EMAILS = new Map([
  [1, 'ada@example.com'],
  [2, 'grace@example.com']
])

/**
 * The worker: an in-process queue standing in for BullMQ, SQS or a Redis list, running one job at
 * a time. Each job is its own transaction, started by backgroundTask().
 * @param {object} [options]
 * @param {object} [options.agent] - the package itself (its default agent), or one made by `createAgent()`.
 * @param {(err: Error, job: object) => void} [options.onError] - called for a failed job.
 */
function createWorker({ agent = ebt, onError = (err, job) => console.error(`job ${job.type} failed: ${err.message}`) } = {}) {
  const jobs = {
    // OtherTransaction/Nodejs/send-digest; a throw or rejection is noticed as the record's error.
    sendDigest: ({ userId }) =>
      agent.backgroundTask('send-digest', async () => {
        ebt.getTransaction().addAttribute('userId', userId)
        const email = EMAILS.get(userId)
        if (email === undefined) throw new Error(`user ${userId} has no email address`)
        await sleep(20) // talk to the mail service
        return { sentTo: email }
      }),
    // A user waits for this one: count it with the web transactions (and in Apdex).
    renderPreview: ({ documentId }) =>
      agent.backgroundTask('render-preview', async () => {
        ebt.setBackgroundTask(false) // -> WebTransaction/Nodejs/render-preview
        await sleep(30) // render
        return { url: `/previews/${documentId}.png` }
      })
  }

  const queue = []
  let draining = false
  async function drain() {
    while (queue.length > 0) {
      const job = queue.shift()
      try {
        job.resolve(await jobs[job.type](job.data))
      } catch (err) {
        onError(err, job)
        job.reject(err)
      }
    }
    draining = false
  }

  /** Queue a job; the promise settles with its result. */
  function enqueue(type, data) {
    return new Promise((resolve, reject) => {
      queue.push({ type, data, resolve, reject })
      if (!draining) {
        draining = true
        setImmediate(drain)
      }
    })
  }
  return { enqueue }
}

/**
 * The web app that feeds the worker.
 * @param {object} [options]
 * @param {object} [options.agent] - the package itself (its default agent), or one made by `createAgent()`.
 * @param {object} [options.worker] - defaults to `createWorker({ agent })`.
 */
function createApp({ agent = ebt, worker = createWorker({ agent }) } = {}) {
  const app = express()
  app.use(agent.middleware())
  app.use(express.json())

  // Fire and forget: the response does not wait; the job's failure is the worker's business.
  app.post('/digests', (req, res) => {
    worker.enqueue('sendDigest', { userId: req.body.userId }).catch(() => {})
    res.status(202).json({ queued: true })
  })

  // The browser waits for the preview.
  app.post('/previews', async (req, res) => {
    res.json(await worker.enqueue('renderPreview', { documentId: req.body.documentId }))
  })

  app.use(agent.errorHandler())
  return app
}

module.exports = { createApp, createWorker }

if (require.main === module) {
  ebt.onTransactionEnd((tx) => {
    const error = tx.error ? ` (error: ${tx.error.message})` : ''
    console.log(`${tx.type.padEnd(10)} ${tx.name} ${tx.duration.toFixed(1)} ms${error}`)
  })
  const server = createApp().listen(Number(process.env.PORT || 3000), '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`)
  })
}

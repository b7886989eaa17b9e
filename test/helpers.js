'use strict'
// Shared test helpers: real apps on 127.0.0.1, real HTTP, records collected from a fresh agent.
const http = require('node:http')
const { once } = require('node:events')
const ebt = require('express-background-task')

/** The frameworks every behaviour runs against. */
const FRAMEWORKS = {
  'express 5': () => require('express'),
  'express 4': () => require('express4'),
  connect: () => require('connect')
}

/** The context engines every behaviour runs with: `{ name, options() }`, options() gives AgentOptions. */
const ENGINES = [
  { name: 'async-local-storage', options: () => ({}) },
  { name: 'cls-hooked', options: () => ({ context: 'cls-hooked' }) }
]

/** An agent whose ended records are collected in `records`; `waitFor(n)` resolves once n have ended. */
function recordingAgent(options) {
  const agent = ebt.createAgent(options)
  const records = []
  const waiters = []
  agent.onTransactionEnd((record) => {
    records.push(record)
    for (const waiter of waiters.splice(0)) {
      if (records.length >= waiter.count) waiter.resolve(records)
      else waiters.push(waiter)
    }
  })
  function waitFor(count, timeoutMs = 5000) {
    if (records.length >= count) return Promise.resolve(records)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`waited for ${count} records, got ${records.length}`)), timeoutMs)
      waiters.push({ count, resolve: (r) => { clearTimeout(timer); resolve(r) } })
    })
  }
  return { agent, records, waitFor }
}

/** Listen on a free loopback port; returns { server, url(path), close() }. */
async function listen(handler) {
  const server = http.createServer(handler)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  return {
    server,
    port,
    url: (path = '/') => `http://127.0.0.1:${port}${path}`,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()) })
  }
}

/** A plain HTTP request with node:http; resolves { status, body, headers }. */
function request(url, { method = 'GET', headers = {}, body, agent } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      let data = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => { data += chunk })
      res.on('end', () => resolve({ status: res.statusCode, body: data, headers: res.headers }))
    })
    req.on('error', reject)
    if (body !== undefined) req.write(body)
    req.end()
  })
}

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

module.exports = { ebt, FRAMEWORKS, ENGINES, recordingAgent, listen, request, delay }

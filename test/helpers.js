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

/**
 * Run `node <file>` with extra environment; `waitFor(regex, timeoutMs)` resolves with the match once
 * its stdout has it, and rejects with both outputs when it does not come in time.
 */
function spawnNode(file, env = {}) {
  const { spawn } = require('node:child_process')
  const child = spawn(process.execPath, [file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  const watchers = new Set()
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    stdout += chunk
    for (const watcher of watchers) watcher()
  })
  child.stderr.setEncoding('utf8').on('data', (chunk) => { stderr += chunk })
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  function waitFor(pattern, timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = stdout.match(pattern)
        if (match === null) return
        done()
        resolve(match)
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`${file}: no ${pattern} in stdout:\n${stdout}\nstderr:\n${stderr}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        watchers.delete(check)
      }
      watchers.add(check)
      check()
    })
  }
  return { child, exited, waitFor, stdout: () => stdout, output: () => ({ stdout, stderr }) }
}

/** An executable called `name` on PATH (then in `extraDirs`), else undefined. */
function findExecutable(name, extraDirs = []) {
  const fs = require('node:fs')
  const path = require('node:path')
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...extraDirs]) {
    const file = path.join(dir, name)
    try {
      fs.accessSync(file, fs.constants.X_OK)
      if (fs.statSync(file).isFile()) return file
    } catch {}
  }
  return undefined
}

module.exports = { ebt, FRAMEWORKS, ENGINES, recordingAgent, listen, request, delay, spawnNode, findExecutable }

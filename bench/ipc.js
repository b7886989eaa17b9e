'use strict'
// Talking to a bench child process over IPC: one message out, the reply of a given type back.

/** Send `message` (unless undefined) and wait for the reply of type `replyType`; fails if the child dies first. */
function request(child, message, replyType) {
  return new Promise((resolve, reject) => {
    function onMessage(reply) {
      if (reply.type !== replyType) return
      child.off('message', onMessage)
      child.off('exit', onExit)
      resolve(reply)
    }
    function onExit(code, signal) {
      child.off('message', onMessage)
      reject(new Error(`${child.label ?? 'child'} exited (${signal ?? code}) while waiting for ${replyType}`))
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
    if (message !== undefined) child.send(message)
  })
}

module.exports = { request }

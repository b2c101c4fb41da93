/**
 * Where log lines go: JSON lines written asynchronously to stdout (a synchronous write per line
 * costs a large share of a fast request), or, with LOG_PRETTY=1, pino-pretty's readable lines for
 * development, formatted off the event loop in pino's transport thread.
 */
import { createRequire } from 'node:module'
import pino from 'pino'

/** pino-pretty only with LOG_PRETTY=1: a service never pays its ~1 MB of heap otherwise. */
function loadPretty(): typeof import('pino-pretty') {
  return createRequire(import.meta.url)('pino-pretty')
}

/**
 * The most log output held in memory while stdout is slower than the service (a pipe whose reader
 * lags under overload). Unbounded, that buffer grew past the 64 MB heap `npm start` gives V8 and
 * the process died (PUT at 1,024 connections); past this, lines are dropped and counted instead.
 */
export const LOG_BUFFER_BYTES = 4 * 1024 * 1024

/** Those of pino's own (SonicBoom, the transport's thread stream) can be flushed synchronously on close. */
export type LogDestination =
  | ReturnType<typeof pino.destination>
  | ReturnType<typeof pino.transport>
  | NodeJS.WritableStream

/** `logStream`: where a test captures the lines; stdout otherwise. */
export function logDestination(options: {
  pretty: boolean
  logStream?: NodeJS.WritableStream | undefined
}): LogDestination {
  if (!options.pretty) return options.logStream ?? boundedStdout()
  // A captured stream is written in this thread, line by line, so a test can read it at once.
  if (options.logStream) return loadPretty()({ destination: options.logStream, colorize: false, sync: true })
  return pino.transport({ target: 'pino-pretty', options: { destination: 1, translateTime: 'SYS:HH:MM:ss.l' } })
}

/** Asynchronous stdout that drops past LOG_BUFFER_BYTES, then says how many lines it dropped. */
function boundedStdout(): ReturnType<typeof pino.destination> {
  const stdout = pino.destination({ sync: false, maxLength: LOG_BUFFER_BYTES })
  let dropped = 0
  stdout.on('drop', () => {
    dropped++
  })
  // Once a write has gone out, the buffer has room again: the count goes in with the lines.
  stdout.on('write', () => {
    if (dropped === 0) return
    const msg = `${dropped} log lines dropped: stdout did not keep up`
    dropped = 0
    stdout.write(`${JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, msg })}\n`)
  })
  return stdout
}

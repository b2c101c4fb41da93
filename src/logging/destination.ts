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
  if (!options.pretty) return options.logStream ?? pino.destination({ sync: false })
  // A captured stream is written in this thread, line by line, so a test can read it at once.
  if (options.logStream) return loadPretty()({ destination: options.logStream, colorize: false, sync: true })
  return pino.transport({ target: 'pino-pretty', options: { destination: 1, translateTime: 'SYS:HH:MM:ss.l' } })
}

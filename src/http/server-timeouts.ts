/**
 * Deadlines for slow and idle clients, as Node's HTTP server takes them, so a client trickling
 * its headers or body a byte at a time, or a socket left idle, cannot hold a file descriptor
 * for long. Both servers use them: the API's (through Fastify's options) and the metrics one.
 *
 * - headers and request deadlines run from the start of each request (for a new connection,
 *   from its opening); past either, Node emits `clientError` (ERR_HTTP_REQUEST_TIMEOUT), which
 *   answers 408 and closes the connection (src/http/problem-handler.ts);
 * - the keep-alive timeout closes a connection idle between requests, without a word;
 * - the connection timeout closes one on which nothing moves either way for that long (a client
 *   that stops reading its answer, say), without a word.
 */
import type { ServerOptions } from 'node:http'
import type { HttpTimeouts } from '../config/config.js'

/**
 * Node checks the headers and request deadlines on a timer (every 30 s by default, so a 10 s
 * deadline could hold for 40 s): check ten times per headers deadline, at least once a second.
 */
function checkingIntervalMs(timeouts: HttpTimeouts): number {
  return Math.max(10, Math.min(1000, Math.floor(timeouts.headersMs / 10)))
}

/** For `http.createServer`; the connection timeout is `server.timeout`, set apart. */
export function httpServerOptions(timeouts: HttpTimeouts): ServerOptions {
  return {
    headersTimeout: timeouts.headersMs,
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    connectionsCheckingInterval: checkingIntervalMs(timeouts)
  }
}

/**
 * For Fastify's options. Fastify sets `requestTimeout` (0, none, by default) and `keepAliveTimeout`
 * (72 s) on the server it creates, over those of `http`, so they are given here twice.
 */
export function fastifyTimeoutOptions(timeouts: HttpTimeouts) {
  return {
    http: httpServerOptions(timeouts),
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    connectionTimeout: timeouts.connectionMs
  }
}

/**
 * How long a request may wait on the database, and how many may queue for it. A healthy query here
 * takes a millisecond or two; waiting longer means the database is saturated or not answering, and
 * a fast 503 with Retry-After serves the client better than a slow answer. The two deadlines
 * together (250 + 500 ms, 600 at most for a server that stopped answering) stay under a second,
 * the longest any request should wait (issue 16), leaving the rest for the request on a busy event
 * loop: the bench at 256 connections saw PUTs at 1.0–1.3 s with 300 + 650 ms, and the UPDATE's p99
 * there is about 100 ms.
 */

/**
 * The wait for a pool connection when every one is taken. A request that finds one free, or room
 * for a new one, waits instead for that connection's TCP connect and login (CONNECT_TIMEOUT_MS):
 * opening connections on a busy machine can take longer than this, and is not overload.
 */
export const ACQUIRE_TIMEOUT_MS = 250
/** A new connection's TCP connect and login. */
export const CONNECT_TIMEOUT_MS = 1000
/**
 * One statement, from sending it to its last row: the database's own deadline, set on every
 * connection (MariaDB `max_statement_time`, PostgreSQL `statement_timeout`), so the server cancels
 * a statement we stop waiting for. Without it an UPDATE stuck behind a lock runs on after its
 * request was answered 503, commits later, and holds its place in the lock's queue meanwhile.
 */
export const QUERY_TIMEOUT_MS = 500
/**
 * How much longer than QUERY_TIMEOUT_MS we wait ourselves: the server's cancel comes first, says
 * what happened, and leaves the connection usable. Ours only ends a wait on a server that has
 * stopped answering altogether.
 */
export const SERVER_CANCEL_GRACE_MS = 100

export interface PoolLimits {
  /** Requests that may wait for a connection at once; the next one is refused at once. */
  queueLimit: number
  acquireMs: number
  connectMs: number
  /** The database's deadline for one statement; ours is SERVER_CANCEL_GRACE_MS longer. */
  queryMs: number
}

/** How many requests wait for a connection now, for readiness and the metrics. */
export interface PoolGauge {
  waiting(): number
  queueLimit: number
}

function poolError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code })
}

export function queueFull(queueLimit: number): Error {
  return poolError(`${queueLimit} requests already wait for a database connection`, 'POOL_QUEUE_FULL')
}

export function acquireTimedOut(waitedMs: number): Error {
  return poolError(`no database connection free within ${waitedMs} ms`, 'POOL_ACQUIRE_TIMEOUT')
}

/** The pool refused to queue the request, or the request waited its whole deadline in the queue. */
export function isPoolSaturated(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined
  return code === 'POOL_QUEUE_FULL' || code === 'POOL_ACQUIRE_TIMEOUT'
}

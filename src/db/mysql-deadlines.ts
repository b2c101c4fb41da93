/**
 * mysql2 has a connect timeout but none for a query or for the wait for a free pool connection,
 * and its own queue limit fails with a message, not a code: against a database that hangs (frozen,
 * partitioned) or is simply saturated, requests would wait with it. This wraps the pool Kysely uses
 * so both waits end after their deadlines and the queue is bounded (src/db/pool-limits.ts), and
 * the request gets a fast 503 instead; and it has the server end a statement at the same deadline,
 * so one we stopped waiting for does not commit later.
 */
import type { MysqlPool, MysqlPoolConnection } from 'kysely'
import type { Pool, PoolConnection } from 'mysql2'
import { acquireTimedOut, type PoolGauge, type PoolLimits, queueFull, SERVER_CANCEL_GRACE_MS } from './pool-limits.js'

/**
 * The server's own deadline for each statement on a connection. MariaDB aborts a statement past
 * `max_statement_time` wherever it waits, lock waits included, and rolls it back; MySQL has no such
 * setting for writes (the `/*M! … *\/` part is MariaDB's alone), so there lock waits at least end
 * after `innodb_lock_wait_timeout` (rows) and `lock_wait_timeout` (tables), whole seconds, 1 at least.
 */
function serverDeadlineSql(queryMs: number): string {
  const seconds = Math.max(1, Math.ceil(queryMs / 1000))
  return `SET SESSION /*M! max_statement_time = ${queryMs / 1000}, */ innodb_lock_wait_timeout = ${seconds}, lock_wait_timeout = ${seconds}`
}

/** Sets the server's deadline on every connection the pool opens, before anything else runs on it. */
function withServerDeadline(pool: Pool, queryMs: number): void {
  pool.on('connection', (connection) => {
    // Best effort: should it fail, our own deadline still ends the wait.
    connection.query(serverDeadlineSql(queryMs), () => {})
  })
}

/**
 * A query that timed out is still queued on its connection, and every later query on it would wait
 * behind it, past its own deadline: such a connection is destroyed, never returned to the pool.
 */
function withQueryDeadline(connection: PoolConnection, deadlineMs: number, onRelease: () => void): MysqlPoolConnection {
  let broken = false
  function query(sql: string, values: unknown[], callback?: (error: unknown, result: never) => void) {
    if (!callback) return connection.query({ sql, values, timeout: deadlineMs })
    connection.query(
      { sql, values, timeout: deadlineMs },
      (error: (Error & { code?: string }) | null, result: never) => {
        if (error?.code === 'PROTOCOL_SEQUENCE_TIMEOUT') {
          broken = true
          connection.destroy()
        }
        callback(error, result)
      }
    )
  }
  return {
    query: query as MysqlPoolConnection['query'],
    release: () => {
      onRelease()
      if (!broken) connection.release()
    }
  }
}

/**
 * `size` connections serve at once and `queueLimit` requests may wait behind them; one more is
 * refused at once. Counted here (asked for, and handed out until released), not from mysql2's
 * internals: a request is only waiting when every connection is taken.
 */
export function withDeadlines(pool: Pool, size: number, limits: PoolLimits): { pool: MysqlPool; gauge: PoolGauge } {
  withServerDeadline(pool, limits.queryMs)
  let asking = 0
  let held = 0
  const waiting = () => Math.max(0, asking + held - size)
  const bounded: MysqlPool = {
    getConnection(callback) {
      if (asking + held >= size + limits.queueLimit) return callback(queueFull(limits.queueLimit), undefined as never)
      // Only a request that finds every connection taken waits for one; one that gets a free or a
      // new connection waits for its connect and login, which mysql2's connectTimeout bounds.
      const mustWait = asking + held >= size
      asking++
      let settled = false
      const settle = () => {
        settled = true
        asking--
      }
      const timer = setTimeout(
        () => {
          settle()
          callback(acquireTimedOut(limits.acquireMs), undefined as never)
        },
        // A backstop past mysql2's own connect timeout, whose error says what happened.
        mustWait ? limits.acquireMs : limits.connectMs + 250
      )
      pool.getConnection((error, connection) => {
        // Too late: the request has had its 503; give the connection back.
        if (settled) return connection?.release()
        settle()
        clearTimeout(timer)
        if (error) return callback(error, undefined as never)
        held++
        callback(
          null,
          withQueryDeadline(connection, limits.queryMs + SERVER_CANCEL_GRACE_MS, () => held--)
        )
      })
    },
    end: (callback) => pool.end(callback)
  }
  return { pool: bounded, gauge: { waiting, queueLimit: limits.queueLimit } }
}

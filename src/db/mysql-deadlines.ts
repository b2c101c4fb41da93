/**
 * mysql2 has a connect timeout but none for a query or for the wait for a free pool connection:
 * against a database that hangs (frozen, partitioned), requests would hang with it. This wraps the
 * pool Kysely uses so both waits end after a deadline, and the request gets a 503 instead.
 */
import type { MysqlPool, MysqlPoolConnection } from 'kysely'
import type { Pool, PoolConnection } from 'mysql2'

/**
 * A query that timed out is still queued on its connection, and every later query on it would wait
 * behind it, past its own deadline: such a connection is destroyed, never returned to the pool.
 */
function withQueryDeadline(connection: PoolConnection, deadlineMs: number): MysqlPoolConnection {
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
      if (!broken) connection.release()
    }
  }
}

export function withDeadlines(pool: Pool, deadlineMs: number): MysqlPool {
  return {
    getConnection(callback) {
      let settled = false
      const timer = setTimeout(() => {
        settled = true
        const error = Object.assign(new Error(`no database connection free within ${deadlineMs} ms`), {
          code: 'POOL_ACQUIRE_TIMEOUT'
        })
        callback(error, undefined as never)
      }, deadlineMs)
      pool.getConnection((error, connection) => {
        // Too late: the request has had its 503; give the connection back.
        if (settled) return connection?.release()
        settled = true
        clearTimeout(timer)
        if (error) callback(error, undefined as never)
        else callback(null, withQueryDeadline(connection, deadlineMs))
      })
    },
    end: (callback) => pool.end(callback)
  }
}

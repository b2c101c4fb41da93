/** Recognises driver errors by meaning, so callers need not know which engine raised them. */

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'POOL_ACQUIRE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_ACCESS_DENIED_ERROR',
  'ER_BAD_DB_ERROR',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_LOCK_DEADLOCK',
  // Past the server's statement deadline: MySQL's max_execution_time, and MariaDB's
  // max_statement_time (ER_STATEMENT_TIMEOUT, which mysql2 has no name for: its errno).
  'ER_QUERY_TIMEOUT',
  '1969',
  // PostgreSQL SQLSTATEs: connection exceptions, shutdown, too many connections, deadlock.
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '40P01',
  '55P03',
  // PostgreSQL's statement_timeout (query_canceled).
  '57014',
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_IOERR',
  'SQLITE_FULL',
  'SQLITE_CANTOPEN',
  'SQLITE_READONLY'
])

/** The driver's name for the error, or its number where the driver has no name for it. */
function code(error: unknown): string {
  if (typeof error !== 'object' || error === null) return ''
  const { code, errno } = error as { code?: unknown; errno?: unknown }
  return code != null ? String(code) : errno != null ? String(errno) : ''
}

export function isUniqueViolation(error: unknown): boolean {
  const c = code(error)
  return (
    c === 'ER_DUP_ENTRY' || c === '23505' || c === 'SQLITE_CONSTRAINT_UNIQUE' || c === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  )
}

/** A row points at one that is gone, e.g. a session created for a user deleted a moment before. */
export function isForeignKeyViolation(error: unknown): boolean {
  const c = code(error)
  return (
    c === 'SQLITE_CONSTRAINT_FOREIGNKEY' ||
    c === 'ER_NO_REFERENCED_ROW_2' ||
    c === 'ER_NO_REFERENCED_ROW' ||
    c === '23503'
  )
}

/** The database is down, unreachable, overloaded or busy: worth a 503 and a retry, not a 500. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const c = code(error)
  if (CONNECTION_CODES.has(c) || c.startsWith('SQLITE_BUSY') || c.startsWith('SQLITE_IOERR')) return true
  // mysql2 rejects queued requests with a plain Error once its pool is closed or a socket fails.
  const message = error instanceof Error ? error.message : ''
  // pg says "timeout exceeded when trying to connect", "Query read timeout", "Connection terminated".
  return /Pool is closed|connect ETIMEDOUT|Connection lost|Can't add new command when connection is in closed state|timeout exceeded when trying to connect|Connection terminated|Query read timeout/i.test(
    message
  )
}

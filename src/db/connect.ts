/**
 * Opens the database named by DATABASE_URL: a mysql2 pool for `mysql://`, a pg pool for
 * `postgres://`, or an embedded better-sqlite3 file for `sqlite:` (created on first use, WAL mode,
 * readable by this user alone).
 */
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import type SQLite from 'better-sqlite3'
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect } from 'kysely'
import type { createPool as CreatePool } from 'mysql2'
import type pg from 'pg'
import { withDeadlines } from './mysql-deadlines.js'
import {
  ACQUIRE_TIMEOUT_MS,
  CONNECT_TIMEOUT_MS,
  acquireTimedOut,
  type PoolGauge,
  type PoolLimits,
  QUERY_TIMEOUT_MS,
  queueFull,
  SERVER_CANCEL_GRACE_MS
} from './pool-limits.js'

import type { Database, Db } from './schema.js'

/** Only the driver DATABASE_URL names is loaded: each costs memory in every process (mysql2 alone ~10 MB). */
const require = createRequire(import.meta.url)

export interface OpenDbOptions {
  /** Connections per pool (MySQL, PostgreSQL). */
  poolSize?: number
  /** Requests that may wait for a connection; the next one is refused at once (MySQL, PostgreSQL). */
  queueLimit?: number
  /** Errors on idle pooled connections (a server restart, say); the pool replaces them by itself. */
  onIdleError?: (error: Error) => void
  /**
   * The query deadline (MySQL, PostgreSQL). Requests keep the default (QUERY_TIMEOUT_MS);
   * migrations and tools, whose statements can take seconds on a busy server, pass TOOL_QUERY_TIMEOUT_MS.
   */
  queryTimeoutMs?: number
}

/**
 * Migrations and the offline tools (import, export, admin): long enough for any DDL or batch of ours
 * on a loaded server, and a statement that hangs still ends. Requests keep the short deadlines.
 */
export const TOOL_QUERY_TIMEOUT_MS = 60_000

/** Tools (migrations, import, admin) wait in line like any caller; only the service bounds it by config. */
const DEFAULT_QUEUE_LIMIT = 1000

export function openDb(databaseUrl: string, options: OpenDbOptions = {}): Db {
  const poolSize = options.poolSize ?? 10
  const onIdleError = options.onIdleError ?? (() => {})
  const limits = {
    queueLimit: options.queueLimit ?? DEFAULT_QUEUE_LIMIT,
    acquireMs: ACQUIRE_TIMEOUT_MS,
    connectMs: CONNECT_TIMEOUT_MS,
    queryMs: options.queryTimeoutMs ?? QUERY_TIMEOUT_MS
  }
  if (databaseUrl.startsWith('sqlite:')) return openSqlite(databaseUrl.slice('sqlite:'.length))
  if (databaseUrl.startsWith('mysql:')) return openMysql(databaseUrl, poolSize, limits)
  if (/^postgres(ql)?:/.test(databaseUrl)) return openPostgres(databaseUrl, poolSize, onIdleError, limits)
  throw new Error(`unsupported DATABASE_URL scheme: ${databaseUrl.split(':')[0]}`)
}

/**
 * The file holds every password hash. SQLite would create it 0644 (less the umask) and gives its
 * -wal and -shm the database file's mode, so creating the file 0600 first keeps all three private;
 * a folder we create is 0700. Files that already exist keep the mode they have.
 */
function createPrivately(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  try {
    closeSync(openSync(path, 'wx', 0o600))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  }
}

function openSqlite(path: string): Db {
  if (path !== ':memory:' && path !== '') createPrivately(path)
  const Database = require('better-sqlite3') as typeof SQLite
  const database = new Database(path)
  database.pragma('journal_mode = WAL')
  // WAL makes NORMAL durable against process crashes; only an OS crash can lose the last commits.
  database.pragma('synchronous = NORMAL')
  database.pragma('foreign_keys = ON')
  database.pragma('busy_timeout = 5000')
  cacheStatements(database)
  return {
    kysely: new Kysely<Database>({ dialect: new SqliteDialect({ database }) }),
    // ISO strings sort in time order, so comparisons in SQL stay correct.
    time: (date) => date.toISOString(),
    bool: (value) => (value ? 1 : 0),
    engine: 'sqlite'
  }
}

/**
 * Kysely's SQLite driver prepares every statement again on every query (9% of a read's CPU). Our
 * SQL texts are a small fixed set, so each is prepared once and reused; the cap only guards against
 * a query whose text varies (an `in (...)` list during an import).
 */
const STATEMENT_CACHE_SIZE = 200

function cacheStatements(database: SQLite.Database): void {
  const prepareStatement = database.prepare.bind(database)
  const statements = new Map<string, SQLite.Statement>()
  database.prepare = ((source: string) => {
    let statement = statements.get(source)
    if (!statement) {
      if (statements.size >= STATEMENT_CACHE_SIZE) statements.clear()
      statement = prepareStatement(source)
      statements.set(source, statement)
    }
    return statement
  }) as SQLite.Database['prepare']
}

function openMysql(url: string, poolSize: number, limits: PoolLimits): Db {
  const { createPool } = require('mysql2') as { createPool: typeof CreatePool }
  const pool = createPool({
    uri: url,
    connectionLimit: poolSize,
    // Store and read DATETIME as UTC, whatever the server's or this machine's time zone.
    timezone: 'Z',
    enableKeepAlive: true,
    connectTimeout: limits.connectMs,
    supportBigNumbers: true
  })
  const bounded = withDeadlines(pool, poolSize, limits)
  return {
    kysely: new Kysely<Database>({ dialect: new MysqlDialect({ pool: bounded.pool }) }),
    time: (date) => date,
    bool: (value) => value,
    engine: 'mysql',
    pool: bounded.gauge
  }
}

function openPostgres(url: string, poolSize: number, onIdleError: (error: Error) => void, limits: PoolLimits): Db {
  const { Pool } = require('pg') as typeof pg
  const pool = new Pool({
    connectionString: url,
    max: poolSize,
    // Bounds a new connection's connect and login; the wait for a taken one is bounded below.
    connectionTimeoutMillis: limits.connectMs,
    // The server cancels a statement past its deadline (src/db/pool-limits.ts); ours is the backstop.
    statement_timeout: limits.queryMs,
    query_timeout: limits.queryMs + SERVER_CANCEL_GRACE_MS,
    keepAlive: true
  })
  // Without a listener, an idle client's error (e.g. the server restarting) would crash the process.
  pool.on('error', onIdleError)
  // pg queues without bound and has one deadline for the queue and for connecting: only a request
  // that found every connection taken waits in the queue, and only for ACQUIRE_TIMEOUT_MS.
  const connect = async () => {
    const allTaken = pool.idleCount === 0 && pool.totalCount >= poolSize
    if (!allTaken) return pool.connect()
    if (pool.waitingCount >= limits.queueLimit) throw queueFull(limits.queueLimit)
    const asked = pool.connect()
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(acquireTimedOut(limits.acquireMs)), limits.acquireMs)
    })
    try {
      return await Promise.race([asked, timedOut])
    } catch (error) {
      // Too late: the request has had its 503; a connection that comes anyway goes back at once.
      asked.then(
        (client) => client.release(),
        () => {}
      )
      throw /timeout exceeded when trying to connect/.test(String((error as Error).message))
        ? acquireTimedOut(limits.acquireMs)
        : error
    } finally {
      clearTimeout(timer)
    }
  }
  const gauge: PoolGauge = { waiting: () => pool.waitingCount, queueLimit: limits.queueLimit }
  return {
    kysely: new Kysely<Database>({ dialect: new PostgresDialect({ pool: { connect, end: () => pool.end() } }) }),
    time: (date) => date,
    bool: (value) => value,
    engine: 'postgres',
    pool: gauge
  }
}

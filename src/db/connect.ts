/**
 * Opens the database named by DATABASE_URL: a mysql2 pool for `mysql://`, or an embedded
 * better-sqlite3 file for `sqlite:` (created on first use, WAL mode).
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import SQLite from 'better-sqlite3'
import { Kysely, MysqlDialect, SqliteDialect } from 'kysely'
import { createPool } from 'mysql2'
import type { Database, Db } from './schema.js'

export interface OpenDbOptions {
  /** mysql2 pool size. */
  poolSize?: number
}

export function openDb(databaseUrl: string, options: OpenDbOptions = {}): Db {
  if (databaseUrl.startsWith('sqlite:')) return openSqlite(databaseUrl.slice('sqlite:'.length))
  return openMysql(databaseUrl, options.poolSize ?? 10)
}

function openSqlite(path: string): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const database = new SQLite(path)
  database.pragma('journal_mode = WAL')
  // WAL makes NORMAL durable against process crashes; only an OS crash can lose the last commits.
  database.pragma('synchronous = NORMAL')
  database.pragma('foreign_keys = ON')
  database.pragma('busy_timeout = 5000')
  return {
    kysely: new Kysely<Database>({ dialect: new SqliteDialect({ database }) }),
    dialect: 'sqlite',
    // ISO strings sort in time order, so comparisons in SQL stay correct.
    time: (date) => date.toISOString(),
    bool: (value) => (value ? 1 : 0)
  }
}

function openMysql(url: string, poolSize: number): Db {
  const pool = createPool({
    uri: url,
    connectionLimit: poolSize,
    // Store and read DATETIME as UTC, whatever the server's or this machine's time zone.
    timezone: 'Z',
    enableKeepAlive: true,
    connectTimeout: 2000,
    supportBigNumbers: true
  })
  return {
    kysely: new Kysely<Database>({ dialect: new MysqlDialect({ pool }) }),
    dialect: 'mysql',
    time: (date) => date,
    bool: (value) => value
  }
}

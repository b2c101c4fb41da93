/** The tables, as Kysely sees them. Timestamps are Date on MySQL and PostgreSQL, ISO-8601 text on SQLite. */
import type { ColumnType } from 'kysely'

type Timestamp = ColumnType<Date | string, Date | string, Date | string>

export interface UsersTable {
  /** A random UUID: never reused, so a stale session can never reach a re-created account. */
  id: string
  /** As the user typed it at sign-up. */
  username: string
  /** Lower-cased `username`; unique, so `Ben` and `ben` are one account on every engine. */
  username_key: string
  password_hash: string
  admin: ColumnType<boolean | number, boolean | number | undefined, boolean | number>
  /** The user's JSON document: text in SQLite; the MySQL and PostgreSQL drivers parse it. */
  data: ColumnType<unknown, string, string>
  created_at: Timestamp
  updated_at: Timestamp
  /** Set while an administrator has the account suspended; null otherwise. */
  suspended_at: ColumnType<Date | string | null, Date | string | null | undefined, Date | string | null>
  suspension_reason: ColumnType<string | null, string | null | undefined, string | null>
}

/** Sessions of the embedded default; with Redis they live there instead. */
export interface SessionsTable {
  /** SHA-256 of the token, hex. The token itself is never stored. */
  token_hash: string
  /** The session's public id (sessions/tokens.ts newSessionId). */
  public_id: string
  user_id: string
  expires_at: Timestamp
  created_at: Timestamp
  last_used_at: Timestamp
  user_agent: string | null
  ip: string
}

/** A REDIS_KEY_PREFIX under which a service caches accounts in Redis (see redis-account-caches-repository.ts). */
export interface RedisAccountCachesTable {
  key_prefix: string
  recorded_at: Timestamp
}

export interface Database {
  users: UsersTable
  sessions: SessionsTable
  redis_account_caches: RedisAccountCachesTable
}

/** What every repository needs: the query builder and the engine's forms of a time and a boolean. */
export interface Db {
  kysely: import('kysely').Kysely<Database>
  /** A timestamp in the form this engine stores. */
  time(date: Date): Date | string
  /** A boolean in the form this engine stores (SQLite has no boolean type). */
  bool(value: boolean): boolean | number
}

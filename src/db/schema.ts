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
  /** Moves up by one with every change to the account (its ETag); a conditional write names the one it expects. */
  version: ColumnType<number, number | undefined, number>
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

/** The audit trail: one row per security event (src/audit). Never a password, token or hash. */
export interface AuditEventsTable {
  /** Grows with every event: newest first is `id` descending, and the cursor of a page. */
  id: ColumnType<number | bigint | string, never, never>
  occurred_at: Timestamp
  /** An AuditAction of openapi.yaml. */
  action: string
  /** Null for a request without a token, or an operator's `npm run admin`. */
  actor_id: string | null
  actor_username: string | null
  /** Null when the event has no account (a failed login for an unknown username has only its name). */
  target_id: string | null
  target_username: string | null
  ip: string | null
  request_id: string | null
}

/** Idempotency-Key records of the embedded default; with Redis they live there instead (src/idempotency). */
export interface IdempotencyKeysTable {
  /** SHA-256 of the key, hex. */
  key_hash: string
  /** 'running' while the first request runs, 'done' once its answer is kept. */
  state: string
  /** SHA-256 of what identifies the request (src/idempotency): a retry must send the same. */
  fingerprint: string
  /** The kept answer (status, headers, body) as JSON, once done. */
  response: string | null
  expires_at: Timestamp
}

export interface Database {
  users: UsersTable
  sessions: SessionsTable
  redis_account_caches: RedisAccountCachesTable
  audit_events: AuditEventsTable
  idempotency_keys: IdempotencyKeysTable
}

/** What every repository needs: the query builder and the engine's forms of a time and a boolean. */
export interface Db {
  kysely: import('kysely').Kysely<Database>
  /** A timestamp in the form this engine stores. */
  time(date: Date): Date | string
  /** A boolean in the form this engine stores (SQLite has no boolean type). */
  bool(value: boolean): boolean | number
  /** Which engine: SQLite has no `SELECT ... FOR UPDATE` (its transactions lock the whole file). */
  engine: 'sqlite' | 'mysql' | 'postgres'
  /** Requests waiting for a connection (MySQL, PostgreSQL; SQLite has no pool). */
  pool?: import('./pool-limits.js').PoolGauge
}

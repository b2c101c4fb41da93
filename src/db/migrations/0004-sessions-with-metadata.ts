/**
 * Sessions gain what their owner is shown of them: a public id (never the token or its hash), the
 * client's User-Agent and address, and when it was last used. Tokens issued before this release have a shape the service now
 * refuses (sessions/tokens.ts), so their rows could never be used again: the table is rebuilt
 * empty rather than altered (SQLite cannot add NOT NULL columns to a table with rows).
 */
import type { Kysely } from 'kysely'
import { columnTypes } from './column-types.js'
import * as createSessions from './0002-create-sessions.js'

export async function up(db: Kysely<any>): Promise<void> {
  const types = columnTypes(db)
  await db.schema.dropTable('sessions').execute()
  await db.schema
    .createTable('sessions')
    .addColumn('token_hash', 'char(64)', (col) => col.primaryKey())
    .addColumn('public_id', 'varchar(22)', (col) => col.notNull().unique())
    .addColumn('user_id', 'varchar(36)', (col) => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('expires_at', types.timestamp, (col) => col.notNull())
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    // Rewritten at most once a minute by reads (sessions/session.ts LAST_USED_PRECISION_MS).
    .addColumn('last_used_at', types.timestamp, (col) => col.notNull())
    // USER_AGENT_MAX_LENGTH (sessions/session-store.ts); an IPv6 address with a zone fits in 64.
    .addColumn('user_agent', 'varchar(256)')
    .addColumn('ip', 'varchar(64)', (col) => col.notNull())
    .execute()
  await db.schema.createIndex('sessions_user_id').on('sessions').column('user_id').execute()
  await db.schema.createIndex('sessions_expires_at').on('sessions').column('expires_at').execute()
}

/** Back to 0002's table, empty: the rebuilt rows' tokens are unknown to the older release. */
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('sessions').execute()
  await createSessions.up(db)
}

/**
 * Idempotency-Key records of the embedded default (src/idempotency/sql-idempotency-store.ts): one
 * row per key, by the key's SHA-256; the expiry index lets expired rows be found and swept cheaply.
 */
import { type Kysely, sql } from 'kysely'
import { columnTypes, engineOf } from './column-types.js'

export async function up(db: Kysely<any>): Promise<void> {
  const types = columnTypes(db)
  // The kept answer holds the account's data (up to a request body's size): beyond MySQL's TEXT.
  const text = engineOf(db) === 'mysql' ? sql`mediumtext` : sql`text`
  await db.schema
    .createTable('idempotency_keys')
    .addColumn('key_hash', 'char(64)', (col) => col.primaryKey())
    .addColumn('state', 'varchar(16)', (col) => col.notNull())
    .addColumn('fingerprint', 'char(64)', (col) => col.notNull())
    .addColumn('response', text)
    .addColumn('expires_at', types.timestamp, (col) => col.notNull())
    .execute()
  await db.schema.createIndex('idempotency_keys_expires_at').on('idempotency_keys').column('expires_at').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('idempotency_keys').execute()
}

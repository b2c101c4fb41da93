/**
 * The audit trail (src/audit): one row per security event, never a password, token or hash. The id
 * grows with every event, so "newest first" is `id` descending and a page's cursor is an id.
 * No foreign keys: an event outlives the accounts it names (a deleted account's events stay until
 * they age out, and the ids are random UUIDs, never reused, so a re-created username cannot see them).
 */
import type { Kysely } from 'kysely'
import { columnTypes, engineOf } from './column-types.js'

export async function up(db: Kysely<any>): Promise<void> {
  const types = columnTypes(db)
  const engine = engineOf(db)
  let table = db.schema.createTable('audit_events')
  if (engine === 'postgres') {
    table = table.addColumn('id', 'bigint', (col) => col.generatedAlwaysAsIdentity().primaryKey())
  } else if (engine === 'mysql') {
    table = table.addColumn('id', 'bigint', (col) => col.autoIncrement().primaryKey())
  } else {
    // SQLite: an INTEGER PRIMARY KEY is the 64-bit rowid; AUTOINCREMENT never hands out an id again.
    table = table.addColumn('id', 'integer', (col) => col.primaryKey().autoIncrement())
  }
  await table
    .addColumn('occurred_at', types.timestamp, (col) => col.notNull())
    .addColumn('action', 'varchar(32)', (col) => col.notNull())
    .addColumn('actor_id', 'varchar(36)')
    .addColumn('actor_username', 'varchar(32)')
    .addColumn('target_id', 'varchar(36)')
    .addColumn('target_username', 'varchar(32)')
    // An IPv6 address with a zone fits in 64 (as in sessions); request ids are at most 128 (logging/request-id.ts).
    .addColumn('ip', 'varchar(64)')
    .addColumn('request_id', 'varchar(128)')
    .execute()
  // One account's page: an index range scan on (target_id, id < cursor), newest first.
  await db.schema.createIndex('audit_events_target_id_id').on('audit_events').columns(['target_id', 'id']).execute()
  // Pruning reads the oldest events, up to a batch at a time, in this index's order.
  await db.schema.createIndex('audit_events_occurred_at').on('audit_events').column('occurred_at').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('audit_events').execute()
}

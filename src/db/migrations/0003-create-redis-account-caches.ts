/**
 * Where the service caches accounts in Redis: one row per REDIS_KEY_PREFIX a service started with.
 * `npm run admin` reads it, so a change made without the cache cannot leave a stale copy there.
 */
import type { Kysely } from 'kysely'
import { columnTypes } from './column-types.js'

export async function up(db: Kysely<any>): Promise<void> {
  const types = columnTypes(db)
  await db.schema
    .createTable('redis_account_caches')
    // Any text (REDIS_KEY_PREFIX is not limited), so no key on it: the repository avoids duplicates.
    .addColumn('key_prefix', 'text', (col) => col.notNull())
    .addColumn('recorded_at', types.timestamp, (col) => col.notNull())
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('redis_account_caches').execute()
}

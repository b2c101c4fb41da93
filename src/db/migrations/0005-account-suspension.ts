/** Accounts an administrator has suspended: since when, and why (both null while not suspended). */
import type { Kysely } from 'kysely'
import { columnTypes } from './column-types.js'

export async function up(db: Kysely<any>): Promise<void> {
  const types = columnTypes(db)
  await db.schema.alterTable('users').addColumn('suspended_at', types.timestamp).execute()
  await db.schema.alterTable('users').addColumn('suspension_reason', 'varchar(500)').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').dropColumn('suspension_reason').execute()
  await db.schema.alterTable('users').dropColumn('suspended_at').execute()
}

import { type Kysely, sql } from 'kysely'
import { columnTypes } from './column-types.js'

export async function up(db: Kysely<any>): Promise<void> {
  const types = columnTypes(db)
  await db.schema
    .createTable('users')
    .addColumn('id', 'varchar(36)', (col) => col.primaryKey())
    .addColumn('username', 'varchar(32)', (col) => col.notNull())
    .addColumn('username_key', 'varchar(32)', (col) => col.notNull().unique())
    .addColumn('password_hash', 'varchar(60)', (col) => col.notNull())
    .addColumn('admin', 'boolean', (col) => col.notNull().defaultTo(sql`false`))
    .addColumn('data', types.json, (col) => col.notNull())
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    .addColumn('updated_at', types.timestamp, (col) => col.notNull())
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('users').execute()
}

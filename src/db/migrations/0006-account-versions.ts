/**
 * Every account gets a version, its ETag: it moves up by one with every change to the account, so a
 * write conditional on the version a client read (If-Match) can never overwrite a change it did not see.
 */
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('users')
    .addColumn('version', 'integer', (col) => col.notNull().defaultTo(sql`1`))
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').dropColumn('version').execute()
}

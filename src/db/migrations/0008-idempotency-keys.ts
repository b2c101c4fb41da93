/** Placeholder: filled in by the feature that owns it. */
import type { Kysely } from 'kysely'

export async function up(_db: Kysely<any>): Promise<void> {}

export async function down(_db: Kysely<any>): Promise<void> {}

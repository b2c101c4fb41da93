/** Applies the numbered migrations in `./migrations`, at start-up and from `npm run migrate`. */
import { type Kysely, type MigrationResult, Migrator, sql } from 'kysely'
import { migrations } from './migrations/index.js'

export const MIGRATION_TABLE = 'schema_migrations'

export class MigrationError extends Error {
  override name = 'MigrationError'
}

export interface MigrationState {
  name: string
  /** When it was applied, or undefined while it is pending. */
  appliedAt: Date | undefined
}

function migrator(db: Kysely<any>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: `${MIGRATION_TABLE}_lock`
  })
}

/** Names of migrations the database has applied, whether or not this release knows them. */
async function appliedNames(db: Kysely<any>): Promise<string[]> {
  const tables = await db.introspection.getTables()
  if (!tables.some((table) => table.name === MIGRATION_TABLE)) return []
  const rows = await db.selectFrom(MIGRATION_TABLE).select(sql<string>`name`.as('name')).execute()
  return rows.map((row) => row.name)
}

/** Refuses a database migrated by a newer release: this code would misread its schema. */
async function assertNoUnknownMigrations(db: Kysely<any>): Promise<void> {
  const unknown = (await appliedNames(db)).filter((name) => !(name in migrations))
  if (unknown.length) {
    throw new MigrationError(
      `the database schema is newer than this release (it has migration ${unknown.join(', ')}, which this release does not know): upgrade the service`
    )
  }
}

export async function migrateToLatest(db: Kysely<any>): Promise<MigrationResult[]> {
  await assertNoUnknownMigrations(db)
  const { error, results = [] } = await migrator(db).migrateToLatest()
  if (error) {
    const failed = results.find((result) => result.status === 'Error')
    const reason = error instanceof Error ? error.message : String(error)
    throw new MigrationError(`migration ${failed?.migrationName ?? '(none)'} failed: ${reason}`, { cause: error })
  }
  return results
}

export async function migrationStatus(db: Kysely<any>): Promise<MigrationState[]> {
  await assertNoUnknownMigrations(db)
  const infos = await migrator(db).getMigrations()
  return infos.map((info) => ({ name: info.name, appliedAt: info.executedAt }))
}

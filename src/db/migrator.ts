/** Applies the numbered migrations in `./migrations`, at start-up and from `npm run migrate`. */
import { type Kysely, type MigrationResult, Migrator } from 'kysely'
import { migrations } from './migrations/index.js'

export class MigrationError extends Error {
  override name = 'MigrationError'
}

function migrator(db: Kysely<any>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'schema_migrations',
    migrationLockTableName: 'schema_migrations_lock'
  })
}

export async function migrateToLatest(db: Kysely<any>): Promise<MigrationResult[]> {
  const { error, results = [] } = await migrator(db).migrateToLatest()
  if (error) {
    const failed = results.find((result) => result.status === 'Error')
    const reason = error instanceof Error ? error.message : String(error)
    throw new MigrationError(`migration ${failed?.migrationName ?? '(none)'} failed: ${reason}`, { cause: error })
  }
  return results
}

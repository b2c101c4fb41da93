/**
 * Database migrations, outside the service (which also applies them at start-up):
 *   npm run migrate             apply the pending ones
 *   npm run migrate -- status   list every migration, applied or pending
 * Both are idempotent.
 */
import { ConfigError, loadConfig, loadEnvFile, redact } from '../src/config/config.js'
import { openDb, TOOL_QUERY_TIMEOUT_MS } from '../src/db/connect.js'
import { migrateToLatest, migrationStatus } from '../src/db/migrator.js'

async function main(command: string | undefined): Promise<number> {
  if (command !== undefined && command !== 'status') {
    console.error('usage: npm run migrate [-- status]')
    return 2
  }
  loadEnvFile()
  const { databaseUrl } = loadConfig()
  const db = openDb(databaseUrl, { poolSize: 1, queryTimeoutMs: TOOL_QUERY_TIMEOUT_MS })
  try {
    if (command === 'status') {
      for (const { name, appliedAt } of await migrationStatus(db.kysely)) {
        console.log(appliedAt ? `applied  ${name}  (${appliedAt.toISOString()})` : `pending  ${name}`)
      }
      return 0
    }
    const results = await migrateToLatest(db.kysely)
    for (const result of results) console.log(`applied  ${result.migrationName}`)
    console.log(`${redact(databaseUrl)} is up to date${results.length ? '' : ' (nothing to apply)'}.`)
    return 0
  } finally {
    await db.kysely.destroy()
  }
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error)
    console.error(error instanceof ConfigError ? `Configuration error: ${message}` : `migrate failed: ${message}`)
    process.exit(1)
  }
)

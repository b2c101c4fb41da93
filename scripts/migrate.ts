/** Applies pending migrations to DATABASE_URL (the service also does this at start-up). */
import { ConfigError, loadConfig, redact } from '../src/config/config.js'
import { openDb } from '../src/db/connect.js'
import { migrateToLatest } from '../src/db/migrator.js'

async function main(): Promise<void> {
  const { databaseUrl } = loadConfig()
  const db = openDb(databaseUrl, { poolSize: 1 })
  try {
    const results = await migrateToLatest(db.kysely)
    for (const result of results) console.log(`${result.status === 'Success' ? 'applied' : result.status}: ${result.migrationName}`)
    console.log(results.length ? `${redact(databaseUrl)} is up to date.` : `${redact(databaseUrl)} was already up to date.`)
  } finally {
    await db.kysely.destroy()
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? `Configuration error: ${error.message}` : `migrate failed: ${error instanceof Error ? error.message : error}`)
  process.exit(1)
})

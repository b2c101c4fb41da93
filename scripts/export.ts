/**
 * Writes every account of DATABASE_URL as JSON lines (password hashes included, never plaintext):
 *   npm run --silent export > accounts.jsonl
 */
import { once } from 'node:events'
import { exportAccounts } from '../src/accounts/transfer.js'
import { ConfigError, loadConfig, loadEnvFile } from '../src/config/config.js'
import { openDb } from '../src/db/connect.js'
import { migrationStatus } from '../src/db/migrator.js'

async function main(): Promise<void> {
  loadEnvFile()
  const db = openDb(loadConfig().databaseUrl, { poolSize: 1 })
  try {
    // Read-only: a database this release has not migrated is refused, never changed.
    const pending = (await migrationStatus(db.kysely)).filter((migration) => !migration.appliedAt)
    if (pending.length)
      throw new Error(
        `the database has pending migrations (${pending.map((m) => m.name).join(', ')}): run npm run migrate first`
      )
    let count = 0
    for await (const line of exportAccounts(db)) {
      if (!process.stdout.write(line)) await once(process.stdout, 'drain')
      count++
    }
    console.error(`exported ${count} account(s)`)
  } finally {
    await db.kysely.destroy()
  }
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error)
  console.error(error instanceof ConfigError ? `Configuration error: ${message}` : `export failed: ${message}`)
  process.exit(1)
})

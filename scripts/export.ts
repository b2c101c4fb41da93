/**
 * Writes every account of DATABASE_URL as JSON lines (password hashes included, never plaintext):
 *   npm run --silent export > accounts.jsonl
 * The shell creates that file, with its umask (0644 as a rule): when stdout is a file others may
 * read, it is made 0600 before the first line is written. Someone who opened it in between would
 * keep reading it, so `umask 077` before the redirect leaves no gap at all.
 */
import { once } from 'node:events'
import { fchmodSync, fstatSync } from 'node:fs'
import { exportAccounts } from '../src/accounts/transfer.js'
import { ConfigError, loadConfig, loadEnvFile } from '../src/config/config.js'
import { openDb, TOOL_QUERY_TIMEOUT_MS } from '../src/db/connect.js'
import { migrationStatus } from '../src/db/migrator.js'

const STDOUT = 1

/** An export holds every password hash: a file it goes to is readable by its owner alone. */
function keepOutputPrivate(): void {
  const output = fstatSync(STDOUT)
  if (!output.isFile() || (output.mode & 0o077) === 0) return
  const was = (output.mode & 0o777).toString(8).padStart(4, '0')
  try {
    fchmodSync(STDOUT, 0o600)
    console.error(`the output file was readable by others (${was}): it is now 0600`)
  } catch (error) {
    throw new Error(
      `the output file is readable by others (${was}) and could not be made 0600 (${error instanceof Error ? error.message : error}): write the export to a file of your own`
    )
  }
}

async function main(): Promise<void> {
  keepOutputPrivate()
  loadEnvFile()
  const db = openDb(loadConfig().databaseUrl, { poolSize: 1, queryTimeoutMs: TOOL_QUERY_TIMEOUT_MS })
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

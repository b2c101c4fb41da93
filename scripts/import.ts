/**
 * Reads accounts written by `npm run export` into DATABASE_URL: all of them or, on any problem, none.
 *   npm run import -- accounts.jsonl        (or: npm run import < accounts.jsonl)
 */
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { ImportError, importAccounts } from '../src/accounts/transfer.js'
import { ConfigError, loadConfig, loadEnvFile } from '../src/config/config.js'
import { openDb } from '../src/db/connect.js'
import { migrateToLatest } from '../src/db/migrator.js'

async function main(file: string | undefined): Promise<void> {
  loadEnvFile()
  const db = openDb(loadConfig().databaseUrl, { poolSize: 1 })
  try {
    await migrateToLatest(db.kysely)
    const input = file ? createReadStream(file) : process.stdin
    const count = await importAccounts(db, createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY }))
    console.log(`imported ${count} account(s)`)
  } finally {
    await db.kysely.destroy()
  }
}

main(process.argv[2]).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error)
  const known =
    error instanceof ConfigError
      ? 'Configuration error'
      : error instanceof ImportError
        ? 'import refused'
        : 'import failed'
  console.error(`${known}: ${message}`)
  process.exit(1)
})

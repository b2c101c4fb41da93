/**
 * Reads accounts written by `npm run export` into DATABASE_URL: all of them or, on any problem, none.
 *   npm run import -- accounts.jsonl        (or: npm run import < accounts.jsonl)
 *   npm run import -- --allow-admins accounts.jsonl
 * An account with `admin: true` is refused unless --allow-admins is given, and every admin imported
 * is named in the report. A hash dearer than BCRYPT_COST is refused (see src/accounts/transfer.ts).
 */
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { ImportError, type ImportReport, importAccounts } from '../src/accounts/transfer.js'
import { ConfigError, loadConfig, loadEnvFile } from '../src/config/config.js'
import { openDb, TOOL_QUERY_TIMEOUT_MS } from '../src/db/connect.js'
import { migrateToLatest } from '../src/db/migrator.js'

const USAGE = 'usage: npm run import -- [--allow-admins] [<file>]   (no file: read stdin)'

class UsageError extends Error {}

function parseArgs(argv: string[]): { file: string | undefined; allowAdmins: boolean } {
  const allowAdmins = argv.includes('--allow-admins')
  const rest = argv.filter((arg) => arg !== '--allow-admins')
  if (rest.length > 1 || rest.some((arg) => arg.startsWith('--'))) throw new UsageError(USAGE)
  return { file: rest[0], allowAdmins }
}

function describe({ count, admins }: ImportReport): string {
  if (!admins.length) return `imported ${count} account(s)`
  return `imported ${count} account(s), ${admins.length} of them admin(s): ${admins.join(', ')}`
}

async function main(argv: string[]): Promise<void> {
  const { file, allowAdmins } = parseArgs(argv)
  loadEnvFile()
  const config = loadConfig()
  const db = openDb(config.databaseUrl, { poolSize: 1, queryTimeoutMs: TOOL_QUERY_TIMEOUT_MS })
  try {
    await migrateToLatest(db.kysely)
    const input = file ? createReadStream(file) : process.stdin
    const report = await importAccounts(db, createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY }), {
      maxBcryptCost: config.bcryptCost,
      allowAdmins
    })
    console.log(describe(report))
  } finally {
    await db.kysely.destroy()
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    console.error(error.message)
    process.exit(2)
  }
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

/**
 * Grants or revokes the admin flag: the only way anyone becomes an admin.
 *   npm run admin -- grant <username>
 *   npm run admin -- revoke <username>
 * Uses the service's own settings (DATABASE_URL, ...). The change applies to live sessions at
 * once, since the flag is read from the database on every request.
 */
import { ConfigError, loadConfig } from '../src/config/config.js'
import { openDb } from '../src/db/connect.js'
import { migrateToLatest } from '../src/db/migrator.js'
import { UsersRepository } from '../src/db/users-repository.js'

const USAGE = 'usage: npm run admin -- grant|revoke <username>'

async function main(argv: string[]): Promise<number> {
  const [action, username, ...rest] = argv
  if ((action !== 'grant' && action !== 'revoke') || !username || rest.length) {
    console.error(USAGE)
    return 2
  }
  const db = openDb(loadConfig().databaseUrl, { poolSize: 1 })
  try {
    await migrateToLatest(db.kysely)
    const user = await new UsersRepository(db).setAdmin(username, action === 'grant', new Date())
    if (!user) {
      console.error(`No user named "${username}".`)
      return 1
    }
    console.log(action === 'grant' ? `${user.username} is now an admin.` : `${user.username} is no longer an admin.`)
    return 0
  } finally {
    await db.kysely.destroy()
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof ConfigError ? `Configuration error: ${error.message}` : `admin failed: ${error instanceof Error ? error.message : error}`)
    process.exit(1)
  }
)

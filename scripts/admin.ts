/**
 * Grants or revokes the admin flag: the only way anyone becomes an admin.
 *   npm run admin -- grant <username>
 *   npm run admin -- revoke <username>
 * Uses the service's own settings (DATABASE_URL, REDIS_URL, ...). The change applies to live sessions
 * at once: with Redis, it goes through the account cache as every API change does.
 */
import { ConfigError, loadConfig, loadEnvFile } from '../src/config/config.js'
import { openDb } from '../src/db/connect.js'
import { migrateToLatest } from '../src/db/migrator.js'
import { UsersRepository } from '../src/db/users-repository.js'
import { createRedisClient } from '../src/redis/client.js'
import { openSessionStore } from '../src/sessions/open-session-store.js'
import { setAdminFlag } from '../src/accounts/admin-flag.js'

const USAGE = 'usage: npm run admin -- grant|revoke <username>'

async function main(argv: string[]): Promise<number> {
  const [action, username, ...rest] = argv
  if ((action !== 'grant' && action !== 'revoke') || !username || rest.length) {
    console.error(USAGE)
    return 2
  }
  loadEnvFile()
  const config = loadConfig()
  const db = openDb(config.databaseUrl, { poolSize: 1 })
  // With Redis, live sessions read accounts through its cache: the change must go through it too.
  const redis = config.redisUrl ? createRedisClient(config.redisUrl, () => {}) : undefined
  try {
    await migrateToLatest(db.kysely)
    await redis?.connect()
    const cache = openSessionStore({
      db,
      redis,
      redisKeyPrefix: config.redisKeyPrefix,
      onCacheError: (error) =>
        console.error(
          `warning: the account cache could not be told (${error}); it refills from the database within a minute`
        )
    })
    const user = await setAdminFlag(new UsersRepository(db), cache, username, action === 'grant')
    if (!user) {
      console.error(`No user named "${username}".`)
      return 1
    }
    console.log(action === 'grant' ? `${user.username} is now an admin.` : `${user.username} is no longer an admin.`)
    return 0
  } finally {
    if (redis?.isOpen) await redis.close()
    await db.kysely.destroy()
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(
      error instanceof ConfigError
        ? `Configuration error: ${error.message}`
        : `admin failed: ${error instanceof Error ? error.message : error}`
    )
    process.exit(1)
  }
)

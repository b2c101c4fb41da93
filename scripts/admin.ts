/**
 * Grants or revokes the admin flag (the only way anyone becomes an admin), and suspends accounts.
 *   npm run admin -- grant <username>
 *   npm run admin -- revoke <username>
 *   npm run admin -- suspend <username> [reason]
 *   npm run admin -- unsuspend <username>
 * Uses the service's own settings (DATABASE_URL, REDIS_URL or REDIS_CLUSTER_NODES, ...). The change applies to live sessions
 * at once: with Redis, it goes through the account cache as every API change does. A service that
 * caches accounts in Redis records its key prefix in the database, so this refuses to run without
 * REDIS_URL there (the cache would keep the old flag for up to 300 s), and with REDIS_URL it goes
 * through the cache under every prefix recorded, as well as its own.
 */
import { setAdminFlag } from '../src/accounts/admin-flag.js'
import { suspendAccount, unsuspendAccount } from '../src/accounts/operator-suspension.js'
import { type AuditAction, AuditTrail, operatorEvent } from '../src/audit/audit-trail.js'
import { ConfigError, loadConfig, loadEnvFile } from '../src/config/config.js'
import { AuditEventsRepository } from '../src/db/audit-events-repository.js'
import { openDb, TOOL_QUERY_TIMEOUT_MS } from '../src/db/connect.js'
import { migrateToLatest } from '../src/db/migrator.js'
import { RedisAccountCachesRepository } from '../src/db/redis-account-caches-repository.js'
import { UsersRepository } from '../src/db/users-repository.js'
import { callRedis, openRedis } from '../src/redis/connection.js'
import { openSessionStore } from '../src/sessions/open-session-store.js'
import { ACCOUNT_TTL_SECONDS } from '../src/sessions/redis-session-store.js'
import type { AccountCache } from '../src/sessions/session-store.js'
import type { Account } from '../src/accounts/account.js'
import type { Db } from '../src/db/schema.js'

const USAGE = 'usage: npm run admin -- grant|revoke|unsuspend <username>, or suspend <username> [reason]'

class Refusal extends Error {}

/** One change through several caches: each drops its copy and blocks refills around the change. */
function throughEvery(caches: AccountCache[]): AccountCache {
  return {
    write<T>(userId: string, change: () => Promise<T>): Promise<T> {
      return caches.reduce((inner, cache) => () => cache.write(userId, inner), change)()
    }
  }
}

/** The audit event of what was done: a grant or revoke only if the flag moved, an unsuspend only if there was a suspension. */
function auditActionOf(
  action: 'grant' | 'revoke' | 'suspend' | 'unsuspend',
  before: Account | undefined,
  after: Account
): AuditAction | undefined {
  if (action === 'suspend') return 'account-suspended'
  if (action === 'unsuspend') return before?.suspended ? 'account-unsuspended' : undefined
  if (before?.admin === after.admin) return undefined
  return after.admin ? 'admin-granted' : 'admin-revoked'
}

/** Writes the event before the process exits; a failure is a warning, never undoes the change. */
async function recordAudit(db: Db, action: AuditAction | undefined, account: Account): Promise<void> {
  if (action === undefined) return
  const trail = new AuditTrail(new AuditEventsRepository(db), {
    onWriteFailure: (error) =>
      console.error(`warning: the change was made, but the audit trail could not record it (${error})`)
  })
  trail.record(operatorEvent(action, account))
  await trail.settled()
}

async function main(argv: string[]): Promise<number> {
  const [action, username, ...rest] = argv
  const known = action === 'grant' || action === 'revoke' || action === 'suspend' || action === 'unsuspend'
  if (!known || !username || (rest.length && action !== 'suspend')) {
    console.error(USAGE)
    return 2
  }
  loadEnvFile()
  const config = loadConfig()
  const db = openDb(config.databaseUrl, { poolSize: 1, queryTimeoutMs: TOOL_QUERY_TIMEOUT_MS })
  // With Redis, live sessions read accounts through its cache: the change must go through it too.
  const redis = config.redis ? openRedis(config.redis, () => {}) : undefined
  try {
    await migrateToLatest(db.kysely)
    const cachedUnder = await new RedisAccountCachesRepository(db).prefixes()
    if (cachedUnder.length && !redis) {
      throw new Refusal(
        `the service caches accounts in Redis (REDIS_KEY_PREFIX ${cachedUnder.map((p) => JSON.stringify(p)).join(', ')}): run this with its REDIS_URL (or REDIS_CLUSTER_NODES), or the change would stay unseen for up to ${ACCOUNT_TTL_SECONDS} s. Nothing was changed. (If no instance uses Redis any more, starting one without REDIS_URL clears this.)`
      )
    }
    if (redis) await callRedis('Redis', () => redis.connect())
    const prefixes = [...new Set([config.redisKeyPrefix, ...cachedUnder])]
    const onCacheError = (error: unknown) =>
      console.error(
        `warning: the account cache could not be told (${error}); it refills from the database within a minute`
      )
    const stores = redis
      ? prefixes.map((redisKeyPrefix) => openSessionStore({ db, redis, redisKeyPrefix, onCacheError }))
      : [openSessionStore({ db, redisKeyPrefix: config.redisKeyPrefix, onCacheError })]
    const cache = throughEvery(stores)
    const users = new UsersRepository(db)
    // What the account was before, so the audit trail records only a change that happened.
    const before = await users.findByUsername(username)
    const endAllSessions = async (userId: string) => {
      for (const store of stores) await store.revokeAllForUser(userId)
    }
    const user =
      action === 'suspend'
        ? await suspendAccount(users, cache, endAllSessions, username, rest.join(' ') || null)
        : action === 'unsuspend'
          ? await unsuspendAccount(users, cache, username)
          : await setAdminFlag(users, cache, username, action === 'grant')
    if (!user) {
      console.error(`No user named "${username}".`)
      return 1
    }
    await recordAudit(db, auditActionOf(action, before, user), user)
    const done = {
      grant: 'is now an admin',
      revoke: 'is no longer an admin',
      suspend: 'is suspended; all its sessions have ended',
      unsuspend: 'is no longer suspended'
    }
    console.log(`${user.username} ${done[action]}.`)
    return 0
  } finally {
    await redis?.close()
    await db.kysely.destroy()
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(
      error instanceof ConfigError
        ? `Configuration error: ${error.message}`
        : error instanceof Refusal
          ? `admin refused: ${error.message}`
          : `admin failed: ${error instanceof Error ? error.message : error}`
    )
    process.exit(1)
  }
)

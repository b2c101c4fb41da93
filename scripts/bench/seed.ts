/**
 * Seeding through the service's own code: `openDb` + migrations, the users repository (bulk
 * `insertExact`, one precomputed bcrypt hash for every row), and sessions made the way the service
 * makes them (`newToken`/`hashToken`): through the Redis session store's `create` on Redis, rows of the
 * `sessions` table otherwise. Every seeded account gets one live session; its token is kept here.
 */
import { randomUUID } from 'node:crypto'
import { createClient } from 'redis'
import { openDb } from '../../src/db/connect.js'
import { migrateToLatest } from '../../src/db/migrator.js'
import type { Db } from '../../src/db/schema.js'
import type { UserRecord } from '../../src/accounts/account.js'
import { UsersRepository } from '../../src/db/users-repository.js'
import type { RedisClient } from '../../src/redis/client.js'
import { openSessionStore } from '../../src/sessions/open-session-store.js'
import { hashToken, newToken } from '../../src/sessions/tokens.js'

export interface SeededUser {
  username: string
  token: string
}

export interface SeedTarget {
  databaseUrl: string
  redisUrl?: string
  redisKeyPrefix: string
  sessionTtlSeconds: number
}

const BATCH = 1000

export function seedUsername(runId: string, index: number): string {
  return `s${runId}_${index}`
}

/** Adds accounts `from`..`to-1` (with one session each) and returns them. */
export async function seedAccounts(
  target: SeedTarget,
  passwordHash: string,
  runId: string,
  from: number,
  to: number
): Promise<SeededUser[]> {
  const db = openDb(target.databaseUrl, { poolSize: 4 })
  let redis: RedisClient | undefined
  try {
    await migrateToLatest(db.kysely)
    if (target.redisUrl) {
      redis = createClient({ url: target.redisUrl }) as RedisClient
      await redis.connect()
    }
    const seeded: SeededUser[] = []
    const expiresAt = new Date(Date.now() + target.sessionTtlSeconds * 1000)
    for (let start = from; start < to; start += BATCH) {
      const now = new Date()
      const users: UserRecord[] = []
      for (let i = start; i < Math.min(to, start + BATCH); i++) {
        users.push({
          id: randomUUID(),
          username: seedUsername(runId, i),
          passwordHash,
          admin: false,
          data: { email: `user${i}@example.com`, plan: 'free', tags: ['bench'], n: i },
          createdAt: now,
          updatedAt: now
        })
      }
      const sessions = users.map((user) => ({ user, token: newToken() }))
      await db.kysely.transaction().execute(async (trx) => {
        const scoped: Db = { ...db, kysely: trx }
        await new UsersRepository(scoped).insertExact(users)
        if (!redis) {
          await trx
            .insertInto('sessions')
            .values(
              sessions.map(({ user, token }) => ({
                token_hash: hashToken(token),
                user_id: user.id,
                expires_at: db.time(expiresAt),
                created_at: db.time(now)
              }))
            )
            .execute()
        }
      })
      if (redis) {
        const store = openSessionStore({ db, redis, redisKeyPrefix: target.redisKeyPrefix, onCacheError: () => {} })
        await Promise.all(sessions.map(({ user, token }) => store.create(hashToken(token), user.id, expiresAt)))
      }
      for (const { user, token } of sessions) seeded.push({ username: user.username, token })
    }
    return seeded
  } finally {
    await db.kysely.destroy()
    if (redis?.isOpen) await redis.close()
  }
}

/** Counts rows, to report what the scenarios ran against. */
export async function countRows(databaseUrl: string): Promise<{ users: number; sessions: number }> {
  const db = openDb(databaseUrl, { poolSize: 1 })
  try {
    const count = async (table: 'users' | 'sessions') =>
      Number(
        (
          await db.kysely
            .selectFrom(table)
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n
      )
    return { users: await count('users'), sessions: await count('sessions') }
  } finally {
    await db.kysely.destroy()
  }
}

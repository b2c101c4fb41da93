/**
 * Seeding through the service's own code: `openDb` + migrations, the users repository (bulk
 * `insertExact`, one precomputed bcrypt hash for every row), and sessions made the way the service
 * makes them (`newToken`, `newSessionId`): through the Redis session store's `create` on Redis (or the cluster), rows of the
 * `sessions` table otherwise. Every seeded account gets one live session; its token is kept here.
 */
import { randomUUID } from 'node:crypto'
import { openDb } from '../../src/db/connect.js'
import { migrateToLatest } from '../../src/db/migrator.js'
import type { Db } from '../../src/db/schema.js'
import type { UserRecord } from '../../src/accounts/account.js'
import { UsersRepository } from '../../src/db/users-repository.js'
import type { RedisTarget } from '../../src/config/config.js'
import { openRedis, type RedisConnection } from '../../src/redis/connection.js'
import { openSessionStore } from '../../src/sessions/open-session-store.js'
import type { NewSession } from '../../src/sessions/session.js'
import { newSessionId, newToken } from '../../src/sessions/tokens.js'

export interface SeededUser {
  /** The row's id: the write limit updates rows by it, as the service does. */
  id: string
  username: string
  token: string
}

export interface SeedTarget {
  databaseUrl: string
  redis?: RedisTarget
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
  let redis: RedisConnection | undefined
  try {
    await migrateToLatest(db.kysely)
    if (target.redis) {
      redis = openRedis(target.redis, () => {})
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
          version: 1,
          suspended: null,
          admin: false,
          data: { email: `user${i}@example.com`, plan: 'free', tags: ['bench'], n: i },
          createdAt: now,
          updatedAt: now
        })
      }
      const sessions = users.map((user) => {
        const { token, ref } = newToken(user.id)
        const session: NewSession = {
          token: ref,
          userId: user.id,
          id: newSessionId(),
          createdAt: now,
          expiresAt,
          userAgent: 'bench',
          ip: '127.0.0.1'
        }
        return { user, token, session }
      })
      await db.kysely.transaction().execute(async (trx) => {
        const scoped: Db = { ...db, kysely: trx }
        await new UsersRepository(scoped).insertExact(users)
        if (!redis) {
          await trx
            .insertInto('sessions')
            .values(
              sessions.map(({ session }) => ({
                token_hash: session.token.hash,
                public_id: session.id,
                user_id: session.userId,
                expires_at: db.time(expiresAt),
                created_at: db.time(now),
                last_used_at: db.time(now),
                user_agent: session.userAgent,
                ip: session.ip
              }))
            )
            .execute()
        }
      })
      if (redis) {
        const store = openSessionStore({ db, redis, redisKeyPrefix: target.redisKeyPrefix, onCacheError: () => {} })
        await Promise.all(sessions.map(({ session }) => store.create(session)))
      }
      for (const { user, token } of sessions) seeded.push({ id: user.id, username: user.username, token })
    }
    return seeded
  } finally {
    await db.kysely.destroy()
    await redis?.close()
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

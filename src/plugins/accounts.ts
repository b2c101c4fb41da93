/**
 * Opens the stores (database, session store, password hashing pool), builds the account use cases
 * on them, and decorates the instance with them. Everything opened here is closed on `app.close()`.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Accounts } from '../accounts/accounts.js'
import type { Config } from '../config/config.js'
import { openDb } from '../db/connect.js'
import { migrateToLatest } from '../db/migrator.js'
import type { Db } from '../db/schema.js'
import { SessionsRepository } from '../db/sessions-repository.js'
import { UsersRepository } from '../db/users-repository.js'
import { PasswordHasher } from '../passwords/password-hasher.js'
import { createRedisClient, type RedisClient } from '../redis/client.js'
import { RedisSessionStore } from '../sessions/redis-session-store.js'
import type { SessionStore } from '../sessions/session-store.js'
import { Sessions } from '../sessions/sessions.js'
import { SqlSessionStore } from '../sessions/sql-session-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    accounts: Accounts
    db: Db
    sessionStore: SessionStore
    passwordHasher: PasswordHasher
  }
}

/** Waits briefly for Redis at start-up; if it is down we still start, answer 503, and recover. */
async function connectRedis(app: FastifyInstance, redis: RedisClient): Promise<void> {
  const connected = redis.connect().then(
    () => true,
    (error: unknown) => {
      app.log.error({ err: error }, 'Redis connection failed')
      return false
    }
  )
  const timeout = new Promise<false>((resolve) => setTimeout(resolve, 2000, false).unref())
  if (!(await Promise.race([connected, timeout]))) app.log.warn('Redis is not reachable yet; session routes answer 503 until it is')
}

async function closeRedis(redis: RedisClient): Promise<void> {
  if (redis.isReady) await redis.close()
  else if (redis.isOpen) redis.destroy()
}

export default fp(
  async function accountsPlugin(app: FastifyInstance, { config }: { config: Config }) {
    const db = openDb(config.databaseUrl, { onIdleError: (error) => app.log.warn({ err: error }, 'database connection error') })
    try {
      await migrateToLatest(db.kysely)
    } catch (error) {
      await db.kysely.destroy()
      throw error
    }
    app.addHook('onClose', () => db.kysely.destroy())

    let store: SessionStore
    if (config.redisUrl) {
      const redis = createRedisClient(config.redisUrl, (error) => app.log.warn({ err: error }, 'Redis error'))
      app.addHook('onClose', () => closeRedis(redis))
      await connectRedis(app, redis)
      store = new RedisSessionStore(redis, config.redisKeyPrefix)
    } else {
      store = new SqlSessionStore(new SessionsRepository(db))
    }

    const passwordHasher = new PasswordHasher(config.bcryptCost, config.hashThreads)
    app.addHook('onClose', () => passwordHasher.close())

    const sessions = new Sessions(store, config.sessionTtlSeconds)
    app.decorate('db', db)
    app.decorate('sessionStore', store)
    app.decorate('passwordHasher', passwordHasher)
    app.decorate('accounts', new Accounts(new UsersRepository(db), sessions, passwordHasher))
  },
  { name: 'accounts' }
)

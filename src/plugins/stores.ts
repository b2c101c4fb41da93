/**
 * Opens the stores: the database (migrated to this release's schema) and, when REDIS_URL or
 * REDIS_CLUSTER_NODES is set, Redis. Both are decorated onto the instance and closed on `app.close()`. The database records
 * whether accounts are cached in Redis (redis-account-caches-repository.ts).
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config/config.js'
import { TOOL_QUERY_TIMEOUT_MS, openDb } from '../db/connect.js'
import { migrateToLatest } from '../db/migrator.js'
import { RedisAccountCachesRepository } from '../db/redis-account-caches-repository.js'
import type { Db } from '../db/schema.js'
import { openRedis, type RedisConnection } from '../redis/connection.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Db
    /** Null on the embedded default, where sessions and counters live elsewhere. */
    redis: RedisConnection | null
  }
}

/** Waits briefly for Redis at start-up; if it is down we still start, answer 503, and recover. */
async function connectRedis(app: FastifyInstance, redis: RedisConnection): Promise<void> {
  const connected = redis.connect().then(
    () => true,
    (error: unknown) => {
      app.log.error({ err: error }, 'Redis connection failed')
      return false
    }
  )
  const timeout = new Promise<false>((resolve) => setTimeout(resolve, 2000, false).unref())
  if (!(await Promise.race([connected, timeout])))
    app.log.warn('Redis is not reachable yet; session routes answer 503 until it is')
}

/**
 * MySQL and PostgreSQL migrate on a connection of their own, without the requests' one-second
 * query deadline (DDL on a busy server can take longer). SQLite has no such deadline, and an
 * in-memory database exists only on the connection that made it: it migrates on `db` itself.
 */
async function migrate(databaseUrl: string, db: Db): Promise<void> {
  if (databaseUrl.startsWith('sqlite:')) {
    await migrateToLatest(db.kysely)
    return
  }
  const migrations = openDb(databaseUrl, { poolSize: 1, queryTimeoutMs: TOOL_QUERY_TIMEOUT_MS })
  try {
    await migrateToLatest(migrations.kysely)
  } finally {
    await migrations.kysely.destroy()
  }
}

export default fp(
  async function storesPlugin(app: FastifyInstance, { config }: { config: Config }) {
    const db = openDb(config.databaseUrl, {
      poolSize: config.databasePool.size,
      queueLimit: config.databasePool.queueLimit,
      onIdleError: (error) => app.log.warn({ err: error }, 'database connection error')
    })
    try {
      await migrate(config.databaseUrl, db)
      // Tells `npm run admin` whether accounts are cached in Redis, and under which prefix.
      const caches = new RedisAccountCachesRepository(db)
      if (config.redis) await caches.record(config.redisKeyPrefix, new Date())
      else await caches.forgetAll()
    } catch (error) {
      await db.kysely.destroy()
      throw error
    }
    app.addHook('onClose', () => db.kysely.destroy())
    app.decorate('db', db)

    let redis: RedisConnection | null = null
    if (config.redis) {
      // A cluster names the node that failed, so an operator knows which shard to look at.
      redis = openRedis(config.redis, (error, node) => app.log.warn({ err: error, node }, 'Redis error'))
      const connection = redis
      app.addHook('onClose', () => connection.close())
      await connectRedis(app, connection)
    }
    app.decorate('redis', redis)
  },
  { name: 'stores' }
)

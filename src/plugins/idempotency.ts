/**
 * Idempotent sign-ups: keeps Idempotency-Key records in the session store's backend (Redis or the
 * cluster when configured, the database otherwise), and decorates the use case onto the instance.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config/config.js'
import { UsersRepository } from '../db/users-repository.js'
import { IdempotentSignUps, RUNNING_MS } from '../idempotency/idempotent-sign-ups.js'
import { openIdempotencyStore } from '../idempotency/open-idempotency-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    signUps: IdempotentSignUps
  }
}

/** Beyond the hash queue's deadline, room for the database's two 1 s deadlines and the hash itself. */
const BEYOND_HASH_QUEUE_MS = 30_000

export default fp(
  async function idempotencyPlugin(app: FastifyInstance, { config }: { config: Config }) {
    const store = openIdempotencyStore({
      db: app.db,
      redis: app.redis,
      redisKeyPrefix: config.redisKeyPrefix,
      onSweepError: (error) => app.log.warn({ err: error }, 'idempotency keys: sweeping expired rows failed')
    })
    app.decorate(
      'signUps',
      new IdempotentSignUps(store, app.passwordHasher, new UsersRepository(app.db), {
        runningMs: Math.max(RUNNING_MS, config.hashQueueTimeoutMs + BEYOND_HASH_QUEUE_MS),
        onStoreError: (error, step) =>
          app.log.warn({ err: error, step }, 'idempotency keys: the store failed after the sign-up ran')
      })
    )
  },
  { name: 'idempotency', dependencies: ['stores', 'accounts'] }
)

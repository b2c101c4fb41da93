/**
 * Builds the account use cases on the stores: the session store (Redis, or the database), the
 * password hashing pool, and `Accounts` itself, decorated onto the instance.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Accounts } from '../accounts/accounts.js'
import type { Config } from '../config/config.js'
import { SessionsRepository } from '../db/sessions-repository.js'
import { UsersRepository } from '../db/users-repository.js'
import { PasswordHasher } from '../passwords/password-hasher.js'
import { RedisSessionStore } from '../sessions/redis-session-store.js'
import type { SessionStore } from '../sessions/session-store.js'
import { Sessions } from '../sessions/sessions.js'
import { SqlSessionStore } from '../sessions/sql-session-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    accounts: Accounts
    sessionStore: SessionStore
    passwordHasher: PasswordHasher
  }
}

export default fp(
  async function accountsPlugin(app: FastifyInstance, { config }: { config: Config }) {
    const store: SessionStore = app.redis
      ? new RedisSessionStore(app.redis, config.redisKeyPrefix)
      : new SqlSessionStore(new SessionsRepository(app.db))
    const passwordHasher = new PasswordHasher(config.bcryptCost, config.hashThreads)
    app.addHook('onClose', () => passwordHasher.close())
    await passwordHasher.start()

    const sessions = new Sessions(store, config.sessionTtlSeconds)
    app.decorate('sessionStore', store)
    app.decorate('passwordHasher', passwordHasher)
    app.decorate('accounts', new Accounts(new UsersRepository(app.db), sessions, passwordHasher))
  },
  { name: 'accounts', dependencies: ['stores'] }
)

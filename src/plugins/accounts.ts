/**
 * Builds the account use cases on the stores: the session store (Redis, or the database), the
 * password hashing pool, and `Accounts` itself, decorated onto the instance.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { AccountDirectory } from '../accounts/account-directory.js'
import { Accounts } from '../accounts/accounts.js'
import type { Config } from '../config/config.js'
import { UsersRepository } from '../db/users-repository.js'
import { PasswordHasher } from '../passwords/password-hasher.js'
import { openSessionStore } from '../sessions/open-session-store.js'
import type { SessionStore } from '../sessions/session-store.js'
import { Sessions } from '../sessions/sessions.js'

declare module 'fastify' {
  interface FastifyInstance {
    accounts: Accounts
    directory: AccountDirectory
    sessionStore: SessionStore
    passwordHasher: PasswordHasher
  }
}

export default fp(
  async function accountsPlugin(app: FastifyInstance, { config }: { config: Config }) {
    const store = openSessionStore({
      db: app.db,
      redis: app.redis ?? undefined,
      redisKeyPrefix: config.redisKeyPrefix,
      onCacheError: (error) =>
        app.log.warn({ err: error }, 'account cache: could not close a write (readers use the database meanwhile)')
    })
    const passwordHasher = new PasswordHasher(config.bcryptCost, config.hashThreads, {
      perClient: config.hashPerClient,
      queueTimeoutMs: config.hashQueueTimeoutMs
    })
    app.addHook('onClose', () => passwordHasher.close())
    await passwordHasher.start()

    const sessions = new Sessions(store, config.sessionTtlSeconds)
    const users = new UsersRepository(app.db)
    app.decorate('sessionStore', store)
    app.decorate('passwordHasher', passwordHasher)
    app.decorate(
      'accounts',
      new Accounts(users, sessions, passwordHasher, store, {
        showSuspensionReason: config.showSuspensionReason
      })
    )
    app.decorate('directory', new AccountDirectory(users))
  },
  { name: 'accounts', dependencies: ['stores'] }
)

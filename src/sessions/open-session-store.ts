/** The session store the settings ask for: Redis or Redis Cluster (with its account cache) when there is one, else the database. */
import { SessionsRepository } from '../db/sessions-repository.js'
import type { Db } from '../db/schema.js'
import { UsersRepository } from '../db/users-repository.js'
import type { RedisConnection } from '../redis/connection.js'
import { RedisSessionStore } from './redis-session-store.js'
import type { SessionStore } from './session-store.js'
import { SqlSessionStore } from './sql-session-store.js'

export interface SessionStoreOptions {
  db: Db
  redis?: RedisConnection
  redisKeyPrefix: string
  onCacheError(error: unknown): void
}

export function openSessionStore({ db, redis, redisKeyPrefix, onCacheError }: SessionStoreOptions): SessionStore {
  if (!redis) return new SqlSessionStore(new SessionsRepository(db))
  const users = new UsersRepository(db)
  return new RedisSessionStore(redis, redisKeyPrefix, { loadAccount: (id) => users.findAccountById(id), onCacheError })
}

/** The Idempotency-Key store that goes with the session store: Redis or the cluster when there is one, else the database. */
import { IdempotencyKeysRepository } from '../db/idempotency-keys-repository.js'
import type { Db } from '../db/schema.js'
import type { RedisConnection } from '../redis/connection.js'
import type { IdempotencyStore } from './idempotency-store.js'
import { RedisIdempotencyStore } from './redis-idempotency-store.js'
import { SqlIdempotencyStore, type SqlStoreOptions } from './sql-idempotency-store.js'

export interface IdempotencyStoreOptions extends SqlStoreOptions {
  db: Db
  redis: RedisConnection | null
  redisKeyPrefix: string
}

export function openIdempotencyStore({ db, redis, redisKeyPrefix, ...sql }: IdempotencyStoreOptions): IdempotencyStore {
  if (redis) return new RedisIdempotencyStore(redis, redisKeyPrefix)
  return new SqlIdempotencyStore(new IdempotencyKeysRepository(db), sql)
}

/**
 * Every query on `redis_account_caches`: the Redis key prefixes under which a service caches
 * accounts. The database is the one thing every process that changes an account shares, so it is
 * where a service says "accounts are cached in Redis" for `npm run admin`, which cannot tell from
 * DATABASE_URL alone and would otherwise change a row behind the cache's back (a stale copy for up
 * to 300 s: an admin keeps rights the command said were revoked).
 */
import type { Db } from './schema.js'

export class RedisAccountCachesRepository {
  constructor(private readonly db: Db) {}

  /** A service started with Redis under `keyPrefix`. Idempotent: instances and workers all call it. */
  async record(keyPrefix: string, now: Date): Promise<void> {
    const known = await this.db.kysely
      .selectFrom('redis_account_caches')
      .select('key_prefix')
      .where('key_prefix', '=', keyPrefix)
      .executeTakeFirst()
    if (known) return
    // Two processes starting together may both insert: a duplicate row changes nothing (see prefixes()).
    await this.db.kysely
      .insertInto('redis_account_caches')
      .values({ key_prefix: keyPrefix, recorded_at: this.db.time(now) })
      .execute()
  }

  /**
   * A service started without Redis: sessions now live in the database, so no instance of this
   * deployment reads a Redis cache any more (sessions and caches cannot be split between the two).
   */
  async forgetAll(): Promise<void> {
    await this.db.kysely.deleteFrom('redis_account_caches').execute()
  }

  /** Every prefix recorded, once each. */
  async prefixes(): Promise<string[]> {
    const rows = await this.db.kysely.selectFrom('redis_account_caches').select('key_prefix').distinct().execute()
    return rows.map((row) => row.key_prefix).sort()
  }
}

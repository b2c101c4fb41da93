/**
 * Sessions in Redis:
 *   <prefix>session:<tokenHash>     -> user id, with EX = the session lifetime
 *   <prefix>user-sessions:<userId>  -> sorted set of that user's token hashes, scored by expiry (ms);
 *                                      pruned of expired members on every write, so it cleans itself.
 * The index lets one request revoke every session of a deleted user.
 */
import { callRedis, type RedisClient } from '../redis/client.js'
import type { SessionStore } from './session-store.js'

/** Deletes every session in a user's index, and the index, atomically. */
const REVOKE_ALL = `
local hashes = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, hash in ipairs(hashes) do redis.call('DEL', ARGV[1] .. hash) end
redis.call('DEL', KEYS[1])
return #hashes`

export class RedisSessionStore implements SessionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string
  ) {}

  private sessionKey(tokenHash: string): string {
    return `${this.prefix}session:${tokenHash}`
  }

  private indexKey(userId: string): string {
    return `${this.prefix}user-sessions:${userId}`
  }


  create(tokenHash: string, userId: string, expiresAt: Date): Promise<void> {
    const expiresAtMs = expiresAt.getTime()
    const ttlSeconds = Math.max(1, Math.round((expiresAtMs - Date.now()) / 1000))
    const index = this.indexKey(userId)
    return callRedis('session store', async () => {
      await this.redis
        .multi()
        .set(this.sessionKey(tokenHash), userId, { expiration: { type: 'EX', value: ttlSeconds } })
        .zAdd(index, { score: expiresAtMs, value: tokenHash })
        .zRemRangeByScore(index, '-inf', Date.now())
        // The index lives as long as its longest session: set an expiry if it has none, and only
        // ever push it later (a shorter SESSION_TTL_SECONDS must not orphan older sessions).
        .pExpireAt(index, expiresAtMs, 'NX')
        .pExpireAt(index, expiresAtMs, 'GT')
        .exec()
    })
  }

  findUserId(tokenHash: string): Promise<string | undefined> {
    return callRedis('session store', async () => (await this.redis.get(this.sessionKey(tokenHash))) ?? undefined)
  }

  revoke(tokenHash: string): Promise<void> {
    return callRedis('session store', async () => {
      const userId = await this.redis.getDel(this.sessionKey(tokenHash))
      if (userId) await this.redis.zRem(this.indexKey(userId), tokenHash)
    })
  }

  revokeAllForUser(userId: string): Promise<void> {
    return callRedis('session store', async () => {
      await this.redis.eval(REVOKE_ALL, { keys: [this.indexKey(userId)], arguments: [this.sessionKey('')] })
    })
  }

  /** Counting would mean scanning every key: Redis cannot tell cheaply. */
  async countActive(): Promise<number | undefined> {
    return undefined
  }

  ping(): Promise<void> {
    return callRedis('session store', async () => {
      await this.redis.ping()
    })
  }

  async close(): Promise<void> {
    if (this.redis.isOpen) await this.redis.close()
  }
}

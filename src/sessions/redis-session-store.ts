/**
 * Sessions in Redis, and a cache of the accounts behind them:
 *   <prefix>session:<tokenHash>          -> user id, with EX = the session lifetime
 *   <prefix>user-sessions:<userId>       -> sorted set of that user's token hashes, scored by expiry (ms);
 *                                           pruned of expired members on every write, so it cleans itself.
 *   <prefix>account:<userId>             -> the account as JSON (no password hash), EX ACCOUNT_TTL_SECONDS
 *   <prefix>account-version:<userId>     -> bumped before and after every change to the account's row
 *   <prefix>account-writes:<userId>      -> changes in flight; while it exists nobody fills the cache
 * The index lets one request revoke every session of a deleted user.
 *
 * Reading: one script finds the session and, usually, its cached account: one round trip. On a miss
 * it also returns the account's version; the account is read from the database and cached only if
 * the version is unchanged and no change is in flight, so a read that raced a change never caches
 * the old row. Changing: the cached copy is dropped and the version bumped before the database
 * write and again after it. If Redis fails after the commit, the in-flight marker still blocks
 * filling until it expires, so readers go to the database, which has the new row.
 *
 * The scripts build the account keys from the user id they read, so this needs a single Redis
 * (not Redis Cluster), as the per-user index already did.
 */
import type { Account } from '../accounts/account.js'
import { callRedis, type RedisClient } from '../redis/client.js'
import { LuaScript } from '../redis/lua-script.js'
import type { SessionStore } from './session-store.js'

/** How long a cached account lives after it was cached (reads do not extend it): bounds Redis memory, not freshness. */
export const ACCOUNT_TTL_SECONDS = 300
/** Longer than any read can take (database deadlines are about 2 s), so versions never repeat under a reader. */
const VERSION_TTL_SECONDS = 86_400
/** Longer than any change can take; only matters when Redis failed right after a commit. */
const WRITES_TTL_SECONDS = 60

/** Deletes every session in a user's index, and the index, atomically. */
const REVOKE_ALL = new LuaScript(`
local hashes = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, hash in ipairs(hashes) do redis.call('DEL', ARGV[1] .. hash) end
redis.call('DEL', KEYS[1])
return #hashes`)

/** KEYS: session. ARGV: account key prefix, version key prefix. */
const LOOKUP = new LuaScript(`
local userId = redis.call('GET', KEYS[1])
if not userId then return false end
local account = redis.call('GET', ARGV[1] .. userId)
if account then return {userId, account} end
return {userId, '', redis.call('GET', ARGV[2] .. userId) or '0'}`)

/** KEYS: account, version, writes. ARGV: account JSON, the version seen before reading it, TTL. */
const FILL = new LuaScript(`
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1`)

/** KEYS: account, version, writes. ARGV: version TTL, writes TTL. */
const BEGIN_WRITE = new LuaScript(`
redis.call('DEL', KEYS[1])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[2])
return 1`)

/** KEYS: account, version, writes. ARGV: version TTL. */
const END_WRITE = new LuaScript(`
redis.call('DEL', KEYS[1])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
if redis.call('DECR', KEYS[3]) <= 0 then redis.call('DEL', KEYS[3]) end
return 1`)

function parseAccount(json: string): Account {
  const account = JSON.parse(json) as Account & { createdAt: string; updatedAt: string }
  return { ...account, createdAt: new Date(account.createdAt), updatedAt: new Date(account.updatedAt) }
}

export interface RedisSessionStoreOptions {
  /** Reads an account from the database on a cache miss. */
  loadAccount(userId: string): Promise<Account | undefined>
  /** Told when a change was committed but Redis could not be told afterwards (harmless, see above). */
  onCacheError(error: unknown): void
}

export class RedisSessionStore implements SessionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly options: RedisSessionStoreOptions
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

  async findAccount(tokenHash: string): Promise<Account | undefined> {
    const found = (await callRedis('session store', () =>
      LOOKUP.run(this.redis, [this.sessionKey(tokenHash)], [`${this.prefix}account:`, `${this.prefix}account-version:`])
    )) as [string, string, string?] | null
    if (found === null) return undefined
    const [userId, cached, versionSeen] = found
    if (cached) return parseAccount(cached)
    // A session can briefly outlive its deleted user; it then leads nowhere.
    const account = await this.options.loadAccount(userId)
    if (account && versionSeen !== undefined) {
      const keys = this.accountKeys(userId)
      // Best effort, off the request's path: a fill that fails only means the next read misses too.
      callRedis('account cache', () =>
        FILL.run(this.redis, keys, [JSON.stringify(account), versionSeen, String(ACCOUNT_TTL_SECONDS)])
      ).catch(() => {})
    }
    return account
  }

  async write<T>(userId: string, change: () => Promise<T>): Promise<T> {
    const keys = this.accountKeys(userId)
    await callRedis('session store', () =>
      BEGIN_WRITE.run(this.redis, keys, [String(VERSION_TTL_SECONDS), String(WRITES_TTL_SECONDS)])
    )
    try {
      return await change()
    } finally {
      // The change may be committed: its outcome stands. Readers cannot see the old row either way.
      await callRedis('account cache', () => END_WRITE.run(this.redis, keys, [String(VERSION_TTL_SECONDS)])).catch(
        (error: unknown) => this.options.onCacheError(error)
      )
    }
  }

  private accountKeys(userId: string): string[] {
    return [
      `${this.prefix}account:${userId}`,
      `${this.prefix}account-version:${userId}`,
      `${this.prefix}account-writes:${userId}`
    ]
  }

  revoke(tokenHash: string): Promise<void> {
    return callRedis('session store', async () => {
      const userId = await this.redis.getDel(this.sessionKey(tokenHash))
      if (userId) await this.redis.zRem(this.indexKey(userId), tokenHash)
    })
  }

  revokeAllForUser(userId: string): Promise<void> {
    return callRedis('session store', async () => {
      await REVOKE_ALL.run(this.redis, [this.indexKey(userId)], [this.sessionKey('')])
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
}

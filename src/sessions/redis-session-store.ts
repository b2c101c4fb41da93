/**
 * Sessions in Redis (one server or a Redis Cluster), and a cache of the accounts behind them. The
 * keys are laid out in redis-keys.ts: every key of one account shares its hash slot, and every
 * operation here is one script in that slot, so it is atomic and costs one round trip to one shard.
 *
 * Reading: one script finds the session and, usually, its cached account. On a miss it also
 * returns the account's version counter; the account is read from the database and cached only if
 * the counter is unchanged (no change began or ended meanwhile), so a read that raced a change never
 * caches the old row.
 *
 * Changing (issue 16): a change registers itself with a deadline before the database write and
 * leaves after it, caching the row it wrote when it knows it exactly, by compare-and-set on the
 * row's version (a copy only ever moves forward). The cached copy is not dropped meanwhile: until
 * the change is acknowledged, serving the row from before it is correct, so reads stay hits while
 * writes run, and a read right after a write is one round trip. Past its deadline an unfinished
 * change makes the copy untrusted (reads go to the database), because its end may have been lost
 * with Redis; a writer that cannot tell Redis it ended waits out its deadline before answering, so
 * no read after an acknowledged write serves the copy from before it. Such a copy also expires with
 * the marker, never later. A request that will write the caller's own account (PUT, PATCH) begins
 * the change in its token's lookup, so a write costs two scripts, not three; a request that ends
 * without writing takes its marker back (it wrote nothing, so the copy stays as it is).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { type Account, accountFields } from '../accounts/account.js'
import { callRedis, type ScriptRunner } from '../redis/connection.js'
import { LuaScript } from '../redis/lua-script.js'
import { RedisKeys } from './redis-keys.js'
import { LAST_USED_PRECISION_MS, type NewSession, type SessionRecord, type TokenRef } from './session.js'
import type { AccountToChange, BegunChange, SessionStore } from './session-store.js'
import { routingTagOf } from './tokens.js'

/** How long a cached account lives after it was cached (reads do not extend it): bounds Redis memory, not freshness. */
export const ACCOUNT_TTL_SECONDS = 300
/** Longer than any read can take (database deadlines are about 2 s), so versions never repeat under a reader. */
const VERSION_TTL_SECONDS = 86_400
/**
 * Longer than any change can take, waits for a pool connection included (the database deadlines
 * keep that near 1 s): how long a change's marker lives, and so a copy a lost end left untrusted.
 */
const CHANGES_TTL_SECONDS = 60
/**
 * How long the copy from before a change stays trusted while the change runs: longer than a change
 * takes (its database deadlines are about 1 s), so normally it ends first. One slower only sends
 * reads to the database until it ends; a writer that lost Redis answers only once this has passed.
 */
export const CHANGE_DEADLINE_MS = 2000

/**
 * KEYS: session, the user's index. ARGV: user id, session id, created (ms), user agent, address,
 * expires (ms), now (ms), token hash. The index lives as long as its longest session: it gets an
 * expiry if it has none, which only ever moves later (a shorter SESSION_TTL_SECONDS must not orphan
 * older sessions), and sheds expired members on every login, so it cleans itself.
 */
const CREATE = new LuaScript(`
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'id', ARGV[2], 'createdAt', ARGV[3], 'lastUsedAt', ARGV[3], 'userAgent', ARGV[4], 'ip', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[8])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[7])
redis.call('PEXPIREAT', KEYS[2], ARGV[6], 'NX')
redis.call('PEXPIREAT', KEYS[2], ARGV[6], 'GT')
return 1`)

/** Lua: the shard's clock in ms, the one every deadline of an account's changes is set and read by. */
const NOW_MS = `local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)`

/**
 * Lua: begins a change to an account (its account, version and changes keys), under the version
 * counter's new value, which it returns; ARGV-style: version TTL, changes TTL (s), deadline (ms
 * from now). A marker older than the changes TTL belongs to a change whose end was lost: it goes,
 * and with it the copy, which may predate that change. Should this change's end be lost too, the
 * copy must not outlive its marker.
 */
const BEGIN_CHANGE = `local function beginChange(account, version, changes, versionTtl, changesTtl, deadlineMs)
  ${NOW_MS}
  local began = redis.call('INCR', version)
  redis.call('EXPIRE', version, versionTtl)
  if redis.call('ZREMRANGEBYSCORE', changes, '-inf', now - tonumber(changesTtl) * 1000) > 0 then
    redis.call('DEL', account)
  end
  redis.call('ZADD', changes, now + tonumber(deadlineMs), began)
  redis.call('EXPIRE', changes, changesTtl)
  redis.call('EXPIRE', account, changesTtl, 'LT')
  return began
end`

/**
 * KEYS: session. ARGV: the account, version, changes and legacy writes key prefixes (all in the
 * session's slot; the user id read from the session completes them), now (ms), how far lastUsedAt
 * may lag (ms): it is rewritten in this same round trip, at most that often; then, to begin a
 * change to the account as well, BEGIN_CHANGE's version TTL, changes TTL and deadline ('' for
 * none). The cached copy is served unless a change is past its deadline (its end may be lost) or
 * one of an older release runs. Returns the user id, the copy ('' for none), the version counter
 * on a miss, and the counter the change began under ('' for none).
 */
const LOOKUP = new LuaScript(`
${BEGIN_CHANGE}
local session = redis.call('HMGET', KEYS[1], 'user', 'lastUsedAt')
local userId = session[1]
if not userId then return false end
if tonumber(ARGV[5]) - tonumber(session[2] or '0') >= tonumber(ARGV[6]) then
  redis.call('HSET', KEYS[1], 'lastUsedAt', ARGV[5])
end
local began = ''
if ARGV[7] ~= '' then
  began = beginChange(ARGV[1] .. userId, ARGV[2] .. userId, ARGV[3] .. userId, ARGV[7], ARGV[8], ARGV[9])
end
local account = redis.call('GET', ARGV[1] .. userId)
if account and redis.call('EXISTS', ARGV[4] .. userId) == 0 then
  local oldest = redis.call('ZRANGE', ARGV[3] .. userId, 0, 0, 'WITHSCORES')[2]
  if not oldest then return {userId, account, '', began} end
  ${NOW_MS}
  if tonumber(oldest) > now then return {userId, account, '', began} end
end
return {userId, '', redis.call('GET', ARGV[2] .. userId) or '0', began}`)

/** KEYS: session. ARGV: index key prefix (in the session's slot), token hash. */
const REVOKE = new LuaScript(`
local userId = redis.call('HGET', KEYS[1], 'user')
if not userId then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[1] .. userId, ARGV[2])
return 1`)

/**
 * KEYS: the user's index. ARGV: session key prefix (in its slot), the token hash to keep ('' for
 * none). Every other session goes at once.
 */
const REVOKE_ALL = new LuaScript(`
local hashes = redis.call('ZRANGE', KEYS[1], 0, -1)
local ended = 0
for _, hash in ipairs(hashes) do
  if hash ~= ARGV[2] then
    redis.call('DEL', ARGV[1] .. hash)
    redis.call('ZREM', KEYS[1], hash)
    ended = ended + 1
  end
end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return ended`)

/** KEYS: the user's index. ARGV: session key prefix (in its slot), public session id. */
const REVOKE_BY_ID = new LuaScript(`
for _, hash in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('HGET', ARGV[1] .. hash, 'id') == ARGV[2] then
    redis.call('DEL', ARGV[1] .. hash)
    redis.call('ZREM', KEYS[1], hash)
    return 1
  end
end
return 0`)

/**
 * KEYS: the user's index. ARGV: session key prefix (in its slot), now (ms). Sheds expired members,
 * then returns each live session: token hash, id, created, last used, expires (ms), user agent, address.
 */
const LIST = new LuaScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local sessions = {}
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  local f = redis.call('HMGET', ARGV[1] .. members[i], 'id', 'createdAt', 'lastUsedAt', 'userAgent', 'ip')
  if f[1] then
    table.insert(sessions, {members[i], f[1], f[2], f[3] or f[2], members[i + 1], f[4] or '', f[5] or ''})
  end
end
return sessions`)

/**
 * KEYS: RedisKeys.account's. ARGV: account JSON, the version counter seen before reading it, TTL.
 * Only if no change began or ended since the read (else the row read may be older than one
 * written), and none in flight is past its deadline; while changes run, the copy lives no longer
 * than their marker, as END_WRITE's does.
 */
const FILL = new LuaScript(`
if redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[2] then return 0 end
local ttl = tonumber(ARGV[3])
local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')[2]
if oldest then
  ${NOW_MS}
  if tonumber(oldest) <= now then return 0 end
  ttl = math.min(ttl, redis.call('TTL', KEYS[3]))
  if ttl <= 0 then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
return 1`)

/** KEYS: RedisKeys.account's. ARGV: version TTL, changes TTL (s), deadline (ms from now). */
const BEGIN_WRITE = new LuaScript(`
${BEGIN_CHANGE}
return beginChange(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3])`)

/** KEYS: the account's changes. ARGV: the counter a change began under, which wrote nothing. */
const ABANDON_WRITE = new LuaScript(`return redis.call('ZREM', KEYS[1], ARGV[1])`)

/**
 * KEYS: RedisKeys.account's. ARGV: version TTL, the counter the change began under, the account as
 * the change left it ('' when unknown), its row version, account TTL, changes TTL. A known row is
 * cached unless the copy is as new (row versions only move forward) or a change that did not know
 * its row ended since this one began (its row may be newer: the floor). An unknown row drops the
 * copy and raises the floor over every change begun so far. While other changes run, the copy
 * lives no longer than their marker (one of them may lose its end).
 */
const END_WRITE = new LuaScript(`
redis.call('ZREM', KEYS[3], ARGV[2])
local version = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[4], version, 'EX', ARGV[6])
  return 0
end
if tonumber(ARGV[2]) <= tonumber(redis.call('GET', KEYS[4]) or '0') then
  redis.call('DEL', KEYS[1])
  return 0
end
local current = redis.call('GET', KEYS[1])
if current then
  local ok, cached = pcall(cjson.decode, current)
  if ok and type(cached) == 'table' and tonumber(cached.version) and tonumber(cached.version) >= tonumber(ARGV[4]) then
    return 0
  end
end
local ttl = tonumber(ARGV[5])
if redis.call('EXISTS', KEYS[3]) == 1 then ttl = math.min(ttl, redis.call('TTL', KEYS[3])) end
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ttl)
return 1`)

/** What is cached of an account: its fields and nothing else (never a password hash). */
function cachedJson(account: Account): string {
  return JSON.stringify(accountFields(account))
}

/** JSON turns Dates into strings: the cached copy gets them back (a copy from before suspensions has none). */
function parseAccount(json: string): Account {
  const account = JSON.parse(json) as Account & { createdAt: string; updatedAt: string }
  const suspended = account.suspended ? { ...account.suspended, since: new Date(account.suspended.since) } : null
  return { ...account, createdAt: new Date(account.createdAt), updatedAt: new Date(account.updatedAt), suspended }
}

/**
 * How soon after the lookup that began it a change must reach `write`: then the write keeps most of
 * the change's deadline. A request slower to get there (a body trickling in) begins its own.
 */
const BEGUN_CHANGE_FRESH_MS = 500

/** A change LOOKUP began: `write` takes it once, while it is fresh; anything else abandons it. */
class LookupBegunChange implements BegunChange {
  /** Redis began it before its answer came: its deadline has passed once this one has. */
  private readonly begunAt = performance.now()
  private open = true

  constructor(
    readonly userId: string,
    readonly version: number,
    private readonly abandonInRedis: () => Promise<unknown>
  ) {}

  take(): { version: number; deadline: number } | undefined {
    if (!this.open) return undefined
    if (performance.now() - this.begunAt > BEGUN_CHANGE_FRESH_MS) {
      this.abandon()
      return undefined
    }
    this.open = false
    return { version: this.version, deadline: this.begunAt + CHANGE_DEADLINE_MS }
  }

  abandon(): void {
    if (!this.open) return
    this.open = false
    void this.abandonInRedis()
  }
}

/** What a lookup found: the account, and the change it began when asked to. */
interface LookedUp extends AccountToChange {
  change: LookupBegunChange | undefined
}

export interface RedisSessionStoreOptions {
  /** Reads an account from the database on a cache miss. */
  loadAccount(userId: string): Promise<Account | undefined>
  /** Told when a change was committed but Redis could not be told afterwards (harmless, see above). */
  onCacheError(error: unknown): void
}

export class RedisSessionStore implements SessionStore {
  private readonly keys: RedisKeys

  constructor(
    private readonly redis: ScriptRunner & { pingEveryMaster(): Promise<void> },
    prefix: string,
    private readonly options: RedisSessionStoreOptions
  ) {
    this.keys = new RedisKeys(prefix)
  }

  create(session: NewSession): Promise<void> {
    const { token, userId } = session
    return callRedis('session store', async () => {
      await CREATE.run(
        this.redis,
        [this.keys.session(token), this.keys.userSessions(userId)],
        [
          userId,
          session.id,
          String(session.createdAt.getTime()),
          session.userAgent ?? '',
          session.ip,
          String(session.expiresAt.getTime()),
          String(Date.now()),
          token.hash
        ]
      )
    })
  }

  async findAccount(token: TokenRef): Promise<Account | undefined> {
    return (await this.lookUp(token, false))?.account
  }

  async findAccountToChange(token: TokenRef): Promise<AccountToChange | undefined> {
    return this.lookUp(token, true)
  }

  private async lookUp(token: TokenRef, beginChange: boolean): Promise<LookedUp | undefined> {
    const found = (await callRedis('session store', () =>
      LOOKUP.run(
        this.redis,
        [this.keys.session(token)],
        [
          this.keys.accountPrefix(token.route),
          this.keys.versionPrefix(token.route),
          this.keys.changesPrefix(token.route),
          this.keys.legacyWritesPrefix(token.route),
          String(Date.now()),
          String(LAST_USED_PRECISION_MS),
          ...(beginChange
            ? [String(VERSION_TTL_SECONDS), String(CHANGES_TTL_SECONDS), String(CHANGE_DEADLINE_MS)]
            : ['', '', ''])
        ]
      )
    )) as [string, string, string, number | ''] | null
    if (found === null) return undefined
    const [userId, cached, versionSeen, began] = found
    const change = began === '' ? undefined : this.begun(userId, token.route, began)
    // A token whose tag is not its account's was never issued here: its change began under the
    // wrong slot, and a miss must not cache there either.
    const misrouted = () => routingTagOf(userId) !== token.route
    if (change && misrouted()) {
      change.abandon()
      return undefined
    }
    if (cached) {
      const account = parseAccount(cached)
      // A copy cached by a release before account versions has none to tag: read the row instead.
      if (Number.isSafeInteger(account.version)) return { account, change }
    }
    if (misrouted()) return undefined
    // A session can briefly outlive its deleted user; it then leads nowhere.
    const account = await this.loadBeside(userId, change)
    if (!account) {
      change?.abandon()
      return undefined
    }
    // Best effort, off the request's path: a fill that fails only means the next read misses too.
    // A begun change moved the counter, so its fill would be refused: its end caches the row instead.
    if (!change && versionSeen !== '') {
      callRedis('account cache', () =>
        FILL.run(this.redis, this.keys.account(userId), [cachedJson(account), versionSeen, String(ACCOUNT_TTL_SECONDS)])
      ).catch(() => {})
    }
    return { account, change }
  }

  /**
   * The account from the database on a miss. Should that fail (a full pool's 503, say), the change
   * the lookup began goes with it: left behind, its marker would pass its deadline and keep every
   * read of the account off the cache for a minute, and the reads that then miss fail the same way.
   */
  private async loadBeside(userId: string, change: LookupBegunChange | undefined): Promise<Account | undefined> {
    try {
      return await this.options.loadAccount(userId)
    } catch (error) {
      change?.abandon()
      throw error
    }
  }

  /** The change LOOKUP began on the account's keys in the token's slot. */
  private begun(userId: string, route: string, version: number): LookupBegunChange {
    const changes = this.keys.changesPrefix(route) + userId
    return new LookupBegunChange(userId, version, () =>
      callRedis('account cache', () => ABANDON_WRITE.run(this.redis, [changes], [String(version)])).catch(
        this.options.onCacheError
      )
    )
  }

  async write<T>(
    userId: string,
    change: () => Promise<T>,
    cachedAfter?: (result: T) => Account | undefined,
    begun?: BegunChange
  ): Promise<T> {
    const keys = this.keys.account(userId)
    const taken = begun instanceof LookupBegunChange && begun.userId === userId ? begun.take() : undefined
    const began =
      taken?.version ??
      (await callRedis('session store', () =>
        BEGIN_WRITE.run(this.redis, keys, [
          String(VERSION_TTL_SECONDS),
          String(CHANGES_TTL_SECONDS),
          String(CHANGE_DEADLINE_MS)
        ])
      ))
    // Redis ran the begin before its answer came: its deadline has passed once this one has.
    const deadline = taken?.deadline ?? performance.now() + CHANGE_DEADLINE_MS
    let after: Account | undefined
    try {
      const result = await change()
      after = cachedAfter?.(result)
      return result
    } finally {
      // The change may be committed: its outcome stands, and the next read must see it.
      const args = [
        String(VERSION_TTL_SECONDS),
        String(began),
        after ? cachedJson(after) : '',
        String(after?.version ?? 0),
        String(ACCOUNT_TTL_SECONDS),
        String(CHANGES_TTL_SECONDS)
      ]
      try {
        await callRedis('account cache', () => END_WRITE.run(this.redis, keys, args))
      } catch (error) {
        this.options.onCacheError(error)
        // The copy from before the change may still be cached: readers trust it until the deadline.
        await sleep(Math.max(0, deadline - performance.now()))
      }
    }
  }

  revoke(token: TokenRef): Promise<void> {
    return callRedis('session store', async () => {
      await REVOKE.run(this.redis, [this.keys.session(token)], [this.keys.userSessionsPrefix(token.route), token.hash])
    })
  }

  revokeAllForUser(userId: string): Promise<void> {
    return this.revokeAllExcept(userId, '')
  }

  revokeAllExcept(userId: string, keep: string): Promise<void> {
    return callRedis('session store', async () => {
      await REVOKE_ALL.run(
        this.redis,
        [this.keys.userSessions(userId)],
        [this.keys.sessionPrefix(routingTagOf(userId)), keep]
      )
    })
  }

  revokeById(userId: string, sessionId: string): Promise<boolean> {
    return callRedis('session store', async () => {
      const ended = await REVOKE_BY_ID.run(
        this.redis,
        [this.keys.userSessions(userId)],
        [this.keys.sessionPrefix(routingTagOf(userId)), sessionId]
      )
      return Number(ended) === 1
    })
  }

  listForUser(userId: string): Promise<SessionRecord[]> {
    return callRedis('session store', async () => {
      const rows = (await LIST.run(
        this.redis,
        [this.keys.userSessions(userId)],
        [this.keys.sessionPrefix(routingTagOf(userId)), String(Date.now())]
      )) as string[][]
      return rows
        .map(([tokenHash, id, createdAt, lastUsedAt, expiresAt, userAgent, ip]) => ({
          id: id!,
          tokenHash: tokenHash!,
          createdAt: new Date(Number(createdAt)),
          lastUsedAt: new Date(Number(lastUsedAt)),
          expiresAt: new Date(Number(expiresAt)),
          userAgent: userAgent || null,
          ip: ip!
        }))
        .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
    })
  }

  /** Counting would mean scanning every key: Redis cannot tell cheaply. */
  async countActive(): Promise<number | undefined> {
    return undefined
  }

  ping(): Promise<void> {
    return callRedis('session store', () => this.redis.pingEveryMaster())
  }
}

/**
 * Every Redis key of the session store, in one place. Each account's keys carry its routing tag as
 * a hash tag (`{tag}`), so on a Redis Cluster they all live in one slot, and every script below
 * touches one slot only. A token carries the same tag (tokens.ts), which leads a lookup there.
 *   <prefix>{tag}:session:<token hash>       -> hash: user, id, createdAt, userAgent, ip; expires with the session
 *   <prefix>{tag}:user-sessions:<user id>    -> sorted set of that user's token hashes, scored by expiry (ms)
 *   <prefix>{tag}:account:<user id>          -> the cached account as JSON (no password hash)
 *   <prefix>{tag}:account-version:<user id>  -> bumped before and after every change to the account's row
 *   <prefix>{tag}:account-changes:<user id>  -> sorted set of the changes in flight, scored by their deadline (ms)
 *   <prefix>{tag}:account-floor:<user id>    -> changes begun up to this count may not cache their row
 *   <prefix>{tag}:account-writes:<user id>   -> changes in flight of releases before account-changes: still
 *                                              honoured (nothing is cached or filled while it exists)
 */
import type { TokenRef } from './session.js'
import { routingTagOf } from './tokens.js'

export class RedisKeys {
  constructor(private readonly prefix: string) {}

  private slot(route: string): string {
    return `${this.prefix}{${route}}:`
  }

  session(token: TokenRef): string {
    return `${this.slot(token.route)}session:${token.hash}`
  }

  /** What LOOKUP and REVOKE append a user id to, in the token's slot. */
  accountPrefix(route: string): string {
    return `${this.slot(route)}account:`
  }

  versionPrefix(route: string): string {
    return `${this.slot(route)}account-version:`
  }

  changesPrefix(route: string): string {
    return `${this.slot(route)}account-changes:`
  }

  legacyWritesPrefix(route: string): string {
    return `${this.slot(route)}account-writes:`
  }

  userSessionsPrefix(route: string): string {
    return `${this.slot(route)}user-sessions:`
  }

  /** What REVOKE_ALL appends a token hash to. */
  sessionPrefix(route: string): string {
    return `${this.slot(route)}session:`
  }

  userSessions(userId: string): string {
    return this.userSessionsPrefix(routingTagOf(userId)) + userId
  }

  /** The cached account and the keys that guard it, in the order the cache's scripts take them. */
  account(userId: string): [account: string, version: string, changes: string, floor: string, legacyWrites: string] {
    const route = routingTagOf(userId)
    return [
      this.accountPrefix(route) + userId,
      this.versionPrefix(route) + userId,
      this.changesPrefix(route) + userId,
      `${this.slot(route)}account-floor:${userId}`,
      this.legacyWritesPrefix(route) + userId
    ]
  }

  /**
   * Every key each multi-key script of the store touches for this user and token, the ones passed
   * as KEYS and the ones it builds from what it reads: test/redis-slots.test.ts holds each list to
   * one hash slot.
   */
  touchedBy(userId: string, token: TokenRef): Record<string, string[]> {
    const session = this.session(token)
    const index = this.userSessions(userId)
    const cache = this.account(userId)
    const route = token.route
    return {
      create: [session, index],
      lookup: [
        session,
        this.accountPrefix(route) + userId,
        this.versionPrefix(route) + userId,
        this.changesPrefix(route) + userId,
        this.legacyWritesPrefix(route) + userId
      ],
      fill: cache,
      beginWrite: cache,
      endWrite: cache,
      abandonWrite: [cache[2]],
      revoke: [session, this.userSessionsPrefix(token.route) + userId],
      revokeAll: [index, session]
    }
  }
}

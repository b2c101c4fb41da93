/**
 * Where sessions live: Redis (one server or a cluster) when configured, the SQL database
 * otherwise. Every implementation passes the same tests. Keys are token hashes, never tokens.
 * A store that cannot be reached throws `problems.unavailable` (a 503): we fail closed.
 */
import type { Account } from '../accounts/account.js'
import type { NewSession, SessionRecord, TokenRef } from './session.js'

export interface SessionStore extends AccountCache {
  create(session: NewSession): Promise<void>
  /**
   * The account behind a live (unexpired, unrevoked) session, or undefined. In the common case one
   * round trip to the store: a join in SQL, one script in Redis (which caches accounts).
   */
  findAccount(token: TokenRef): Promise<Account | undefined>
  /**
   * findAccount for a request that is about to change that same account (a PUT of your own data):
   * in Redis the lookup also begins the change, one round trip fewer per write. The request then
   * hands the change to `write`, or abandons it.
   */
  findAccountToChange(token: TokenRef): Promise<AccountToChange | undefined>
  revoke(token: TokenRef): Promise<void>
  /** Ends every session of the user at once, on every instance. */
  revokeAllForUser(userId: string): Promise<void>
  /** Ends every session of the user but the one whose token hash is `keep`, at once. */
  revokeAllExcept(userId: string, keep: string): Promise<void>
  /** Ends the user's session with this public id; false when it is not one of their live sessions. */
  revokeById(userId: string, sessionId: string): Promise<boolean>
  /** The user's live sessions, newest first. */
  listForUser(userId: string): Promise<SessionRecord[]>
  /** Live sessions right now, or undefined when the store cannot count them cheaply. */
  countActive(): Promise<number | undefined>
  /** Answers when the store is reachable (on a cluster: every master), throws otherwise. */
  ping(): Promise<void>
}

/**
 * Keeps any cached copy of an account in step with its row. Every change to a row in `users` runs
 * through `write`, so that once the change is committed no request on any instance reads the old
 * row. A store without a cache runs the change as it is.
 */
export interface AccountCache {
  /**
   * Runs `change` (a write to the account's row). `cachedAfter` names the row as the change left
   * it, when the change knows it whole (a PUT or PATCH): a cache then holds it at once, so the next
   * read is still a hit; otherwise the cached copy is only dropped. `begun`: a change that
   * findAccountToChange began, used in place of beginning one when it is this account's.
   */
  write<T>(
    userId: string,
    change: () => Promise<T>,
    cachedAfter?: (result: T) => Account | undefined,
    begun?: BegunChange
  ): Promise<T>
}

/** An account found for a request about to change it, and the change its lookup began, if any. */
export interface AccountToChange {
  account: Account
  change: BegunChange | undefined
}

/**
 * A change to an account begun before it was known whether the request would write (see
 * findAccountToChange). `write` uses it for that account, once; a request that ends without using
 * it abandons it: nothing was written, so only its marker goes.
 */
export interface BegunChange {
  readonly userId: string
  /** Idempotent, and a no-op once `write` has used it; never throws (a lost abandon only lags). */
  abandon(): void
}

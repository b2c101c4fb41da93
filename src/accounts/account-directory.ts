/**
 * Administrators find accounts: every account ordered by username (case-insensitively: by its
 * lower-cased key), a page at a time, optionally those whose username starts with a prefix.
 *
 * Keyset pagination: a page is the accounts whose key comes after the last key of the page before
 * (the cursor), never an offset. So a page costs one index range scan wherever it starts, and
 * accounts created or deleted between requests never shift a page: every account that exists for
 * the whole walk is seen exactly once, in order, and none twice.
 */
import { decodeCursor, encodeCursor } from './cursors.js'
import type { UsersRepository } from '../db/users-repository.js'
import { type Account, isUsername, usernameKey } from './account.js'

export interface UserQuery {
  limit: number
  /** The cursor from the page before, as the client sent it. */
  after?: string
  prefix?: string
}

export interface UserPage {
  users: Account[]
  next: string | null
}

/** A username key: a username, lower-cased (account.ts). */
export function isUsernameKey(key: string): boolean {
  return isUsername(key) && key === usernameKey(key)
}

export class AccountDirectory {
  constructor(private readonly users: UsersRepository) {}

  /** One page of accounts (the caller has checked the actor may list them: access-policy.ts). */
  async list(query: UserQuery): Promise<UserPage> {
    const afterKey = decodeCursor(query.after, isUsernameKey)
    // One more than the page holds tells whether another page follows, without a count.
    const rows = await this.users.listPage({
      afterKey,
      prefix: query.prefix === undefined ? undefined : usernameKey(query.prefix),
      limit: query.limit + 1
    })
    const users = rows.slice(0, query.limit)
    const last = users.at(-1)
    const next = rows.length > query.limit && last ? encodeCursor(usernameKey(last.username)) : null
    return { users, next }
  }
}

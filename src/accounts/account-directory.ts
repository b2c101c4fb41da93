/**
 * Administrators find accounts: every account ordered by username, a page at a time, optionally
 * those whose username starts with a prefix. SKELETON: issue 14's listing work fills this in.
 */
import type { Account } from './account.js'

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

export class AccountDirectory {
  /** One page of accounts (the caller has checked the actor may list them: access-policy.ts). */
  async list(_query: UserQuery): Promise<UserPage> {
    return { users: [], next: null }
  }
}

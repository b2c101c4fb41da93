/**
 * Granting and revoking the admin flag: what `npm run admin` does, and the only way anyone becomes
 * an admin (see access-policy.ts, rule 6). No API request reaches this.
 */
import type { Account } from './account.js'
import type { UsersRepository } from '../db/users-repository.js'
import type { AccountCache } from '../sessions/session-store.js'

/** The account with its new flag, or undefined when no such user exists. Live sessions see it at once. */
export async function setAdminFlag(
  users: UsersRepository,
  cache: AccountCache,
  username: string,
  admin: boolean
): Promise<Account | undefined> {
  const user = await users.findByUsername(username)
  if (!user) return undefined
  const changed = await cache.write(user.id, () => users.setAdmin(user.id, admin, new Date()))
  if (!changed) return undefined
  const { passwordHash: _hash, ...account } = user
  return { ...account, admin }
}

/**
 * Suspending and lifting a suspension from the server: what `npm run admin -- suspend|unsuspend`
 * does, the same change the API makes for an administrator (accounts.ts), without the API.
 */
import type { Account } from './account.js'
import type { UsersRepository } from '../db/users-repository.js'
import type { AccountCache } from '../sessions/session-store.js'

/** The account, suspended, or undefined when no such user exists. Its sessions all end at once. */
export async function suspendAccount(
  users: UsersRepository,
  cache: AccountCache,
  endAllSessions: (userId: string) => Promise<void>,
  username: string,
  reason: string | null
): Promise<Account | undefined> {
  const user = await users.findByUsername(username)
  if (!user) return undefined
  if (!(await cache.write(user.id, () => users.suspend(user.id, reason, new Date())))) return undefined
  await endAllSessions(user.id)
  return users.findAccountById(user.id)
}

/** The account, no longer suspended, or undefined when no such user exists. */
export async function unsuspendAccount(
  users: UsersRepository,
  cache: AccountCache,
  username: string
): Promise<Account | undefined> {
  const user = await users.findByUsername(username)
  if (!user) return undefined
  if (user.suspended && !(await cache.write(user.id, () => users.unsuspend(user.id, new Date())))) return undefined
  return users.findAccountById(user.id)
}

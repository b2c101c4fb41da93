/** Sessions in the `sessions` table of the service's own database (the embedded default). */
import { isForeignKeyViolation } from '../db/errors.js'
import type { SessionsRepository } from '../db/sessions-repository.js'
import type { Account } from '../accounts/account.js'
import { problems } from '../errors/problem.js'
import { LAST_USED_PRECISION_MS, type NewSession, type SessionRecord, type TokenRef } from './session.js'
import type { AccountToChange, SessionStore } from './session-store.js'

/** Expired rows are swept on login, at most this often, so the table stays small without a timer. */
const SWEEP_INTERVAL_MS = 60_000

export class SqlSessionStore implements SessionStore {
  private lastSweep = 0

  constructor(private readonly sessions: SessionsRepository) {}

  async create(session: NewSession): Promise<void> {
    const now = session.createdAt
    try {
      await this.sessions.insert(session)
    } catch (error) {
      // The account was deleted while this login was checking its password.
      if (isForeignKeyViolation(error)) throw problems.invalidCredentials()
      throw error
    }
    if (now.getTime() - this.lastSweep > SWEEP_INTERVAL_MS) {
      this.lastSweep = now.getTime()
      await this.sessions.deleteExpired(now)
    }
  }

  async findAccount(token: TokenRef): Promise<Account | undefined> {
    const now = new Date()
    const found = await this.sessions.findLiveAccount(token.hash, now)
    if (!found) return undefined
    // At most one write per session a minute, off the request's path: a lost one only lags.
    if (now.getTime() - found.lastUsedAt.getTime() >= LAST_USED_PRECISION_MS)
      this.sessions.touch(token.hash, now).catch(() => {})
    return found.account
  }

  /** A join, as findAccount: there is no change to begin. */
  async findAccountToChange(token: TokenRef): Promise<AccountToChange | undefined> {
    const account = await this.findAccount(token)
    return account && { account, change: undefined }
  }

  /** Nothing is cached: the account is read with its session, in the same query. */
  write<T>(_userId: string, change: () => Promise<T>): Promise<T> {
    return change()
  }

  revoke(token: TokenRef): Promise<void> {
    return this.sessions.delete(token.hash)
  }

  revokeAllForUser(userId: string): Promise<void> {
    return this.sessions.deleteForUser(userId)
  }

  revokeAllExcept(userId: string, keep: string): Promise<void> {
    return this.sessions.deleteForUserExcept(userId, keep)
  }

  revokeById(userId: string, sessionId: string): Promise<boolean> {
    return this.sessions.deleteById(userId, sessionId, new Date())
  }

  listForUser(userId: string): Promise<SessionRecord[]> {
    return this.sessions.listLive(userId, new Date())
  }

  countActive(): Promise<number | undefined> {
    return this.sessions.countLive(new Date())
  }

  ping(): Promise<void> {
    return this.sessions.ping()
  }
}

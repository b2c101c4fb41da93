/** Sessions in the `sessions` table of the service's own database (the embedded default). */
import { isForeignKeyViolation } from '../db/errors.js'
import type { SessionsRepository } from '../db/sessions-repository.js'
import type { Account } from '../accounts/account.js'
import { problems } from '../errors/problem.js'
import type { NewSession, TokenRef } from './session.js'
import type { SessionStore } from './session-store.js'

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

  findAccount(token: TokenRef): Promise<Account | undefined> {
    return this.sessions.findLiveAccount(token.hash, new Date())
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

  countActive(): Promise<number | undefined> {
    return this.sessions.countLive(new Date())
  }

  ping(): Promise<void> {
    return this.sessions.ping()
  }
}

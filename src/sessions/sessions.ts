/** Starting, resolving and ending sessions, on whichever store is configured. */
import type { Account } from '../accounts/account.js'
import type { SessionStore } from './session-store.js'
import { hashToken, isWellFormedToken, newToken } from './tokens.js'

export interface StartedSession {
  /** Returned to the client once; never stored. */
  token: string
  expiresAt: Date
}

export class Sessions {
  constructor(
    private readonly store: SessionStore,
    private readonly ttlSeconds: number
  ) {}

  async start(userId: string): Promise<StartedSession> {
    const token = newToken()
    const expiresAt = new Date(Date.now() + this.ttlSeconds * 1000)
    await this.store.create(hashToken(token), userId, expiresAt)
    return { token, expiresAt }
  }

  /** The account behind a live token, or undefined for a malformed, unknown, expired or revoked one. */
  async accountFor(token: string): Promise<Account | undefined> {
    if (!isWellFormedToken(token)) return undefined
    return this.store.findAccount(hashToken(token))
  }

  end(token: string): Promise<void> {
    return this.store.revoke(hashToken(token))
  }

  endAllForUser(userId: string): Promise<void> {
    return this.store.revokeAllForUser(userId)
  }
}

/** Starting, resolving and ending sessions, on whichever store is configured. */
import type { Account } from '../accounts/account.js'
import { type SessionRecord, USER_AGENT_MAX_LENGTH } from './session.js'
import type { AccountToChange, SessionStore } from './session-store.js'
import { newSessionId, newToken, tokenRef } from './tokens.js'

export interface StartedSession {
  /** Returned to the client once; never stored. */
  token: string
  expiresAt: Date
}

/** A live session as its owner sees it: no token, no hash; `current` when it made the request. */
export type ListedSession = Omit<SessionRecord, 'tokenHash'> & { current: boolean }

/** Who is starting a session, as recorded with it (for the user's list of sessions). */
export interface SessionClient {
  userAgent: string | undefined
  ip: string
}

export class Sessions {
  constructor(
    private readonly store: SessionStore,
    private readonly ttlSeconds: number
  ) {}

  async start(userId: string, client: SessionClient): Promise<StartedSession> {
    const { token, ref } = newToken(userId)
    const createdAt = new Date()
    const expiresAt = new Date(createdAt.getTime() + this.ttlSeconds * 1000)
    await this.store.create({
      token: ref,
      userId,
      id: newSessionId(),
      createdAt,
      expiresAt,
      userAgent: client.userAgent?.slice(0, USER_AGENT_MAX_LENGTH) ?? null,
      ip: client.ip
    })
    return { token, expiresAt }
  }

  /** The account behind a live token, or undefined for a malformed, unknown, expired or revoked one. */
  async accountFor(token: string): Promise<Account | undefined> {
    const ref = tokenRef(token)
    return ref && this.store.findAccount(ref)
  }

  /** accountFor, for a request about to change that account (SessionStore.findAccountToChange). */
  async accountToChange(token: string): Promise<AccountToChange | undefined> {
    const ref = tokenRef(token)
    return ref && this.store.findAccountToChange(ref)
  }

  async end(token: string): Promise<void> {
    const ref = tokenRef(token)
    if (ref) await this.store.revoke(ref)
  }

  endAllForUser(userId: string): Promise<void> {
    return this.store.revokeAllForUser(userId)
  }

  /** Ends every session of the user but the one `keepToken` belongs to. */
  async endAllForUserExcept(userId: string, keepToken: string | undefined): Promise<void> {
    const keep = keepToken === undefined ? undefined : tokenRef(keepToken)
    if (keep) await this.store.revokeAllExcept(userId, keep.hash)
    else await this.store.revokeAllForUser(userId)
  }

  /** False when `sessionId` is not one of the user's live sessions. */
  endById(userId: string, sessionId: string): Promise<boolean> {
    return this.store.revokeById(userId, sessionId)
  }

  /** The user's live sessions, newest first, each marked when `callerToken` is its token. */
  async listForUser(userId: string, callerToken: string | undefined): Promise<ListedSession[]> {
    const callerHash = callerToken === undefined ? undefined : tokenRef(callerToken)?.hash
    const sessions = await this.store.listForUser(userId)
    return sessions.map(({ tokenHash, ...session }) => ({ ...session, current: tokenHash === callerHash }))
  }
}

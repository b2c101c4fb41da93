/**
 * The session's vocabulary, shared by every layer (the stores, SQL and Redis, map their records to
 * it), so it sits at the bottom of the import graph, like accounts/account.ts.
 */

/** What the stores know of a token: its hash, and the slot tag of the account it belongs to. */
export interface TokenRef {
  hash: string
  route: string
}

/** What the service records of a session when it starts. */
export interface NewSession {
  token: TokenRef
  userId: string
  /** Public id (tokens.ts newSessionId): names the session without revealing its token. */
  id: string
  createdAt: Date
  expiresAt: Date
  /** The client's User-Agent, cut to USER_AGENT_MAX_LENGTH; null when it sent none. */
  userAgent: string | null
  /** The client's address as the service saw it (after TRUST_PROXY). */
  ip: string
}

/** A live session as its owner is shown it (with its token's hash, to tell which is the caller's). */
export interface SessionRecord {
  id: string
  tokenHash: string
  createdAt: Date
  /** The last request made with it, written at most every LAST_USED_PRECISION_MS. */
  lastUsedAt: Date
  expiresAt: Date
  userAgent: string | null
  ip: string
}

/** How far `lastUsedAt` may lag: a session's record is rewritten at most this often on reads. */
export const LAST_USED_PRECISION_MS = 60_000

/** Longer User-Agent strings are cut here (the longest common browsers send are about 200). */
export const USER_AGENT_MAX_LENGTH = 256

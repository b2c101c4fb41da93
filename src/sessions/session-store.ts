/**
 * Where sessions live: Redis when REDIS_URL is set, the SQL database otherwise.
 * Both implementations pass the same tests. Keys are token hashes, never tokens.
 * A store that cannot be reached throws `problems.unavailable` (a 503): we fail closed.
 */
export interface SessionStore {
  create(tokenHash: string, userId: string, expiresAt: Date): Promise<void>
  /** The user id of a live (unexpired, unrevoked) session, or undefined. */
  findUserId(tokenHash: string): Promise<string | undefined>
  revoke(tokenHash: string): Promise<void>
  revokeAllForUser(userId: string): Promise<void>
  /** Live sessions right now, or undefined when the store cannot count them cheaply. */
  countActive(): Promise<number | undefined>
  /** Answers when the store is reachable, throws otherwise. */
  ping(): Promise<void>
  close(): Promise<void>
}

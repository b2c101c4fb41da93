/**
 * Slows password guessing: at most `maxFailures` failed password checks per username and client
 * address per window; then 429 (with Retry-After) until the window ends, even for the right
 * password. Used around every password check: POST /auth, and the current password of a password
 * change, in the same `attempt(client, username, work)`, so they share one allowance.
 *
 * Each attempt is counted before its work starts, in one atomic step that refuses once the count
 * has reached the limit: counting after the (slow) bcrypt compare let every concurrent guess pass
 * the check before any of them was counted (30 at once all got a 401 with a limit of 10).
 * How the attempt ends decides what becomes of its count:
 * - a failure, a 401 problem (wrong password, unknown user) or a wrong current password (a 403
 *   `wrong-password`): it stays counted;
 * - a success: the count is reset, so a user who mistyped a few times starts afresh;
 * - an outage (a 503: the hash pool, the database or Redis is unavailable) or another refusal of
 *   ours (a 400 for a password too long to check): it is given back, so an outage cannot use up a
 *   user's allowance. Such an attempt told the caller nothing about the password (it ended before
 *   the compare answered, or after a right one), so giving it back adds no guesses;
 * - anything unexpected (a bug, a 500): it stays counted, as we cannot tell what it revealed.
 */
import { usernameKey } from '../accounts/account.js'
import { ProblemError, problems } from '../errors/problem.js'
import type { Counters } from './counters.js'

/** A refused password: a 401 at login, a 403 `wrong-password` for a current password. */
const WRONG_PASSWORD = problems.wrongPassword().type

/** An ending that checked no password: a refusal of ours other than a wrong password, or an outage. */
function checkedNoPassword(error: unknown): boolean {
  if (!(error instanceof ProblemError) || error.status === 401 || error.type === WRONG_PASSWORD) return false
  return error.status < 500 || error.status === 503
}

export class LoginThrottle {
  constructor(
    private readonly counters: Counters,
    private readonly maxFailures: number,
    private readonly windowSeconds: number
  ) {}

  /** The same key as when only failures were counted, so windows survive a rolling deploy. */
  private key(client: string, username: string): string {
    return `login-failures:${usernameKey(username)}:${client}`
  }

  /** Runs `work` (one password check and what follows it) under the throttle. */
  async attempt<T>(client: string, username: string, work: () => Promise<T>): Promise<T> {
    const key = this.key(client, username)
    const { counted, ttlMs } = await this.counters.hitBelow(key, this.maxFailures, this.windowSeconds * 1000)
    if (!counted) throw problems.tooManyRequests(Math.ceil(ttlMs / 1000), 'Too many failed logins for this username')
    let result: T
    try {
      result = await work()
    } catch (error) {
      if (checkedNoPassword(error)) await this.giveBack(key)
      throw error
    }
    // Best effort: the session exists now, so a counter outage must not turn it into a 503 whose
    // token the client never sees; the count then simply runs out with its window.
    await this.counters.reset(key).catch(() => {})
    return result
  }

  /**
   * When the counters cannot be reached either (Redis down is one cause of a 503), the attempt
   * stays counted, the safe side, and the caller gets the original error, not this one.
   */
  private async giveBack(key: string): Promise<void> {
    try {
      await this.counters.giveBack(key)
    } catch {
      // Counted it stays: see above.
    }
  }
}

/**
 * Slows password guessing: at most `maxFailures` failed logins per username and client address per
 * window; then 429 until the window ends. A successful login clears the count.
 */
import { usernameKey } from '../accounts/account.js'
import { ProblemError, problems } from '../errors/problem.js'
import type { Counters } from './counters.js'

export class LoginThrottle {
  constructor(
    private readonly counters: Counters,
    private readonly maxFailures: number,
    private readonly windowSeconds: number
  ) {}

  private key(ip: string, username: string): string {
    return `login-failures:${usernameKey(username)}:${ip}`
  }

  /** Runs one login attempt under the throttle. */
  async attempt<T>(ip: string, username: string, logIn: () => Promise<T>): Promise<T> {
    const key = this.key(ip, username)
    const { count, ttlMs } = await this.counters.peek(key)
    if (count >= this.maxFailures)
      throw problems.tooManyRequests(Math.ceil(ttlMs / 1000), 'Too many failed logins for this username')
    try {
      const result = await logIn()
      if (count > 0) await this.counters.reset(key)
      return result
    } catch (error) {
      if (error instanceof ProblemError && error.status === 401) await this.counters.hit(key, this.windowSeconds * 1000)
      throw error
    }
  }
}

/**
 * bcrypt hashing and comparing in a pool of worker threads, so logins never block other requests.
 * bcrypt reads at most 72 bytes of a password and bcryptjs silently drops the rest, so longer
 * passwords are refused before they get here (see `checkPasswordLength`).
 */
import { randomBytes } from 'node:crypto'
import { Piscina } from 'piscina'

export const MAX_PASSWORD_BYTES = 72
export const MIN_PASSWORD_BYTES = 8

/** Why a password cannot be used, or undefined when it can. */
export function passwordLengthProblem(password: string): string | undefined {
  const bytes = Buffer.byteLength(password, 'utf8')
  if (bytes > MAX_PASSWORD_BYTES) return `must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8 (it is ${bytes}): bcrypt ignores the rest`
  if (bytes < MIN_PASSWORD_BYTES) return `must be at least ${MIN_PASSWORD_BYTES} bytes in UTF-8 (it is ${bytes})`
  return undefined
}

/** The cost factor a bcrypt hash was made with: `$2b$12$...` -> 12. */
export function costOf(hash: string): number {
  return Number(hash.split('$')[2])
}

export class PasswordHasher {
  private readonly pool: Piscina
  private dummyHash: Promise<string> | undefined

  constructor(
    private readonly cost: number,
    threads: number
  ) {
    this.pool = new Piscina({
      filename: new URL('./bcrypt-worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Number.POSITIVE_INFINITY
    })
  }

  hash(password: string): Promise<string> {
    return this.pool.run({ op: 'hash', password, cost: this.cost })
  }

  verify(password: string, hash: string): Promise<boolean> {
    return this.pool.run({ op: 'compare', password, hash })
  }

  /**
   * Compares against a hash of a random password at the configured cost, so a login for an
   * unknown user costs the same time as one with a wrong password.
   */
  async verifyAgainstDummy(password: string): Promise<false> {
    this.dummyHash ??= this.hash(randomBytes(18).toString('base64'))
    await this.verify(password, await this.dummyHash)
    return false
  }

  /** Tasks waiting for a free thread. */
  get queueSize(): number {
    return this.pool.queueSize
  }

  async close(): Promise<void> {
    await this.pool.destroy()
  }
}

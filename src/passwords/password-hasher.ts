/**
 * bcrypt hashing and comparing in a pool of worker threads, so logins never block other requests.
 * The queue in front of the pool is bounded: past it, callers get a 503 rather than an ever longer wait.
 */
import { randomBytes } from 'node:crypto'
import { Piscina } from 'piscina'
import { problems } from '../errors/problem.js'

/** Hashing tasks allowed to wait per thread before new ones are turned away. */
const QUEUE_PER_THREAD = 256

/** The cost factor a bcrypt hash was made with: `$2b$12$...` -> 12. */
export function costOf(hash: string): number {
  return Number(hash.split('$')[2])
}

export class PasswordHasher {
  private readonly pool: Piscina
  private dummyHash: string | undefined

  constructor(
    readonly cost: number,
    threads: number
  ) {
    this.pool = new Piscina({
      filename: new URL('./bcrypt-worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      maxQueue: threads * QUEUE_PER_THREAD,
      idleTimeout: Number.POSITIVE_INFINITY,
      // A worker inherits the process's execArgv: under tsx or a test runner that means their
      // loaders, which the plain-JS worker does not need and which took a thread seconds to start.
      execArgv: [],
      // bcrypt keeps 4 KB of state per hash: a thread needs nothing like V8's default young
      // generation, which alone would add tens of MB to every process. The old generation holds
      // only bcryptjs and grows no further, so it needs no cap.
      resourceLimits: { maxYoungGenerationSizeMb: 2 }
    })
  }

  /** Makes the dummy hash up front, so the first login for an unknown user costs no extra hash. */
  async start(): Promise<void> {
    this.dummyHash = await this.hash(randomBytes(18).toString('base64'))
  }

  private async run<T>(task: object): Promise<T> {
    try {
      return await this.pool.run(task)
    } catch (error) {
      if (error instanceof Error && /queue is at limit/i.test(error.message))
        throw problems.unavailable('password hashing pool (too busy)', error)
      throw error
    }
  }

  hash(password: string): Promise<string> {
    return this.run({ op: 'hash', password, cost: this.cost })
  }

  verify(password: string, hash: string): Promise<boolean> {
    return this.run({ op: 'compare', password, hash })
  }

  /**
   * Compares against a hash of a random password at the configured cost, so a login for an
   * unknown user costs the same time as one with a wrong password.
   */
  async verifyAgainstDummy(password: string): Promise<false> {
    if (!this.dummyHash) await this.start()
    await this.verify(password, this.dummyHash!)
    return false
  }

  /** Tasks waiting for a free thread right now (read by the metrics at scrape time). */
  get queueLength(): number {
    return this.pool.queueSize
  }

  async close(): Promise<void> {
    await this.pool.destroy()
  }
}

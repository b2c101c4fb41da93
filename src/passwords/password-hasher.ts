/**
 * bcrypt hashing and comparing in a pool of worker threads, so logins never block other requests.
 * Hashes reach the pool through the HashScheduler: a small share per client address, the address
 * that asked least lately first, and a hash nobody waits for any more (the client hung up, the
 * deadline passed) never runs.
 */
import { randomBytes } from 'node:crypto'
import { Piscina } from 'piscina'
import { problems } from '../errors/problem.js'
import { type HashContext, type HashCounts, HashScheduler } from './hash-scheduler.js'

/** The cost factor a bcrypt hash was made with: `$2b$12$...` -> 12. */
export function costOf(hash: string): number {
  return Number(hash.split('$')[2])
}

/** A hash bcryptjs can compare against: any other (a crafted import, cost 03 or 99) would throw. */
const USABLE_HASH = /^\$2[aby]?\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/

export function isUsableHash(hash: string): boolean {
  return USABLE_HASH.test(hash)
}

/** The queue's rules (config: HASH_PER_CLIENT, HASH_QUEUE_TIMEOUT_MS). */
export interface HashQueueOptions {
  perClient: number
  queueTimeoutMs: number
}

/** The service's own hashes (the dummy at start-up) come from no client. */
const SERVICE: HashContext = { client: 'service' }

export class PasswordHasher {
  private readonly pool: Piscina
  private readonly scheduler: HashScheduler
  private dummyHash: string | undefined

  constructor(
    readonly cost: number,
    threads: number,
    queue: HashQueueOptions
  ) {
    this.scheduler = new HashScheduler({ slots: threads, ...queue })
    this.pool = new Piscina({
      filename: new URL('./bcrypt-worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      // The scheduler hands over no more tasks than there are threads: this queue only ever holds a
      // task for a thread that is still starting.
      maxQueue: threads,
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
    this.dummyHash = await this.hash(randomBytes(18).toString('base64'), SERVICE)
  }

  private run<T>(task: object, context: HashContext): Promise<T> {
    return this.scheduler.schedule(context, async () => {
      try {
        return await this.pool.run(task)
      } catch (error) {
        // A guard only: the scheduler hands over no more tasks than there are threads.
        if (error instanceof Error && /queue is at limit/i.test(error.message))
          throw problems.unavailable('password hashing pool (too busy)', error)
        throw error
      }
    })
  }

  hash(password: string, context: HashContext): Promise<string> {
    return this.run({ op: 'hash', password, cost: this.cost }, context)
  }

  /** A hash bcrypt cannot use matches no password, after the same work as a wrong one. */
  async verify(password: string, hash: string, context: HashContext): Promise<boolean> {
    if (!isUsableHash(hash)) return this.verifyAgainstDummy(password, context)
    return this.run({ op: 'compare', password, hash }, context)
  }

  /**
   * Compares against a hash of a random password at the configured cost, so a login for an
   * unknown user costs the same time as one with a wrong password.
   */
  async verifyAgainstDummy(password: string, context: HashContext): Promise<false> {
    if (!this.dummyHash) await this.start()
    await this.run({ op: 'compare', password, hash: this.dummyHash! }, context)
    return false
  }

  /** Tasks waiting for a free thread right now (read by the metrics at scrape time). */
  get queueLength(): number {
    return this.scheduler.queueLength
  }

  /** Hashes run, cancelled, timed out and refused since start-up. */
  get counts(): Readonly<HashCounts> {
    return this.scheduler.counts
  }

  async close(): Promise<void> {
    this.scheduler.close()
    await this.pool.destroy()
  }
}

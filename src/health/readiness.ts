/**
 * Readiness: the process is not saturated (src/plugins/load-shedding.ts), and the database and the
 * session store both answer, each within a short deadline.
 */
import { sql } from 'kysely'
import { isPoolSaturated } from '../db/pool-limits.js'
import type { Db } from '../db/schema.js'
import { problems } from '../errors/problem.js'
import type { SessionStore } from '../sessions/session-store.js'

const DEADLINE_MS = 2000

async function within<T>(what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${DEADLINE_MS} ms`)), DEADLINE_MS)
  })
  try {
    return await Promise.race([work, deadline])
  } catch (error) {
    // A busy pool is saturation, not an outage: the error handler answers it as for any request.
    if (isPoolSaturated(error)) throw error
    throw problems.unavailable(what, error)
  } finally {
    clearTimeout(timer)
  }
}

export class Readiness {
  constructor(
    private readonly db: Db,
    private readonly sessions: SessionStore,
    private readonly saturation: () => string | undefined
  ) {}

  /** Throws a 503 problem saying what is saturated, or naming the first store that does not answer. */
  async check(): Promise<void> {
    const saturated = this.saturation()
    if (saturated) throw problems.overloaded(saturated)
    await within('database', sql`select 1`.execute(this.db.kysely))
    await within('session store', this.sessions.ping())
  }
}

/**
 * Gauges read at scrape time, never per request: live sessions (where the session store can count
 * them cheaply) and the password-hashing pool's queue.
 */
import { Gauge, type Registry } from 'prom-client'

export interface GaugeSources {
  /** Live sessions, or undefined when the store cannot count them cheaply (Redis). */
  countActiveSessions(): Promise<number | undefined>
  /** Hashing tasks of this process waiting for a free thread. */
  hashQueueLength(): number
}

export function registerServiceGauges(registry: Registry, sources: GaugeSources): void {
  new Gauge({
    name: 'accounts_sessions_active',
    help: 'Live (unexpired, unrevoked) sessions. Absent when the session store cannot count them cheaply (Redis).',
    registers: [registry],
    // Every worker counts the same store: across a cluster the count is taken once, not summed.
    aggregator: 'max',
    async collect() {
      let count: number | undefined
      try {
        count = await sources.countActiveSessions()
      } catch {
        // The store is down: no value rather than a failed scrape (the readiness probe says why).
        count = undefined
      }
      if (count === undefined) this.remove()
      else this.set(count)
    }
  })
  new Gauge({
    name: 'accounts_password_hash_queue_length',
    help: 'Password hashing and comparing tasks waiting for a free worker thread (summed over processes).',
    registers: [registry],
    collect() {
      this.set(sources.hashQueueLength())
    }
  })
}

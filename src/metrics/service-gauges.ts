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
  /** This process's connection to each Redis master (none without Redis). */
  redisMasters(): { node: string; up: boolean }[]
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
    name: 'accounts_redis_master_up',
    help: 'Whether this process is connected to a Redis master (1) or not (0), by node (host:port). On a cluster, one series per master; a failed one is named here.',
    labelNames: ['node'],
    registers: [registry],
    // One process that lost a master is enough to say so.
    aggregator: 'min',
    collect() {
      this.reset()
      for (const { node, up } of sources.redisMasters()) this.set({ node }, up ? 1 : 0)
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

/**
 * Load shedding: once the event loop lags past OVERLOAD_EVENT_LOOP_DELAY_MS, every new request gets
 * a fast 503 `overloaded` problem with Retry-After instead of joining a backlog that would answer
 * it seconds late; @fastify/under-pressure measures the lag (made for this, and kept by the Fastify
 * team). The database pool bounds its own queue the same way (src/db/pool-limits.ts), and `saturation`
 * tells /readyz about both. A route declared `x-fastify-config: { shedUnderLoad: false }` in
 * openapi.yaml (liveness) is always served: a busy process is still alive.
 */
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config/config.js'
import { problems } from '../errors/problem.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Why the process cannot take more work right now, or undefined when it can. */
    saturation(): string | undefined
  }
}

/** How often the lag is sampled: a stall is noticed, and its refusals end, within this long. */
const SAMPLE_INTERVAL_MS = 200

export default fp(
  async function loadSheddingPlugin(app: FastifyInstance, { config }: { config: Config }) {
    const maxLagMs = config.overloadEventLoopDelayMs
    const lagging = (lagMs: number) => `the event loop lags ${Math.round(lagMs)} ms (limit ${maxLagMs} ms)`
    await app.register(underPressure, {
      maxEventLoopDelay: maxLagMs,
      sampleInterval: SAMPLE_INTERVAL_MS,
      pressureHandler: (request, _reply, _type, lagMs) =>
        request.routeOptions.config.shedUnderLoad === false
          ? undefined
          : Promise.reject(problems.overloaded(lagging(Number(lagMs))))
    })
    app.decorate('saturation', () => {
      if (maxLagMs > 0 && app.isUnderPressure()) return lagging(app.memoryUsage().eventLoopDelay)
      // Registered before the stores, so that every route sheds: the pool is looked up when asked.
      const pool = app.db.pool
      if (pool && pool.queueLimit > 0 && pool.waiting() >= pool.queueLimit)
        return `${pool.waiting()} requests wait for a database connection (limit ${pool.queueLimit})`
      return undefined
    })
  },
  { name: 'load-shedding' }
)

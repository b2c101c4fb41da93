/**
 * Rate limits, counted in Redis when there is one (so every instance shares them), in memory
 * otherwise: sign-ups and login requests per client address, and failed logins per username and
 * address (`app.loginThrottle`). Over a limit: 429 with Retry-After.
 */
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config/config.js'
import { problems } from '../errors/problem.js'
import { clientKeyOf } from '../passwords/client-key.js'
import { declared, type RateLimitName } from '../http/route-config.js'
import type { Counters } from '../rate-limits/counters.js'
import { counterStore } from '../rate-limits/fastify-store.js'
import { LoginThrottle } from '../rate-limits/login-throttle.js'
import { MemoryCounters } from '../rate-limits/memory-counters.js'
import { RedisCounters } from '../rate-limits/redis-counters.js'

declare module 'fastify' {
  interface FastifyInstance {
    loginThrottle: LoginThrottle
  }
}

export default fp(
  async function rateLimitsPlugin(app: FastifyInstance, { config }: { config: Config }) {
    const limits = config.rateLimits
    const counters: Counters = app.redis ? new RedisCounters(app.redis, config.redisKeyPrefix) : new MemoryCounters()

    await app.register(rateLimit, {
      global: false,
      store: counterStore(counters),
      timeWindow: limits.windowSeconds * 1000,
      // A limiter outage must not stop sign-ups; routes that need Redis fail closed on their own.
      skipOnError: true,
      // One IPv6 /64 is one client: rotating addresses inside it must not multiply the limits.
      keyGenerator: (request) => clientKeyOf(request.ip),
      errorResponseBuilder: (_request, context) => problems.tooManyRequests(Math.ceil(context.ttl / 1000))
    })

    // Which routes count against which limit is declared on the operation (x-fastify-config.perAddressLimit).
    const perIp: Record<RateLimitName, onRequestHookHandler> = {
      'sign-up': app.rateLimit({ max: limits.signUpPerIp, name: 'sign-up' } as never),
      login: app.rateLimit({ max: limits.loginPerIp, name: 'login' } as never)
    }
    const names = Object.keys(perIp) as RateLimitName[]
    app.addHook('onRoute', (route) => {
      const name = declared(route, 'perAddressLimit', names)
      if (name) route.onRequest = [...[route.onRequest ?? []].flat(), perIp[name]]
    })

    app.decorate('loginThrottle', new LoginThrottle(counters, limits.loginFailures, limits.windowSeconds))
  },
  { name: 'rate-limits', dependencies: ['stores'] }
)

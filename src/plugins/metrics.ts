/**
 * Prometheus metrics of this process (METRICS_PORT set): default process metrics, requests by
 * route template and status, logins, sign-ups, live sessions and the hashing queue, in a registry of
 * its own (`app.metrics`). Serving them is the entry point's job (src/serve.ts, src/cluster.ts): on
 * their own port, or through the cluster primary. With METRICS_PORT unset this adds no hook at all.
 *
 * Register it before any route: Fastify gives a route the hooks its context had when it was declared.
 */
import type { FastifyInstance, onResponseHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import type { Registry } from 'prom-client'
import type { Config } from '../config/config.js'
import { type AccountEvent, declared } from '../http/route-config.js'

const ACCOUNT_EVENTS: readonly AccountEvent[] = ['sign-up', 'login']

declare module 'fastify' {
  interface FastifyInstance {
    /** This process's metrics; null when METRICS_PORT is unset. */
    metrics: Registry | null
  }
}

export default fp(
  async function metricsPlugin(app: FastifyInstance, { config }: { config: Config }) {
    if (!config.metrics) {
      app.decorate('metrics', null)
      return
    }
    // Loaded only when enabled: prom-client alone adds about 13 MB to every process.
    const [
      { collectDefaultMetrics, Registry },
      { HttpMetrics, UNMATCHED_ROUTE, routeTemplate },
      { registerServiceGauges }
    ] = await Promise.all([
      import('prom-client'),
      import('../metrics/http-metrics.js'),
      import('../metrics/service-gauges.js')
    ])
    const registry = new Registry()
    collectDefaultMetrics({ register: registry })
    const http = new HttpMetrics(registry)
    // Read when scraped; both are decorated by the accounts plugin, registered after this one.
    registerServiceGauges(registry, {
      countActiveSessions: () => app.sessionStore.countActive(),
      hashQueueLength: () => app.passwordHasher.queueLength,
      redisMasters: () => app.redis?.masterConnections() ?? []
    })

    // Each route's own hook knows its label and its account event (x-fastify-config.accountEvent),
    // so a request reads no route options.
    app.addHook('onRoute', (route) => {
      const label = routeTemplate(route.url)
      const event = declared(route, 'accountEvent', ACCOUNT_EVENTS)
      const recordRequestMetrics: onResponseHookHandler = (request, reply, done) => {
        http.observe(request.method, label, event, reply.statusCode, reply.elapsedTime)
        done()
      }
      route.onResponse = [...[route.onResponse ?? []].flat(), recordRequestMetrics]
    })
    // Requests no route matched (404, 405) reach no route's hooks: an instance-wide hook counts
    // them (on a matched route it only reads a flag).
    app.addHook('onResponse', function recordUnmatchedMetrics(request, reply, done) {
      if (request.is404) http.observe(request.method, UNMATCHED_ROUTE, undefined, reply.statusCode, reply.elapsedTime)
      done()
    })
    app.decorate('metrics', registry)
  },
  { name: 'metrics' }
)

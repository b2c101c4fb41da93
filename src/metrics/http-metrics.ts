/**
 * Request metrics: one latency histogram per method, route template and status code, and the
 * account events read from those same responses (logins, sign-ups). A request costs one histogram
 * observation (plus a counter step on a login or sign-up); `http_requests_total` is derived from the
 * histogram's counts at scrape time, so it costs requests nothing.
 *
 * Labels stay bounded: the route is the template (`/user/{username}`, never the raw URL), every
 * request no route matched shares one label, the method comes from Node's parser (a fixed set) and
 * the status code is a three-digit number.
 */
import { Counter, Histogram, type Registry } from 'prom-client'

/** The route label of every request no route matched (404s, 405s), whatever its URL. */
export const UNMATCHED_ROUTE = 'unmatched'

/** Seconds: from well under a millisecond (GET /) to a bcrypt login on a busy pool. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** `/user/:username` (Fastify's form) -> `/user/{username}` (the contract's). */
export function routeTemplate(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
}

export class HttpMetrics {
  private readonly duration: Histogram<'method' | 'route' | 'status_code'>
  private readonly logins: Counter<'result'>
  private readonly signUps: Counter
  /** Fastify route URL -> template; as many entries as there are routes. */
  private readonly templates = new Map<string, string>()

  constructor(registry: Registry) {
    const duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from the request to the end of its response, by method, route template and status code.',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry]
    })
    this.duration = duration
    new Counter({
      name: 'http_requests_total',
      help: 'Requests answered, by method, route template and status code.',
      labelNames: ['method', 'route', 'status_code'] as const,
      registers: [registry],
      // The histogram already counts every request: copy its counts when scraped.
      async collect() {
        this.reset()
        for (const sample of (await duration.get()).values) {
          if (sample.metricName === 'http_request_duration_seconds_count') this.inc(sample.labels as never, sample.value)
        }
      }
    })
    this.logins = new Counter({
      name: 'accounts_logins_total',
      help: 'Login attempts (POST /auth) by result: success, or failure (wrong username or password: 401).',
      labelNames: ['result'] as const,
      registers: [registry]
    })
    // Both series exist from the start, so rates and alerts work before the first failure.
    this.logins.inc({ result: 'success' }, 0)
    this.logins.inc({ result: 'failure' }, 0)
    this.signUps = new Counter({
      name: 'accounts_signups_total',
      help: 'Accounts created (POST /user answered 201).',
      registers: [registry]
    })
  }

  /**
   * Records one answered request. `routeUrl` is Fastify's route URL, undefined when no route
   * matched; `operationId` the contract's name for the route, if it has one.
   */
  observe(method: string, routeUrl: string | undefined, operationId: unknown, statusCode: number, milliseconds: number): void {
    let route = UNMATCHED_ROUTE
    if (routeUrl !== undefined) {
      route = this.templates.get(routeUrl) ?? routeTemplate(routeUrl)
      if (this.templates.size < 1000) this.templates.set(routeUrl, route)
    }
    this.duration.observe({ method, route, status_code: statusCode }, milliseconds / 1000)
    if (operationId === 'logIn') {
      if (statusCode < 300) this.logins.inc({ result: 'success' })
      else if (statusCode === 401) this.logins.inc({ result: 'failure' })
    } else if (operationId === 'signUp' && statusCode === 201) {
      this.signUps.inc()
    }
  }
}

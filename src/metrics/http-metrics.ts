/**
 * Request metrics: a latency histogram and a request count per method, route template and status
 * code (kept by RequestSeries, at a small cost per request), and the account events read from those
 * same responses (logins, sign-ups: a counter step on those requests only).
 *
 * Labels stay bounded: the route is the template (`/user/{username}`, never the raw URL), every
 * request no route matched shares one label, the method comes from Node's parser (a fixed set) and
 * the status code is a three-digit number.
 */
import { Counter, type Registry } from 'prom-client'
import type { AccountEvent } from '../http/route-config.js'
import { RequestSeries } from './request-series.js'

/** The route label of every request no route matched (404s, 405s), whatever its URL. */
export const UNMATCHED_ROUTE = 'unmatched'

/** `/user/:username` (Fastify's form) -> `/user/{username}` (the contract's). */
export function routeTemplate(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
}

export class HttpMetrics {
  private readonly requests = new RequestSeries()
  private readonly logins: Counter<'result'>
  private readonly signUps: Counter

  constructor(registry: Registry) {
    this.requests.register(registry)
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
   * Records one answered request. `route` is the route's template (`/user/{username}`), or
   * UNMATCHED_ROUTE; `event` the account event the route's answers count as, if any.
   */
  observe(
    method: string,
    route: string,
    event: AccountEvent | undefined,
    statusCode: number,
    milliseconds: number
  ): void {
    this.requests.observe(method, route, statusCode, milliseconds / 1000)
    if (event === 'login') {
      if (statusCode < 300) this.logins.inc({ result: 'success' })
      else if (statusCode === 401) this.logins.inc({ result: 'failure' })
    } else if (event === 'sign-up' && statusCode === 201) {
      this.signUps.inc()
    }
  }
}

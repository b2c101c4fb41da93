/**
 * The bench reads the service's own count of slow answers from its /metrics text
 * (scripts/bench/service-latency.ts). Parsed here from what the service's own histogram renders,
 * route labels with braces included: a parse that missed those lines once counted a tenth of the
 * requests.
 */
import { Registry } from 'prom-client'
import t from 'tap'
import { latencyBetween, parseLatency } from '../scripts/bench/service-latency.js'
import { HttpMetrics } from '../src/metrics/http-metrics.js'

t.test("the bench counts every request of the service's histogram, and those over 1 s", async (t) => {
  const registry = new Registry()
  const metrics = new HttpMetrics(registry)
  metrics.observe('GET', '/user/{username}', undefined, 200, 200)
  metrics.observe('PUT', '/user/{username}', undefined, 200, 1500)
  metrics.observe('GET', '/', undefined, 200, 10)
  const before = parseLatency(await registry.metrics())
  t.same(before, { requests: 3, over1s: 1 }, 'three requests, one of them (a PUT at 1.5 s) over 1 s')

  metrics.observe('GET', '/user/{username}', undefined, 503, 1000)
  metrics.observe('PUT', '/user/{username}', undefined, 200, 2600)
  const after = parseLatency(await registry.metrics())
  t.same(
    latencyBetween(before, after),
    { requests: 2, over1s: 1 },
    'between two scrapes: two requests, one over 1 s (an answer at exactly 1 s is within it)'
  )
})

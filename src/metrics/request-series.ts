/**
 * The per-request part of the metrics, kept as cheap as it can be: one series per method, route
 * template and status code, each a fixed array of bucket counts, found through nested maps (no
 * string is built, no object allocated, per request). prom-client's own Histogram costs about
 * 0.65 µs per observation (it re-validates and re-hashes the labels, and turns float bucket bounds
 * into strings, on every call); this costs a small fraction of that.
 *
 * The series are exposed through prom-client as two metrics computed when scraped, in the shape of
 * prom-client's Histogram and Counter, so its registry formats them and its AggregatorRegistry sums
 * them across cluster workers like any other:
 *   http_request_duration_seconds (histogram) and http_requests_total (counter).
 */
import type { Registry } from 'prom-client'

/** Seconds: from well under a millisecond (GET /) to a bcrypt login on a busy pool. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
]

interface Labels {
  method: string
  route: string
  status_code: string
}

interface Series {
  labels: Labels
  /** Observations per bucket, not cumulative; the last one counts those above every bound. */
  buckets: Float64Array
  sum: number
  count: number
}

interface Sample {
  labels: Record<string, string | number>
  value: number
  metricName: string
}

/** What prom-client's registry asks of a metric: its description and, when scraped, its samples. */
interface CollectedMetric {
  name: string
  help: string
  type: 'histogram' | 'counter'
  aggregator: 'sum'
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }>
  reset(): void
}

export class RequestSeries {
  /** route -> method -> status code -> series. */
  private readonly routes = new Map<string, Map<string, Map<number, Series>>>()

  observe(method: string, route: string, statusCode: number, seconds: number): void {
    let methods = this.routes.get(route)
    if (methods === undefined) {
      methods = new Map()
      this.routes.set(route, methods)
    }
    let statuses = methods.get(method)
    if (statuses === undefined) {
      statuses = new Map()
      methods.set(method, statuses)
    }
    let series = statuses.get(statusCode)
    if (series === undefined) {
      series = {
        labels: { method, route, status_code: String(statusCode) },
        buckets: new Float64Array(LATENCY_BUCKETS.length + 1),
        sum: 0,
        count: 0
      }
      statuses.set(statusCode, series)
    }
    let bucket = 0
    while (bucket < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[bucket]!) bucket++
    series.buckets[bucket]!++
    series.sum += seconds
    series.count++
  }

  private *all(): Generator<Series> {
    for (const methods of this.routes.values()) {
      for (const statuses of methods.values()) yield* statuses.values()
    }
  }

  /** Registers `http_request_duration_seconds` and `http_requests_total` in `registry`. */
  register(registry: Registry): void {
    const histogram = this.metric(
      'http_request_duration_seconds',
      'histogram',
      'Time from the request to the end of its response, by method, route template and status code.',
      (name) => {
        const values: Sample[] = []
        for (const series of this.all()) {
          let cumulative = 0
          LATENCY_BUCKETS.forEach((bound, i) => {
            cumulative += series.buckets[i]!
            values.push({ labels: { ...series.labels, le: bound }, value: cumulative, metricName: `${name}_bucket` })
          })
          values.push({ labels: { ...series.labels, le: '+Inf' }, value: series.count, metricName: `${name}_bucket` })
          values.push({ labels: { ...series.labels }, value: series.sum, metricName: `${name}_sum` })
          values.push({ labels: { ...series.labels }, value: series.count, metricName: `${name}_count` })
        }
        return values
      }
    )
    const counter = this.metric(
      'http_requests_total',
      'counter',
      'Requests answered, by method, route template and status code.',
      (name) =>
        Array.from(this.all(), (series) => ({ labels: { ...series.labels }, value: series.count, metricName: name }))
    )
    registry.registerMetric(histogram as never)
    registry.registerMetric(counter as never)
  }

  private metric(
    name: string,
    type: CollectedMetric['type'],
    help: string,
    samples: (name: string) => Sample[]
  ): CollectedMetric {
    return {
      name,
      help,
      type,
      aggregator: 'sum',
      get: async () => ({ name, help, type, aggregator: 'sum', values: samples(name) }),
      reset: () => this.routes.clear()
    }
  }
}

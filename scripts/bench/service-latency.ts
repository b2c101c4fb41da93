/**
 * The service's own count of slow answers (issue 16's overload targets), from the histogram it
 * serves at /metrics (`http_request_duration_seconds`: from the moment Fastify has the request to
 * its response). Scraped before and after a run, the difference is that run's.
 */
export interface ServiceLatency {
  requests: number
  /** Requests the service took more than 1 s to answer. */
  over1s: number
}

// Greedy up to the last brace: the route label itself holds braces (`/user/{username}`).
const BUCKET = /^http_request_duration_seconds_bucket\{(.*)\} (\S+)$/

/** The histogram summed over every route, method and status: all requests, and those above 1 s. */
export function parseLatency(text: string): ServiceLatency {
  let requests = 0
  let within1s = 0
  for (const line of text.split('\n')) {
    const match = BUCKET.exec(line)
    if (!match) continue
    const le = /(?:^|,)le="([^"]+)"/.exec(match[1]!)?.[1]
    if (le === '+Inf') requests += Number(match[2])
    else if (le === '1') within1s += Number(match[2])
  }
  return { requests, over1s: requests - within1s }
}

export async function scrapeLatency(port: number): Promise<ServiceLatency> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) })
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
  return parseLatency(await res.text())
}

export function latencyBetween(before: ServiceLatency, after: ServiceLatency): ServiceLatency {
  return { requests: after.requests - before.requests, over1s: after.over1s - before.over1s }
}
